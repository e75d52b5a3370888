package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"mamori/internal/model"
)

// JUnit XML as CI dashboards (Jenkins, GitLab) read it: one suite per
// target and scanner, one failing test case per vulnerability or finding,
// and a passing case when a scanner found nothing.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
	// SystemErr carries the scan's warnings, where CI systems show a
	// suite's diagnostics.
	SystemErr string `xml:"system-err,omitempty"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, results []*model.Result) error {
	out := junitSuites{Name: "mamori"}
	for _, r := range results {
		vs := junitSuite{Name: r.Target.Name + " [vulnerabilities]"}
		for _, v := range r.Vulnerabilities {
			vs.Cases = append(vs.Cases, junitCase{
				Classname: v.Package.Name + "@" + v.Package.Version, Name: "[" + v.Severity.String() + "] " + v.ID,
				Failure: &junitFailure{Message: v.Summary, Type: v.Severity.String(),
					Text: fmt.Sprintf("%s %s in %s %s (fixed: %s)\n%s", v.Severity, v.ID, v.Package.Name, v.Package.Version, orNone(v.FixedVersion),
						strings.Join(vulnNotes(&v), "\n"))},
			})
		}
		fs := junitSuite{Name: r.Target.Name + " [findings]"}
		for _, f := range r.Findings {
			fs.Cases = append(fs.Cases, junitCase{
				Classname: string(f.Kind) + ":" + location(f.Location), Name: "[" + f.Severity.String() + "] " + f.ID,
				Failure: &junitFailure{Message: f.Title, Type: f.Severity.String(), Text: f.Title + " " + f.Evidence},
			})
		}
		vs.SystemErr = strings.Join(r.Warnings, "\n")
		for _, s := range []*junitSuite{&vs, &fs} {
			s.Failures = len(s.Cases)
			if len(s.Cases) == 0 {
				s.Cases = []junitCase{{Classname: r.Target.Name, Name: "no issues found"}}
			}
			s.Tests = len(s.Cases)
			out.Suites = append(out.Suites, *s)
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("report: junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("report: junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
