package ruby

import (
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/catalog/filecat/filecattest"
	"mamori/internal/inventory"
)

func catalogTree(t testing.TB, root string, as []analyzer.Analyzer) []inventory.Package {
	t.Helper()
	return filecattest.CatalogTree(t, root, as)
}

func summary(pkgs []inventory.Package) []string { return filecattest.Summary(pkgs) }

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	filecattest.DiffLines(t, got, want)
}
