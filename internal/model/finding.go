package model

import (
	"encoding/json"
	"fmt"
	"strings"
)

// FindingKind says which scanner produced a finding.
type FindingKind string

const (
	KindVulnerability FindingKind = "vulnerability"
	KindSecret        FindingKind = "secret"
	KindMalware       FindingKind = "malware"
	KindMisconfig     FindingKind = "misconfig"
)

// Severity is mamori's one severity scale. Higher is worse; the zero value
// is Unknown, so that nothing is ever given a severity it was not given.
type Severity int

const (
	SeverityUnknown Severity = iota
	SeverityNegligible
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "UNKNOWN"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "MODERATE" { // GitHub advisories say moderate
		return SeverityMedium, nil
	}
	for i, n := range severityNames {
		if n == u {
			return Severity(i), nil
		}
	}
	return SeverityUnknown, fmt.Errorf("model: unknown severity %q (want critical, high, medium, low, negligible or unknown)", s)
}

func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *Severity) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("model: severity: %w", err)
	}
	v, err := ParseSeverity(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Location says where a finding is. Path is relative to the target root
// (no leading slash); for findings in an image's configuration Path is empty
// and Config names the field ("Env", "History[3]", "User").
type Location struct {
	Path        string `json:"path,omitempty"`
	LayerDiffID string `json:"layerDiffID,omitempty"`
	Config      string `json:"config,omitempty"`
	// StartLine and EndLine are 1-based; zero when not known.
	StartLine int `json:"startLine,omitempty"`
	EndLine   int `json:"endLine,omitempty"`
	// Inner names a member inside an archive ("lib/a.jar!/b.class").
	Inner string `json:"inner,omitempty"`
	// Encoding says the finding was inside encoded text, and how it was
	// decoded, outermost first ("base64", "base64/hex", "percent"); the
	// lines are those of the encoded text.
	Encoding string `json:"encoding,omitempty"`
	// KeyPath is where in a YAML or JSON document the finding is
	// (`data."tls.key"`, `[1].stringData.password`; " > " joins the path
	// inside a decoded document to the outer one).
	KeyPath string `json:"keyPath,omitempty"`
}

// Finding is one secret, malware or misconfiguration result.
type Finding struct {
	Kind FindingKind `json:"kind"`
	// ID is the rule, signature or check ID ("aws-access-key-id", "Eicar-Test-Signature", "MSC-K8S-001").
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Location Location `json:"location"`
	// Category groups findings of a kind ("AWS", "Kubernetes", "Dockerfile", "clamav").
	Category    string `json:"category,omitempty"`
	Description string `json:"description,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Evidence is what was matched, always redacted for secrets unless the
	// user asked for secrets to be shown.
	Evidence   string   `json:"evidence,omitempty"`
	References []string `json:"references,omitempty"`
	// Controls names the NIST SP 800-190 controls ("4.1.1") and CIS items
	// ("CIS-Docker-4.1") the check serves.
	Controls []string `json:"controls,omitempty"`
	// Engine names the engine that produced a malware finding ("clamav",
	// "yara", "sha256", EngineOSV).
	Engine string `json:"engine,omitempty"`
	// Owner is the OS package that installed the file, when one did, and
	// whether the file still has the content the package installed.
	Owner *FileOwner `json:"owner,omitempty"`
}

// FileOwner names the OS package (dpkg, rpm, apk) that installed a file,
// as its package database lists it with a digest.
type FileOwner struct {
	Package string `json:"package"`
	Version string `json:"version,omitempty"`
	// Type is the package's package-url type (deb, rpm, apk).
	Type string `json:"type"`
	// Modified is true when the file's content differs from the digest the
	// package database recorded at install: changed after install.
	Modified bool `json:"modified"`
}

// EngineOSV is the Engine of the malware findings the matcher makes from
// OSV malicious-package records (MAL-*): what tells them from clamd's,
// YARA's and the hash lists' when a re-match replaces them.
const EngineOSV = "osv"
