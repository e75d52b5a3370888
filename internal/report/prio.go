package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"mamori/internal/model"
	"mamori/internal/priority"
)

// How every format shows where a severity came from, known exploitation,
// EPSS, use at run time and the priority of a vulnerability.

// severityText is the severity, naming the record it was taken from when
// it is not the finding's own: "HIGH (from GHSA-69cg-p879-7622)".
func severityText(v *model.Vulnerability) string {
	if v.SeveritySource == "" {
		return v.Severity.String()
	}
	return v.Severity.String() + " (from " + v.SeveritySource + ")"
}

// exploitText is the short form for the table: "KEV 2023-11-21, EPSS 0.70, in use".
func exploitText(v *model.Vulnerability) string {
	var parts []string
	if k := v.KEV; k != nil {
		s := "KEV " + k.DateAdded
		if k.Ransomware {
			s += " ransomware"
		}
		parts = append(parts, s)
	}
	if e := v.EPSS; e != nil {
		parts = append(parts, "EPSS "+priority.FormatEPSS(e.Score))
	}
	if u := v.InUse; u != nil {
		if u.Loaded {
			parts = append(parts, "in use")
		} else {
			parts = append(parts, "not loaded")
		}
	}
	return strings.Join(parts, ", ")
}

// priorityText is "98.9" or "" without a priority.
func priorityText(v *model.Vulnerability) string {
	if v.Priority == nil {
		return ""
	}
	return strconv.FormatFloat(v.Priority.Score, 'f', 1, 64)
}

// vulnNotes are the lines SARIF and JUnit add to a vulnerability's text.
func vulnNotes(v *model.Vulnerability) []string {
	notes := []string{"Severity: " + v.Severity.String()}
	if v.SeveritySource != "" {
		notes[0] += ", from " + v.SeveritySource
	}
	if k := v.KEV; k != nil {
		s := fmt.Sprintf("Known exploited: in CISA's KEV catalogue since %s (%s)", k.DateAdded, k.CVE)
		if k.Ransomware {
			s += ", used in ransomware campaigns"
		}
		if k.DueDate != "" {
			s += ", due " + k.DueDate
		}
		notes = append(notes, s)
	}
	if e := v.EPSS; e != nil {
		s := fmt.Sprintf("EPSS: %s (percentile %s, %s", strconv.FormatFloat(e.Score, 'f', -1, 64),
			strconv.FormatFloat(e.Percentile, 'f', -1, 64), e.CVE)
		if e.Date != "" {
			s += ", " + e.Date
		}
		notes = append(notes, s+")")
	}
	if u := v.InUse; u != nil {
		if u.Loaded {
			n := max(u.Count, len(u.Containers))
			notes = append(notes, fmt.Sprintf("In use: loaded in %d container(s), last seen %s", n, u.LastSeen.UTC().Format(time.RFC3339)))
		} else {
			notes = append(notes, "In use: not loaded in the image's running containers")
		}
	}
	if p := v.Priority; p != nil {
		notes = append(notes, "Priority: "+priorityText(v)+" ("+p.Reason+")")
	}
	return notes
}
