// Package archtest keeps mamori's layers in order (docs/architecture.md):
// which package may depend on which, checked on the real package graph
// (`go list -deps`) by the test in this folder.
//
// Rules match packages by pattern, so folders that do not exist yet (a new
// component, engine or host module) are covered as soon as they appear.
package archtest

import "strings"

// A Rule forbids packages matching From to depend, directly or through
// other packages, on packages matching Deny, unless they also match Allow.
type Rule struct {
	Name  string
	Why   string
	From  []string
	Deny  []string
	Allow []string
}

// Patterns are import paths; a trailing "/..." matches the path itself and
// everything below it, as in the go command.
const (
	serverSide = "mamori/internal/server/..."
)

// serverOnly are the packages that exist for the server alone: components
// and engines never link them.
var serverOnly = []string{
	"mamori/internal/store/...",
	"mamori/internal/server/...",
	"mamori/internal/service/...",
	"mamori/internal/console/...",
	"mamori/internal/auth/...",
	"mamori/web/...",
}

// engines are the scanning and sensing engines.
var engines = []string{
	"mamori/internal/image/...",
	"mamori/internal/inflate/...",
	"mamori/internal/analyzer/...",
	"mamori/internal/cache/...",
	"mamori/internal/catalog/...",
	"mamori/internal/osrelease/...",
	"mamori/internal/version/...",
	"mamori/internal/cvss/...",
	"mamori/internal/vulndb/...",
	"mamori/internal/match/...",
	"mamori/internal/priority/...",
	"mamori/internal/inuse/...",
	"mamori/internal/secret/...",
	"mamori/internal/malware/...",
	"mamori/internal/misconfig/...",
	"mamori/internal/runtime/...",
	"mamori/internal/host/...",
}

// Rules are mamori's layering rules (ARCHITECTURE.md, "Layers").
var Rules = []Rule{
	{
		Name:  "model is a leaf",
		Why:   "every component shares the model; it must not drag anything of mamori along",
		From:  []string{"mamori/internal/model/..."},
		Deny:  []string{"mamori/..."},
		Allow: []string{"mamori/internal/model/..."},
	},
	{
		Name: "policy is pure",
		Why:  "admission, compliance, the CI gate and the agent evaluate the same policy with no I/O",
		From: []string{"mamori/internal/policy/..."},
		Deny: []string{"mamori/..."},
		Allow: []string{"mamori/internal/policy/...", "mamori/internal/model/...", "mamori/internal/cel/...",
			"mamori/internal/vex/..."},
	},
	{
		Name:  "the CEL package is shared and pure",
		Why:   "policy, runtime and log rules use one CEL environment package",
		From:  []string{"mamori/internal/cel/..."},
		Deny:  []string{"mamori/..."},
		Allow: []string{"mamori/internal/cel/...", "mamori/internal/model/..."},
	},
	{
		Name: "wire types and the client stand alone",
		Why:  "the CLI upload, the cluster component and the agent link the client, not the server",
		From: []string{"mamori/internal/api/..."},
		Deny: append(append([]string{}, serverOnly...), engines...),
	},
	{
		Name: "components never link the server side",
		Why: "components take inventory and talk to the server through the API client; " +
			"the server matches (it holds the vulnerability database)",
		From: []string{"mamori/internal/cluster/...", "mamori/internal/agent/...", "mamori/internal/runtime/...",
			"mamori/internal/host/..."},
		Deny: append(append([]string{}, serverOnly...), "mamori/internal/vulndb/...", "mamori/internal/match/..."),
	},
	{
		Name: "engines sit below the store and the transports",
		Why:  "an engine is usable by the CLI, the server and the agent alike",
		From: engines,
		Deny: append(append([]string{}, serverOnly...), "mamori/internal/api/...", "mamori/internal/scan/..."),
	},
	{
		Name: "the store sits below services and transports",
		From: []string{"mamori/internal/store/..."},
		Deny: []string{serverSide, "mamori/internal/service/...", "mamori/internal/console/...", "mamori/internal/auth/..."},
	},
	{
		Name: "services sit below the transports",
		Why:  "the API and the console call the same service methods",
		From: []string{"mamori/internal/service/..."},
		Deny: []string{serverSide, "mamori/internal/console/..."},
	},
}

// match reports whether an import path matches a pattern.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if match(p, path) {
			return true
		}
	}
	return false
}
