package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mamori/internal/auth"
	"mamori/internal/compliance"
	"mamori/internal/model"
	"mamori/internal/priority"
	"mamori/internal/store"
)

// pageTemplate is one parsed page and the template to execute.
type pageTemplate struct {
	t     *template.Template
	entry string
}

// pageFiles maps each page to its file; all pages but login are rendered
// inside layout.html.
var pageFiles = map[string]string{
	"login":              "login.html",
	"images":             "images.html",
	"image":              "image.html",
	"vulns":              "vulns.html",
	"vuln":               "vuln.html",
	"events":             "events.html",
	"attack":             "attack.html",
	"rulesets":           "rulesets.html",
	"registries":         "registries.html",
	"policies":           "policies.html",
	"policy":             "policy.html",
	"clusters":           "clusters.html",
	"cluster":            "cluster.html",
	"registry_form":      "registry_form.html",
	"scanner":            "scanner.html",
	"tokens":             "tokens.html",
	"error":              "error.html",
	"compliance":         "compliance.html",
	"compliance_control": "compliance_control.html",
	"hosts":              "hosts.html",
	"hostgroup":          "hostgroup.html",
	"allowlist":          "allowlist.html",
	"quarantine":         "quarantine.html",
	"baselines":          "baselines.html",
}

func parsePages(fsys fs.FS) (map[string]*pageTemplate, error) {
	out := make(map[string]*pageTemplate, len(pageFiles))
	for name, file := range pageFiles {
		files := []string{"templates/partials.html", "templates/layout.html", "templates/" + file}
		entry := "layout"
		if name == "login" {
			files = []string{"templates/partials.html", "templates/" + file}
			entry = "login"
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(fsys, files...)
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", file, err)
		}
		out[name] = &pageTemplate{t: t, entry: entry}
	}
	return out, nil
}

// page is what every template gets.
type page struct {
	// Name is the page's template name (body data-page, for tests and CSS).
	Name    string
	Title   string
	Nav     string
	Crumbs  []crumb
	User    *viewer
	CSRF    string
	Version string
	Flash   *flash
	Data    any
}

type crumb struct {
	Label string
	Href  string
}

type flash struct {
	Kind string // ok, error, info
	Text string
}

// viewer is the logged-in principal as the templates see it.
type viewer struct {
	Name    string
	Role    auth.Role
	IsAdmin bool
	// CanIngest: operator and above.
	CanIngest bool
}

func (c *Console) newPage(r *http.Request, nav, title string, crumbs ...crumb) *page {
	p := &page{Title: title, Nav: nav, Crumbs: crumbs, Version: c.opt.version, CSRF: auth.CSRFToken(r)}
	if pr, ok := auth.PrincipalFromRequest(r); ok {
		p.User = &viewer{
			Name:      pr.TokenName,
			Role:      pr.Role,
			IsAdmin:   pr.Allowed(auth.ActionAdmin),
			CanIngest: pr.Allowed(auth.ActionIngest),
		}
	}
	return p
}

