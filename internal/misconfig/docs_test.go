package misconfig

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"mamori/internal/secret"
)

// docsPath is the generated check catalogue (owned by this package).
const docsPath = "../../docs/checks.md"

// renderChecksDoc renders Checks() as the docs/checks.md table, and the
// secret scanner's rules (internal/secret) as its last section.
func renderChecksDoc() string {
	var b strings.Builder
	b.WriteString("# Misconfiguration checks and secret rules\n\n")
	b.WriteString("Generated from `misconfig.Checks()` and `secret.BuiltinRules()` by `internal/misconfig/docs_test.go`; do not edit by hand.\n")
	b.WriteString("Regenerate with `MAMORI_UPDATE_DOCS=1 go test -run TestChecksDoc ./internal/misconfig/`.\n\n")
	b.WriteString("NIST controls are NIST SP 800-190 §4 countermeasures (4.1.x image, 4.2.x registry, 4.3.x orchestrator,\n")
	b.WriteString("4.4.x container, 4.5.x host). PSS-baseline / PSS-restricted mark the Kubernetes Pod Security Standards level.\n")
	b.WriteString("The dockle / trivy column names the equivalent checks of dockle v0.4.15 (CIS-DI-*, DKL-*) and of the\n")
	b.WriteString("trivy-checks bundled with trivy v0.74.0 (DS-*, KSV-*); bench/README.md compares them in detail.\n")
	for _, target := range []struct{ id, title string }{
		{TargetImage, "Image configuration and file system"},
		{TargetDockerfile, "Dockerfile"},
		{TargetKubernetes, "Kubernetes workloads and RBAC"},
	} {
		fmt.Fprintf(&b, "\n## %s\n\n", target.title)
		b.WriteString("| ID | Title | Severity | NIST SP 800-190 | CIS / PSS | dockle / trivy |\n|---|---|---|---|---|---|\n")
		for _, c := range Checks() {
			if c.Target != target.id {
				continue
			}
			var nist, other []string
			for _, ctl := range c.Controls {
				if ctl != "" && ctl[0] >= '0' && ctl[0] <= '9' {
					nist = append(nist, ctl)
				} else {
					other = append(other, ctl)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.ID, c.Title, c.Severity, strings.Join(nist, ", "), strings.Join(other, ", "), strings.Join(c.Peers, ", "))
		}
	}
	renderSecretRules(&b)
	return b.String()
}

// renderSecretRules renders the secret rules with their gitleaks and trivy
// peers.
func renderSecretRules(b *strings.Builder) {
	b.WriteString("\n## Secrets\n\n")
	b.WriteString("Every secret finding serves NIST SP 800-190 4.1.4 (embedded clear text secrets). Values stored encoded are\n")
	b.WriteString("decoded and scanned again with every rule (base64 standard and URL-safe, hex, percent-encoding; up to three\n")
	b.WriteString("encodings deep, with a per-file budget); such findings carry `location.encoding` and, in YAML or JSON files,\n")
	b.WriteString("`location.keyPath`. Placeholders and templates (`${VAR}`, `{{ .Values.x }}`, `changeme`, `<password>`) are not\n")
	b.WriteString("findings, also after decoding. The gitleaks column names gitleaks v8.30's rules, the trivy column trivy v0.74's.\n\n")
	b.WriteString("| ID | Title | Severity | gitleaks | trivy |\n|---|---|---|---|---|\n")
	rules := append(secret.BuiltinRules(), secret.StructuralRules()...)
	for _, r := range rules {
		var gl, tv []string
		for _, p := range r.Peers {
			if id, ok := strings.CutPrefix(p, "gitleaks:"); ok {
				gl = append(gl, id)
			} else if id, ok := strings.CutPrefix(p, "trivy:"); ok {
				tv = append(tv, id)
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.ID, r.Title, r.Severity, strings.Join(gl, ", "), strings.Join(tv, ", "))
	}
}

// TestChecksDoc keeps docs/checks.md in sync with Checks().
func TestChecksDoc(t *testing.T) {
	want := renderChecksDoc()
	if os.Getenv("MAMORI_UPDATE_DOCS") != "" {
		if err := os.WriteFile(docsPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("%v (regenerate with MAMORI_UPDATE_DOCS=1)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: regenerate with MAMORI_UPDATE_DOCS=1 go test -run TestChecksDoc ./internal/misconfig/", docsPath)
	}
}

func TestChecksCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if seen[c.ID] {
			t.Errorf("duplicate %s", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Description == "" || c.Remediation == "" || len(c.Controls) == 0 || c.Target == "" {
			t.Errorf("incomplete %+v", c)
		}
		hasNIST := false
		for _, ctl := range c.Controls {
			if strings.HasPrefix(ctl, "4.") {
				hasNIST = true
			}
		}
		if !hasNIST {
			t.Errorf("%s names no NIST SP 800-190 control", c.ID)
		}
	}
}
