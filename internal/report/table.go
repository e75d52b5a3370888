package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"mamori/internal/model"
	"mamori/internal/priority"
)

// maxCell bounds a table cell: titles can be paragraphs.
const maxCell = 60

func writeTable(w io.Writer, results []*model.Result, opts Options) error {
	ew := &errWriter{w: w}
	for i, r := range results {
		if i > 0 {
			ew.printf("\n")
		}
		writeTarget(ew, r, opts)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func writeTarget(ew *errWriter, r *model.Result, opts Options) {
	title := r.Target.Name
	if os := r.Inventory.OS; os != nil {
		title += fmt.Sprintf(" (%s %s)", os.ID, os.VersionID)
	}
	ew.printf("%s\n%s\n", clean(title), strings.Repeat("=", min(len([]rune(clean(title))), 100)))
	ew.printf("Packages: %d", len(r.Inventory.Packages))
	if len(r.Vulnerabilities) > 0 || contains(r.Scanners, "vuln") {
		ew.printf("   Vulnerabilities: %d (%s)", len(r.Vulnerabilities), vulnCounts(r))
		if n := knownExploited(r); n > 0 {
			ew.printf("   Known exploited: %d", n)
		}
	}
	ew.printf("\n")
	for _, warn := range r.Warnings {
		ew.printf("warning: %s\n", clean(warn))
	}
	if opts.SBOM {
		ew.printf("\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "NAME\tVERSION\tTYPE\tPATH\n")
		for _, p := range r.Inventory.Packages {
			path := ""
			if len(p.Locations) > 0 {
				path = p.Locations[0].Path
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cell(p.Name), cell(p.Version), p.Type, cell(path))
		}
		_ = tw.Flush() // errors surface through ew
		return
	}
	if len(r.Vulnerabilities) > 0 {
		ew.printf("\n")
		// Most urgent first (internal/priority); the other formats keep
		// the result's order.
		vulns := slices.Clone(r.Vulnerabilities)
		priority.Sort(vulns)
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "PRIORITY\tPACKAGE\tVULNERABILITY\tSEVERITY\tEXPLOIT\tINSTALLED\tFIXED\tTITLE\n")
		for i := range vulns {
			v := &vulns[i]
			id := v.ID
			if cve := firstCVE(v.Aliases); cve != "" && !strings.HasPrefix(id, "CVE-") {
				id += " (" + cve + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", priorityText(v), cell(v.Package.Name), cell(id), cell(severityText(v)),
				cell(exploitText(v)), cell(v.Package.Version), cell(v.FixedVersion), cell(v.Summary))
		}
		_ = tw.Flush()
	}
	for _, k := range []model.FindingKind{model.KindMalware, model.KindSecret, model.KindMisconfig} {
		var fs []model.Finding
		for _, f := range r.Findings {
			if f.Kind == k {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		ew.printf("\n%s (%d)\n", strings.ToUpper(string(k)), len(fs))
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "SEVERITY\tID\tLOCATION\tTITLE\tEVIDENCE\n")
		for _, f := range fs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, cell(f.ID), cell(location(f.Location)), cell(f.Title), cell(f.Evidence))
		}
		_ = tw.Flush()
	}
}

func location(l model.Location) string {
	s := l.Path
	if l.Inner != "" {
		s += "!/" + l.Inner
	}
	if l.StartLine > 0 {
		s += fmt.Sprintf(":%d", l.StartLine)
	}
	if l.Config != "" {
		if s != "" {
			s += " "
		}
		s += "[" + l.Config + "]"
	}
	return s
}

func vulnCounts(r *model.Result) string {
	counts := map[model.Severity]int{}
	for _, v := range r.Vulnerabilities {
		counts[v.Severity]++
	}
	var parts []string
	for s := model.SeverityCritical; s >= model.SeverityUnknown; s-- {
		parts = append(parts, fmt.Sprintf("%s: %d", s, counts[s]))
	}
	return strings.Join(parts, ", ")
}

func knownExploited(r *model.Result) int {
	n := 0
	for _, v := range r.Vulnerabilities {
		if v.KEV != nil {
			n++
		}
	}
	return n
}

func firstCVE(ids []string) string {
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			return id
		}
	}
	return ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// clean makes text from scanned content safe for a terminal: control
// characters (escape sequences in hostile file names) are replaced.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

func cell(s string) string {
	s = clean(s)
	if r := []rune(s); len(r) > maxCell {
		return string(r[:maxCell-1]) + "…"
	}
	return s
}
