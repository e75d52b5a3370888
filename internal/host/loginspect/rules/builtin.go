package rules

import (
	"embed"
	"fmt"
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
	out := make([]Source, 0, len(builtinFiles))
	for _, name := range builtinFiles {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("built-in log rules %s: %w", name, err)
		}
		out = append(out, Source{Name: name, Data: data})
	}
	return out, nil
}

// LoadBuiltin loads the built-in rule set followed by extra rule files.
func LoadBuiltin(extra ...Source) (*Catalog, error) {
	srcs, err := Builtin()
	if err != nil {
		return nil, err
	}
	return Load(append(srcs, extra...)...)
}
