package console

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"mamori/internal/compliance"
	"mamori/internal/service/assessments"
)

// chartSnapshots bounds the history the score chart draws.
const chartSnapshots = 200

// standardTab is one standard's tab on the Compliance page.
type standardTab struct {
	ID, Label string
	Active    bool
}

func standardTabs(active string) []standardTab {
	return []standardTab{
		{compliance.StandardNIST800190, "NIST SP 800-190", active == compliance.StandardNIST800190},
		{compliance.StandardCISDocker, "CIS Docker", active == compliance.StandardCISDocker},
		{compliance.StandardCISKubernetes, "CIS Kubernetes", active == compliance.StandardCISKubernetes},
	}
}

// complianceData is the Compliance page: the current assessment of a
// standard, its score per group over time and the controls.
type complianceData struct {
	Standard string
	Tabs     []standardTab
	Report   *compliance.Report
	Chart    template.HTML
	History  []assessments.Snapshot
	// LastSnapshot is the newest stored snapshot (cause and time).
	LastSnapshot *assessments.Snapshot
}

func (c *Console) standardParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	std, err := assessments.CheckStandard(strings.TrimSpace(r.URL.Query().Get("standard")))
	if err != nil {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return "", false
	}
	return std, true
}

func (c *Console) compliancePage(w http.ResponseWriter, r *http.Request) {
	std, ok := c.standardParam(w, r)
	if !ok {
		return
	}
	a := c.opt.services.Assessments
	rep, err := a.Report(r.Context(), std)
	if err != nil {
		c.storeError(w, r, "compliance report", err)
		return
	}
	hist, err := a.History(r.Context(), std, chartSnapshots)
	if err != nil {
		c.storeError(w, r, "compliance history", err)
		return
	}
	d := complianceData{Standard: std, Tabs: standardTabs(std), Report: rep, History: hist}
	if len(hist) > 0 {
		d.LastSnapshot = &hist[0]
	}
	groups := make([]string, 0, len(rep.Groups))
	for _, g := range rep.Groups {
		groups = append(groups, g.Group)
	}
	d.Chart = scoreChart(hist, groups)
	p := c.newPage(r, "compliance", "Compliance", crumb{Label: "Compliance"})
	p.Data = d
	p.Flash = complianceFlash(r)
	c.render(w, r, http.StatusOK, "compliance", p)
}

func complianceFlash(r *http.Request) *flash {
	if r.URL.Query().Get("assessed") == "1" {
		return &flash{Kind: "ok", Text: "Registries probed, signatures verified and every standard re-assessed."}
	}
	return nil
}

// controlData is one control's drill-down.
type controlData struct {
	Standard string
	Control  compliance.ControlResult
	Report   *compliance.Report
}

func (c *Console) controlPage(w http.ResponseWriter, r *http.Request) {
	std, ok := c.standardParam(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	rep, err := c.opt.services.Assessments.Report(r.Context(), std)
	if err != nil {
		c.storeError(w, r, "compliance report", err)
		return
	}
	for _, ctl := range rep.Controls {
		if ctl.ID != id {
			continue
		}
		p := c.newPage(r, "compliance", ctl.ID+" "+ctl.Title, crumb{Label: "Compliance", Href: "/compliance?standard=" + std},
			crumb{Label: ctl.ID})
		p.Data = controlData{Standard: std, Control: ctl, Report: rep}
		c.render(w, r, http.StatusOK, "compliance_control", p)
		return
	}
	c.notFound(w, r, "The standard has no control "+truncate(id, 64)+".")
}

// complianceAssess re-assesses now (operator and above), as POST
// /api/v1/compliance/assess does.
func (c *Console) complianceAssess(w http.ResponseWriter, r *http.Request) {
	std, err := assessments.CheckStandard(strings.TrimSpace(r.URL.Query().Get("standard")))
	if err != nil {
		std = compliance.StandardNIST800190
	}
	a := c.opt.services.Assessments
	if _, err := a.CheckRegistries(r.Context(), true); err != nil {
		c.storeError(w, r, "registry checks", err)
		return
	}
	if _, err := a.Reassess(r.Context(), "requested"); err != nil {
		c.storeError(w, r, "compliance assessment", err)
		return
	}
	http.Redirect(w, r, "/compliance?standard="+std+"&assessed=1", http.StatusSeeOther)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// groupColors are the chart's line colours, one per group in order.
var groupColors = []string{"#2f80d8", "#0f9d76", "#ea580c", "#8b5cf6", "#b91c1c", "#d99a06"}

// scoreChart draws the score of each group over time (snapshots newest
// first) as an SVG line chart: x is time, y the score from 0 to 100 %; a
// group not assessed in a snapshot leaves a gap. Only numbers and the
// escaped group names reach the markup.
func scoreChart(hist []assessments.Snapshot, groups []string) template.HTML {
	if len(hist) == 0 {
		return ""
	}
	const w, h, left, right, top, bottom = 720.0, 220.0, 44.0, 130.0, 12.0, 28.0
	pw, ph := w-left-right, h-top-bottom
	first, last := hist[len(hist)-1].GeneratedAt, hist[0].GeneratedAt
	span := last.Sub(first)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return left + pw
		}
		return left + pw*float64(t.Sub(first))/float64(span)
	}
	y := func(score float64) float64 { return top + ph*(1-score/100) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="score-chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="Score per group over time">`, w, h)
	for _, v := range []float64{0, 25, 50, 75, 100} {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e3e7ee" stroke-width="1"/>`, left, left+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#6b7587">%.0f%%</text>`, left-6, y(v)+3, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#6b7587">%s</text>`, left, h-8, template.HTMLEscapeString(first.UTC().Format("2006-01-02 15:04")))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#6b7587">%s</text>`, left+pw, h-8, template.HTMLEscapeString(last.UTC().Format("2006-01-02 15:04")))
	for gi, g := range groups {
		color := groupColors[gi%len(groupColors)]
		var seg []string
		flush := func() {
			if len(seg) == 1 {
				var px, py float64
				fmt.Sscanf(seg[0], "%f,%f", &px, &py)
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px, py, color)
			} else if len(seg) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for i := len(hist) - 1; i >= 0; i-- {
			s := hist[i]
			score := -1.0
			for _, gs := range s.Groups {
				if gs.Group == g {
					score = gs.Score
				}
			}
			if score < 0 {
				flush()
				continue
			}
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(s.GeneratedAt), y(score)))
		}
		flush()
		ly := top + 14 + float64(gi)*18
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="4" fill="%s"/>`, left+pw+12, ly-4, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#3a4354">%s</text>`, left+pw+30, ly, template.HTMLEscapeString(g))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // #nosec G203 -- numbers and escaped text only, built above
}
