package compliance

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Formats of a rendered report.
const (
	FormatJSON = "json"
	FormatHTML = "html"
	FormatPDF  = "pdf"
)

// Render writes r in format. base prefixes the evidence links (the
// console's URL, "" for relative links).
func Render(w io.Writer, r *Report, format, base string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("render report as JSON: %w", err)
		}
		return nil
	case FormatHTML:
		return RenderHTML(w, r, base)
	case FormatPDF:
		return RenderPDF(w, r, base)
	default:
		return fmt.Errorf("%w: report format %q: want json, html or pdf", ErrFormat, format)
	}
}

// ContentType returns the media type of a format.
func ContentType(format string) string {
	switch format {
	case FormatHTML:
		return "text/html; charset=utf-8"
	case FormatPDF:
		return "application/pdf"
	default:
		return "application/json"
	}
}

func link(base, l string) string {
	if l == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + l
}

func scoreText(s Summary) string {
	if s.Score < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", s.Score)
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"link":  func(base, l string) string { return link(base, l) },
	"score": scoreText,
	"label": func(s Status) string { return s.Label() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.R.Title}} — mamori compliance report</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#1b1f24;font-size:14px}
h1{font-size:1.6em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.5em 0 .4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f2f4f7}.pass{color:#116329;font-weight:600}.fail{color:#b3261e;font-weight:600}
.not_assessed{color:#7a5c00;font-weight:600}.not_applicable{color:#57606a;font-weight:600}
.control{page-break-inside:avoid;break-inside:avoid;margin:1em 0;padding:.6em .8em;border:1px solid #d0d7de;border-radius:4px}
.control h3{margin:0 0 .3em;font-size:1.05em}.meta{color:#57606a;font-size:.9em}.cm{margin:.4em 0}
.ev td{font-size:.9em}@media print{body{margin:0;font-size:11px}a{color:inherit;text-decoration:none}
.control{border-color:#999}h2{page-break-after:avoid}}
</style></head><body>
<h1>{{.R.Title}}</h1>
<div class="meta">Standard <code>{{.R.Standard}}</code> · generated {{.R.GeneratedAt.Format "2006-01-02 15:04:05 UTC"}} · mamori compliance report schema {{.R.SchemaVersion}}</div>
<h2>Summary</h2>
<table id="summary"><tr><th>Group</th><th>Pass</th><th>Fail</th><th>Not applicable</th><th>Not assessed</th><th>Score</th></tr>
{{range .R.Groups}}<tr><td>{{.Group}}</td><td>{{.Pass}}</td><td>{{.Fail}}</td><td>{{.NotApplicable}}</td><td>{{.NotAssessed}}</td><td>{{score .}}</td></tr>
{{end}}<tr><th>All</th><th>{{.R.Summary.Pass}}</th><th>{{.R.Summary.Fail}}</th><th>{{.R.Summary.NotApplicable}}</th><th>{{.R.Summary.NotAssessed}}</th><th>{{score .R.Summary}}</th></tr></table>
<h2>Controls</h2>
<table id="controls"><tr><th>ID</th>{{if .Seeds}}<th>Risk</th>{{end}}<th>Title</th><th>Status</th><th>Reason</th></tr>
{{range .R.Controls}}<tr><td><a href="#c-{{.ID}}">{{.ID}}</a></td>{{if $.Seeds}}<td>{{.Seed}}</td>{{end}}<td>{{.Title}}</td><td class="{{.Status}}">{{label .Status}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
{{range .R.Controls}}<div class="control" id="c-{{.ID}}">
<h3>{{.ID}}{{if .Seed}} (risk {{.Seed}}){{end}} {{.Title}} — <span class="{{.Status}}">{{label .Status}}</span></h3>
{{if .Reason}}<div><b>Reason:</b> {{.Reason}}</div>{{end}}
<div class="cm"><b>Countermeasure:</b> {{.Countermeasure}}</div>
<div class="meta"><b>mamori feature:</b> {{.Feature}}<br><b>Evidence read:</b> {{.Reads}}<br><b>Fails in:</b> {{range $i, $t := .Tests}}{{if $i}}, {{end}}<code>{{$t}}</code>{{end}}</div>
{{if .Evidence}}<table class="ev"><tr><th>Result</th><th>Kind</th><th>Object</th><th>Detail</th></tr>
{{range .Evidence}}<tr><td class="{{.Result}}">{{label .Result}}</td><td>{{.Kind}}</td><td>{{if .Link}}<a href="{{link $.Base .Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{end}}{{if .Omitted}}<div class="meta">{{.Omitted}} more passing objects omitted.</div>{{end}}
</div>
{{end}}</body></html>
`))

// RenderHTML writes r as one self-contained HTML page that prints well
// (no script, no external asset, one control per unbroken block).
func RenderHTML(w io.Writer, r *Report, base string) error {
	seeds := len(r.Controls) > 0 && r.Controls[0].Seed != ""
	if err := htmlTmpl.Execute(w, struct {
		R     *Report
		Base  string
		Seeds bool
	}{r, base, seeds}); err != nil {
		return fmt.Errorf("render report as HTML: %w", err)
	}
	return nil
}
