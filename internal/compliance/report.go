package compliance

import (
	"fmt"
	"time"
)

// ReportSchemaVersion is the version of the report's JSON schema
// (docs/compliance.md). Additive changes keep it.
const ReportSchemaVersion = 1

// Status of a control in a report.
type Status string

const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	// StatusNotApplicable: the control's subject does not exist here (no
	// registry configured with credentials, no kubelet on a bare host).
	StatusNotApplicable Status = "not_applicable"
	// StatusNotAssessed: the evidence is missing; Reason says which
	// component has not reported.
	StatusNotAssessed Status = "not_assessed"
)

// Label is the status as people read it.
func (s Status) Label() string {
	switch s {
	case StatusPass:
		return "pass"
	case StatusFail:
		return "fail"
	case StatusNotApplicable:
		return "not applicable"
	default:
		return "not assessed"
	}
}

// Report is one assessment of one standard.
type Report struct {
	SchemaVersion int       `json:"schemaVersion"`
	Standard      string    `json:"standard"`
	Title         string    `json:"title"`
	GeneratedAt   time.Time `json:"generatedAt"`
	// Summary counts the controls by status; Groups the same per group.
	Summary  Summary         `json:"summary"`
	Groups   []Summary       `json:"groups"`
	Controls []ControlResult `json:"controls"`
}

// Summary counts controls by status. Score is the share of assessed
// controls (pass + fail) that pass, in percent; -1 when none was assessed.
type Summary struct {
	Group         string  `json:"group,omitempty"`
	Pass          int     `json:"pass"`
	Fail          int     `json:"fail"`
	NotApplicable int     `json:"notApplicable"`
	NotAssessed   int     `json:"notAssessed"`
	Score         float64 `json:"score"`
}

// ControlResult is a control with its status and evidence.
type ControlResult struct {
	Control
	Status Status `json:"status"`
	// Reason says why: for a failure the first failing evidence, for "not
	// assessed" the missing source ("not assessed: agent not deployed").
	Reason string `json:"reason,omitempty"`
	// Evidence are the objects that decided the status, failing ones first.
	Evidence []EvidenceRef `json:"evidence"`
	// Omitted counts passing evidence objects left out of Evidence
	// (MaxEvidence).
	Omitted int `json:"omitted,omitempty"`
}

// EvidenceRef is one object that decided a control.
type EvidenceRef struct {
	// Kind: image, registry, policy, binding, namespace, node, pod,
	// setting, user, sudoers, listener, module, container, component, event.
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Result Status `json:"result"`
	Detail string `json:"detail,omitempty"`
	// Link is the object's console path ("/images/…").
	Link string `json:"link,omitempty"`
}

// MaxEvidence caps the evidence listed per control: failing objects are all
// kept up to the cap, passing ones are counted in Omitted past it.
const MaxEvidence = 50

func summarize(group string, rs []ControlResult) Summary {
	s := Summary{Group: group}
	for _, r := range rs {
		if group != "" && r.Group != group {
			continue
		}
		switch r.Status {
		case StatusPass:
			s.Pass++
		case StatusFail:
			s.Fail++
		case StatusNotApplicable:
			s.NotApplicable++
		default:
			s.NotAssessed++
		}
	}
	s.Score = -1
	if n := s.Pass + s.Fail; n > 0 {
		s.Score = float64(s.Pass) * 100 / float64(n)
	}
	return s
}

// Validate checks a report's invariants: every control has a known
// status, a pass has evidence and no failing evidence, a failure has a
// failing evidence object, "not assessed" has a reason.
func (r *Report) Validate() error {
	if r.SchemaVersion != ReportSchemaVersion {
		return fmt.Errorf("report schema version %d, want %d", r.SchemaVersion, ReportSchemaVersion)
	}
	for _, c := range r.Controls {
		fails := 0
		for _, e := range c.Evidence {
			if e.Result == StatusFail {
				fails++
			}
		}
		switch c.Status {
		case StatusPass:
			if len(c.Evidence) == 0 || fails > 0 {
				return fmt.Errorf("control %s passes with %d evidence objects, %d failing", c.ID, len(c.Evidence), fails)
			}
			if len(c.Tests) == 0 {
				return fmt.Errorf("control %s passes but names no test that makes it fail", c.ID)
			}
		case StatusFail:
			if fails == 0 {
				return fmt.Errorf("control %s fails with no failing evidence", c.ID)
			}
		case StatusNotAssessed, StatusNotApplicable:
			if c.Reason == "" {
				return fmt.Errorf("control %s is %s without a reason", c.ID, c.Status)
			}
		default:
			return fmt.Errorf("control %s: unknown status %q", c.ID, c.Status)
		}
	}
	return nil
}