// render executes a page into a buffer first, so that a template error
// never sends half a page with a 200.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	pt, ok := c.pages[name]
	if !ok {
		c.opt.logger.Error("console: unknown page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Name = name
	var buf bytes.Buffer
	if err := pt.t.ExecuteTemplate(&buf, pt.entry, p); err != nil {
		c.opt.logger.Error("console: render page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client may be gone; nothing to do
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// readForm reads a page's form, its body capped at maxFormBytes; on a bad
// or oversized body it answers 400 and reports false.
func (c *Console) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	return true
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	p := c.newPage(r, "", heading)
	p.Data = errorData{Status: status, Heading: heading, Message: msg}
	c.render(w, r, status, "error", p)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	c.errorPage(w, r, http.StatusNotFound, "Not found", msg)
}

// storeError answers a store failure: 404 for ErrNotFound, else 500 with
// the cause logged (not shown: it may name internals).
func (c *Console) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		c.notFound(w, r, "The "+what+" does not exist (or no longer does).")
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	c.opt.logger.Error("console: store", "what", what, "path", r.URL.Path, "err", err)
	c.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"The store could not answer ("+what+"). The server log has the details.")
}

// ---------------------------------------------------------------------------
// template functions

var funcs = template.FuncMap{
	"sevClass":    sevClass,
	"sevName":     sevName,
	"ago":         ago,
	"datetime":    datetime,
	"shortHash":   shortHash,
	"bytes":       humanBytes,
	"cvss":        fmtCVSS,
	"disp":        disp,
	"brk":         breakable,
	"osPkg":       func(typ string) bool { return typ == "deb" || typ == "apk" || typ == "rpm" },
	"prose":       prose,
	"initial":     initial,
	"sevbar":      sevbar,
	"distbar":     distbar,
	"add":         func(a, b int) int { return a + b },
	"sub":         func(a, b int) int { return a - b },
	"join":        strings.Join,
	"num":         fmtNum,
	"num64":       func(n int64) string { return fmtNum(int(n)) },
	"dur":         fmtDuration,
	"isURL":       isHTTPURL,
	"roleName":    func(r any) string { return fmt.Sprint(r) },
	"pathEsc":     url.PathEscape,
	"deref":       func(f *float64) float64 { return *f },
	"prio":        fmtPriority,
	"epss":        fmtEPSS,
	"digest":      shortDigest,
	"statusClass": func(s compliance.Status) string { return "st-" + strings.ReplaceAll(string(s), "_", "-") },
	"score": func(s float64) string {
		if s < 0 {
			return "–"
		}
		return strconv.FormatFloat(s, 'f', 0, 64) + "%"
	},
}

// fmtPriority is a priority score ("77.8"), "—" without one.
func fmtPriority(v any) string {
	switch p := v.(type) {
	case *float64:
		if p != nil {
			return strconv.FormatFloat(*p, 'f', 1, 64)
		}
	case *model.Priority:
		if p != nil {
			return strconv.FormatFloat(p.Score, 'f', 1, 64)
		}
	}
	return "—"
}

// fmtEPSS is an EPSS probability as people quote it ("0.70", "0.00069").
func fmtEPSS(e *model.EPSS) string {
	if e == nil {
		return "—"
	}
	return priority.FormatEPSS(e.Score)
}

func sevClass(s model.Severity) string { return strings.ToLower(s.String()) }

func sevName(s model.Severity) string {
	n := strings.ToLower(s.String())
	return strings.ToUpper(n[:1]) + n[1:]
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
	return t.UTC().Format("2 Jan 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func datetime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// shortHash shortens "sha256:<64 hex>" to "sha256:<12 hex>".
func shortHash(s string) string {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok {
		algo, hex = "", s
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if algo == "" {
		return disp(hex)
	}
	return disp(algo + ":" + hex)
}

func humanBytes(n int64) string {
	if n <= 0 {
		return "—"
	}
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTP"[exp]) + "iB"
}

func fmtCVSS(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func fmtNum(n int) string {
	s := strconv.Itoa(n)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "manual"
	case d%(24*time.Hour) == 0:
		return "every " + plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return "every " + plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return "every " + plural(int(d/time.Minute), "minute")
	}
	return "every " + d.String()
}

// disp makes untrusted one-line text displayable: html/template escapes
// markup; disp also shows control characters (ESC, NUL, CR, LF, bidi
// overrides ...) as visible \xNN / \u escapes instead of letting them move
// the cursor, break lines or reorder text, and replaces invalid UTF-8.
func disp(s string) string { return sanitize(s, false) }

// breakable is disp for long identifiers (image references, paths, purls):
// it escapes the text itself and adds <wbr> line-break opportunities after
// "/", ":" and "@" so that a narrow column wraps at a separator rather than
// in the middle of a word.
func breakable(s string) template.HTML {
	s = disp(s)
	var b strings.Builder
	for _, r := range s {
		b.WriteString(template.HTMLEscapeString(string(r)))
		if r == '/' || r == ':' || r == '@' {
			b.WriteString("<wbr>")
		}
	}
	return template.HTML(b.String()) // every piece escaped above
}

// prose is disp for multi-line text: it keeps newlines and tabs.
func prose(s string) string { return sanitize(s, true) }

func sanitize(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || needsEscape(r, keepLines) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case needsEscape(r, keepLines):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune, keepLines bool) bool {
	if keepLines && (r == '\n' || r == '\t') {
		return false
	}
	if unicode.IsControl(r) {
		return true
	}
	// Bidirectional controls (Trojan Source, CVE-2021-42574) and zero-width
	// characters make a name read differently from what it is.
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f,
		r == 0x200b, r == 0x200c, r == 0x200d, r == 0xfeff:
		return true
	}
	return false
}

func initial(name string) string {
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return string(unicode.ToUpper(r))
		}
	}
	return "?"
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// barSeg is one rectangle of a severity bar (SVG: widths as attributes,
// since the CSP forbids style attributes).
type barSeg struct {
	Class string
	X, W  float64
}

// sevbar splits width among the severity counts of c.
func sevbar(c store.SeverityCounts, width int) []barSeg {
	total := c.Total()
	if total == 0 {
		return []barSeg{{Class: "b-none", X: 0, W: float64(width)}}
	}
	parts := []struct {
		class string
		n     int
	}{
		{"b-critical", c.Critical}, {"b-high", c.High}, {"b-medium", c.Medium},
		{"b-low", c.Low}, {"b-other", c.Negligible + c.Unknown},
	}
	var segs []barSeg
	x := 0.0
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		w := float64(width) * float64(p.n) / float64(total)
		if w < 2 {
			w = 2 // keep a single critical visible in a bar of thousands
		}
		segs = append(segs, barSeg{Class: p.class, X: x, W: w})
		x += w
	}
	// Rounding up tiny parts can overflow the width: scale back.
	if x > float64(width) {
		k := float64(width) / x
		x = 0
		for i := range segs {
			segs[i].X = x
			segs[i].W *= k
			x += segs[i].W
		}
	}
	return segs
}

// distbar is the width (0..100) of n against max, for distribution rows.
func distbar(n, max int) float64 {
	if max <= 0 || n <= 0 {
		return 0
	}
	w := 100 * float64(n) / float64(max)
	if w < 1 {
		w = 1
	}
	return w
}
