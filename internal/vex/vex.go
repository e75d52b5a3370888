// Package vex suppresses matched vulnerabilities for the CI gate and
// reports: an ignore file (YAML, with reasons and expiry dates) and OpenVEX
// documents (https://github.com/openvex/spec) whose not_affected and fixed
// statements switch findings off.
package vex

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	packageurl "github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// Rules are the suppressions applied to one scan's vulnerabilities.
type Rules struct {
	// Ignores are the entries of ignore files (see ParseIgnore).
	Ignores []IgnoreRule
	// Statements are OpenVEX statements (see ParseOpenVEX), from any number
	// of documents.
	Statements []Statement
	// Products identify the scanned artifact ("pkg:oci/app@sha256:…"). A
	// VEX statement whose product is one of them applies to all of the
	// artifact's packages (or to its subcomponents only, when it names
	// some). When Products is empty the artifact is not checked: the VEX
	// documents given for a scan are taken to be about it.
	Products []string
	// Now decides which ignore entries have expired; zero means time.Now().
	Now time.Time
}

// Suppressed is a vulnerability a rule switched off, and why.
type Suppressed struct {
	Vulnerability model.Vulnerability `json:"vulnerability"`
	// By is "ignore" or "openvex".
	By string `json:"by"`
	// Rule names the rule: the ignore entry's ID, or the VEX document's @id.
	Rule string `json:"rule"`
	// Reason is the ignore entry's reason, or the VEX status and
	// justification ("not_affected: vulnerable_code_not_present").
	Reason string `json:"reason,omitempty"`
}

// Filter splits vulns into those kept and those a rule suppresses. An
// ignore entry past its expiry date no longer suppresses (Warnings lists
// them). For OpenVEX, the latest statement (by timestamp, then by order)
// about a vulnerability and package decides: not_affected and fixed
// suppress, affected and under_investigation keep it. Order is preserved.
func Filter(vulns []model.Vulnerability, rules *Rules) (kept []model.Vulnerability, suppressed []Suppressed) {
	if rules == nil {
		return vulns, nil
	}
	now := rules.now()
	for _, v := range vulns {
		if s, ok := rules.suppress(v, now); ok {
			suppressed = append(suppressed, s)
			continue
		}
		kept = append(kept, v)
	}
	return kept, suppressed
}

// Warnings says which ignore entries have expired and stopped ignoring.
func (r *Rules) Warnings() []string {
	now := r.now()
	var out []string
	for _, ig := range r.Ignores {
		if ig.expired(now) {
			out = append(out, fmt.Sprintf("ignore entry %s expired on %s: it no longer suppresses anything", ig.ID, ig.Expires))
		}
	}
	return out
}

func (r *Rules) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

func (r *Rules) suppress(v model.Vulnerability, now time.Time) (Suppressed, bool) {
	for _, ig := range r.Ignores {
		if !ig.expired(now) && ig.matches(v) {
			return Suppressed{Vulnerability: v, By: "ignore", Rule: ig.ID, Reason: ig.Reason}, true
		}
	}
	var latest *Statement
	for i := range r.Statements {
		st := &r.Statements[i]
		if !st.namesVulnerability(v) || !st.appliesTo(v, r.Products) {
			continue
		}
		if latest == nil || !st.Timestamp.Before(latest.Timestamp) {
			latest = st
		}
	}
	if latest == nil || (latest.Status != StatusNotAffected && latest.Status != StatusFixed) {
		return Suppressed{}, false
	}
	reason := latest.Status
	if j := cmp.Or(latest.Justification, latest.ImpactStatement); j != "" {
		reason += ": " + j
	}
	return Suppressed{Vulnerability: v, By: "openvex", Rule: latest.Document, Reason: reason}, true
}

// idMatches reports whether id names v (its ID or an alias), ignoring case.
func idMatches(id string, v model.Vulnerability) bool {
	if id == "" {
		return false
	}
	if strings.EqualFold(id, v.ID) {
		return true
	}
	for _, a := range v.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}

// purlMatches reports whether target is the package pattern names: same
// type, namespace and name; the version too when the pattern has one; and
// every qualifier the pattern has. A pattern without a version matches every
// version. Strings that do not parse as purls match only when equal.
func purlMatches(pattern, target string) bool {
	if pattern == "" || target == "" {
		return false
	}
	if pattern == target {
		return true
	}
	p, err := packageurl.FromString(pattern)
	if err != nil {
		return false
	}
	t, err := packageurl.FromString(target)
	if err != nil {
		return false
	}
	if !strings.EqualFold(p.Type, t.Type) || p.Namespace != t.Namespace || p.Name != t.Name {
		return false
	}
	if p.Version != "" && p.Version != t.Version {
		return false
	}
	tq := t.Qualifiers.Map()
	for k, val := range p.Qualifiers.Map() {
		if tq[k] != val {
			return false
		}
	}
	return true
}
