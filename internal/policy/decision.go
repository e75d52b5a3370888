package policy

import (
	"strconv"
	"strings"

	"mamori/internal/model"
)

// Decision is a policy's verdict about one subject.
type Decision struct {
	// Policy is the deciding policy's name.
	Policy string `json:"policy"`
	// Action is the strongest action of the violations (block > log for
	// admission; terminate > isolate > log for running workloads and
	// runtime hits), ActionAllow when nothing is violated.
	Action model.Action `json:"action"`
	// Violations are the rules broken, in rule order: each names the
	// policy, rule, control and offending field or finding.
	Violations []Violation `json:"violations,omitempty"`
	// Exempted are violations an exception waived (Exception and Reason
	// set); they do not count towards Action.
	Exempted []Violation `json:"exempted,omitempty"`
	// NeedScan lists images to scan inline before the decision is final
	// (UnknownImages scan): scan them, set Workload.Images and evaluate
	// again (with ImageScan.ScanError when the scan failed).
	NeedScan []string `json:"needScan,omitempty"`
	// ScanAfter lists images admitted without a scan, to scan afterwards.
	ScanAfter []string `json:"scanAfter,omitempty"`
}

// Violation is one broken rule on one field or finding.
type Violation struct {
	Policy string       `json:"policy"`
	Rule   string       `json:"rule"`
	Action model.Action `json:"action"`
	// Control is the check that failed: a Pod Security Standards control
	// ("privileged"), another criterion ("vulnerabilities", "registries"),
	// "cel", "unknownImage" or "runtime".
	Control string `json:"control"`
	// Field is the offending field's path in the object
	// ("spec.containers[1].securityContext.privileged"); empty for findings
	// of an image subject and for runtime hits.
	Field string `json:"field,omitempty"`
	// Container and Image name the container and its image, when the
	// violation is about one.
	Container string `json:"container,omitempty"`
	Image     string `json:"image,omitempty"`
	// Findings are the IDs of offending vulnerabilities or findings, the
	// first maxFindingIDs of Count.
	Findings []string `json:"findings,omitempty"`
	Count    int      `json:"count,omitempty"`
	// Message says what is wrong in a sentence.
	Message string `json:"message"`
	// Exception and Reason are set on exempted violations.
	Exception string `json:"exception,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// maxFindingIDs bounds the IDs listed in one violation (a denial message
// must stay readable; Count has the total).
const maxFindingIDs = 10

// String is one line for a denial message or a log:
// `policy "p" rule "r": control at field: message`.
func (v Violation) String() string {
	var b strings.Builder
	b.WriteString("policy ")
	b.WriteString(strconv.Quote(v.Policy))
	b.WriteString(" rule ")
	b.WriteString(strconv.Quote(v.Rule))
	b.WriteString(": ")
	b.WriteString(v.Control)
	if v.Field != "" {
		b.WriteString(" at ")
		b.WriteString(v.Field)
	}
	if v.Message != "" {
		b.WriteString(": ")
		b.WriteString(v.Message)
	}
	if v.Exception != "" {
		b.WriteString(" (exempted by ")
		b.WriteString(strconv.Quote(v.Exception))
		if v.Reason != "" {
			b.WriteString(": ")
			b.WriteString(v.Reason)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Message is the denial or warning text: the violations that carry the
// decision's action, one per line.
func (d Decision) Message() string {
	var lines []string
	for _, v := range d.Violations {
		if v.Action == d.Action {
			lines = append(lines, v.String())
		}
	}
	return strings.Join(lines, "\n")
}

// Warnings are the violations below the decision's action (admission
// warnings for a log rule), one line each.
func (d Decision) Warnings() []string {
	var out []string
	for _, v := range d.Violations {
		if v.Action != d.Action {
			out = append(out, v.String())
		}
	}
	return out
}

// actionRank orders actions by strength.
func actionRank(a model.Action) int {
	switch a {
	case model.ActionLog:
		return 1
	case model.ActionIsolate:
		return 2
	case model.ActionTerminate, model.ActionBlock:
		return 3
	}
	return 0
}

// family groups controls that check the same field, so that one field is
// reported once (under its strongest rule) when a baseline and a restricted
// control, or two rules, both flag it.
func family(control string) string {
	switch control {
	case CtlCapabilitiesRestricted:
		return CtlCapabilities
	case CtlSeccompRestricted:
		return CtlSeccomp
	case CtlProcMountRestricted:
		return CtlProcMount
	case CtlVolumeTypes:
		return CtlHostPath
	}
	return control
}

func quote(s string) string { return strconv.Quote(s) }
