package rules

import (
	"embed"

	"mamori/internal/cel/ruledoc"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinFiles is the built-in rule set, in load order (lists and macros first).
var builtinFiles = []string{
	"builtin/lists.yaml",
	"builtin/auth.yaml",
	"builtin/accounts.yaml",
	"builtin/evasion.yaml",
	"builtin/kubernetes.yaml",
}

// Builtin returns the built-in rule files. Load them before your own files so that yours can
// append to their lists, use their macros and disable their rules.
func Builtin() ([]Source, error) {
	return ruledoc.ReadFiles(builtinFS, "built-in log rules", builtinFiles...)
}

// LoadBuiltin loads the built-in rule set followed by extra rule files.
func LoadBuiltin(extra ...Source) (*Catalog, error) {
	srcs, err := Builtin()
	if err != nil {
		return nil, err
	}
	return Load(append(srcs, extra...)...)
}
