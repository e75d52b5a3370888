package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"mamori/internal/model"
)

// SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/) in the
// shape GitHub code scanning accepts: one run, rules with a
// security-severity property, results with a physical location.
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations,omitempty"`
	Results     []sarifResult     `json:"results"`
}

// sarifInvocation carries the scan's warnings as tool execution
// notifications (SARIF 2.1.0 §3.20.21), where CI systems show them.
type sarifInvocation struct {
	ExecutionSuccessful bool                `json:"executionSuccessful"`
	Notifications       []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	ShortDescription sarifText      `json:"shortDescription"`
	FullDescription  sarifText      `json:"fullDescription"`
	HelpURI          string         `json:"helpUri,omitempty"`
	Help             sarifText      `json:"help"`
	Default          sarifConfig    `json:"defaultConfiguration"`
	Properties       map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
	// Properties carry a vulnerability's priority and use at run time.
	Properties map[string]any `json:"properties,omitempty"`
}

type sarifLocation struct {
	Physical sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	Artifact sarifArtifact `json:"artifactLocation"`
	Region   *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
	EndLine   int `json:"endLine,omitempty"`
}

type sarifBuilder struct {
	rules map[string]int
	run   sarifRun
}

func (b *sarifBuilder) rule(r sarifRule) int {
	if i, ok := b.rules[r.ID]; ok {
		return i
	}
	b.rules[r.ID] = len(b.run.Tool.Driver.Rules)
	b.run.Tool.Driver.Rules = append(b.run.Tool.Driver.Rules, r)
	return b.rules[r.ID]
}

func writeSARIF(w io.Writer, results []*model.Result) error {
	b := &sarifBuilder{rules: map[string]int{}}
	b.run.Tool.Driver = sarifDriver{Name: "mamori", InformationURI: "https://github.com/mamori-security/mamori", Rules: []sarifRule{}}
	b.run.Results = []sarifResult{}
	for _, r := range results {
		if b.run.Tool.Driver.Version == "" {
			b.run.Tool.Driver.Version = r.Tool.Version
		}
		for _, v := range r.Vulnerabilities {
			b.addVuln(r, v)
		}
		for _, f := range r.Findings {
			b.addFinding(r, f)
		}
	}
	if warns := warnings(results); len(warns) > 0 {
		inv := sarifInvocation{ExecutionSuccessful: true}
		for _, w := range warns {
			inv.Notifications = append(inv.Notifications, sarifNotification{Level: "warning", Message: sarifText{Text: w}})
		}
		b.run.Invocations = []sarifInvocation{inv}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{b.run}}); err != nil {
		return fmt.Errorf("report: sarif: %w", err)
	}
	return nil
}

func (b *sarifBuilder) addVuln(r *model.Result, v model.Vulnerability) {
	title := v.Summary
	if title == "" {
		title = v.ID + " in " + v.Package.Name
	}
	notes := strings.Join(vulnNotes(&v), "\n")
	help := fmt.Sprintf("Vulnerability %s\nPackage: %s\nInstalled: %s\nFixed: %s\n%s", v.ID, v.Package.Name, v.Package.Version, orNone(v.FixedVersion), notes)
	props := map[string]any{"tags": []string{"vulnerability", "security", v.Severity.String()}, "precision": "very-high", "security-severity": securitySeverity(v.Severity, v.CVSS)}
	if v.SeveritySource != "" {
		props["severitySource"] = v.SeveritySource
	}
	if v.KEV != nil {
		props["kev"] = v.KEV
		props["tags"] = append(props["tags"].([]string), "known-exploited")
	}
	if v.EPSS != nil {
		props["epss"] = v.EPSS
	}
	idx := b.rule(sarifRule{
		ID: v.ID, Name: "Vulnerability", ShortDescription: sarifText{Text: title}, FullDescription: sarifText{Text: firstNonEmpty(v.Details, title)},
		HelpURI: "https://osv.dev/vulnerability/" + v.ID, Help: sarifText{Text: help, Markdown: strings.ReplaceAll(help, "\n", "  \n")},
		Default:    sarifConfig{Level: sarifLevel(v.Severity)},
		Properties: props,
	})
	msg := fmt.Sprintf("Package: %s\nInstalled Version: %s\nVulnerability: %s\nFixed Version: %s\nTarget: %s\n%s",
		v.Package.Name, v.Package.Version, v.ID, orNone(v.FixedVersion), r.Target.Name, notes)
	var rprops map[string]any
	if v.Priority != nil || v.InUse != nil {
		rprops = map[string]any{}
		if v.Priority != nil {
			rprops["priority"] = v.Priority
		}
		if v.InUse != nil {
			rprops["inUse"] = v.InUse
		}
	}
	b.run.Results = append(b.run.Results, sarifResult{RuleID: v.ID, RuleIndex: idx, Level: sarifLevel(v.Severity),
		Message: sarifText{Text: msg}, Locations: []sarifLocation{loc(r, v.Package.Path, 0, 0)}, Properties: rprops})
}

func (b *sarifBuilder) addFinding(r *model.Result, f model.Finding) {
	idx := b.rule(sarifRule{
		ID: f.ID, Name: string(f.Kind), ShortDescription: sarifText{Text: f.Title}, FullDescription: sarifText{Text: firstNonEmpty(f.Description, f.Title)},
		Help:       sarifText{Text: firstNonEmpty(f.Remediation, f.Title)},
		Default:    sarifConfig{Level: sarifLevel(f.Severity)},
		Properties: map[string]any{"tags": []string{string(f.Kind), "security", f.Severity.String()}, "precision": "high", "security-severity": securitySeverity(f.Severity, nil)},
	})
	msg := f.Title
	if f.Evidence != "" {
		msg += " (" + f.Evidence + ")"
	}
	b.run.Results = append(b.run.Results, sarifResult{RuleID: f.ID, RuleIndex: idx, Level: sarifLevel(f.Severity),
		Message: sarifText{Text: msg}, Locations: []sarifLocation{loc(r, f.Location.Path, f.Location.StartLine, f.Location.EndLine)}})
}

// loc makes a location GitHub accepts: a relative URI (the target name for
// image configuration findings) and a region starting at line 1 or later.
func loc(r *model.Result, path string, start, end int) sarifLocation {
	uri := path
	if uri == "" {
		uri = r.Target.Name
	}
	if start <= 0 {
		start = 1
	}
	if end < start {
		end = start
	}
	return sarifLocation{Physical: sarifPhysical{Artifact: sarifArtifact{URI: uri}, Region: &sarifRegion{StartLine: start, EndLine: end}}}
}

func sarifLevel(s model.Severity) string {
	switch s {
	case model.SeverityCritical, model.SeverityHigh:
		return "error"
	case model.SeverityMedium:
		return "warning"
	case model.SeverityLow, model.SeverityNegligible:
		return "note"
	}
	return "none"
}

// securitySeverity is GitHub's 0.0–10.0 score string: the highest CVSS base
// score when there is one, else the middle of the severity's band.
func securitySeverity(s model.Severity, cvss []model.CVSS) string {
	best := -1.0
	for _, c := range cvss {
		if c.Score > best {
			best = c.Score
		}
	}
	if best < 0 {
		best = map[model.Severity]float64{model.SeverityCritical: 9.5, model.SeverityHigh: 8.0, model.SeverityMedium: 5.5,
			model.SeverityLow: 2.0, model.SeverityNegligible: 0.5}[s]
	}
	return strconv.FormatFloat(best, 'f', 1, 64)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
