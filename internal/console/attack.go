package console

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"mamori/internal/api"
	"mamori/internal/service"
	"mamori/internal/service/events"
	"mamori/internal/service/runtimerules"
)

// defaultAttackRange is the matrix's time range when none is chosen.
const defaultAttackRange = "7d"

// attackRanges are the choices of the time range, in the form's order.
var attackRanges = []struct{ Value, Label string }{
	{"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"7d", "Last 7 days"}, {"30d", "Last 30 days"},
	{"90d", "Last 90 days"}, {"all", "All stored events"},
}

// attackData is the ATT&CK matrix page.
type attackData struct {
	Form   url.Values
	Ranges []struct{ Value, Label string }
	Range  string
	// Custom is true when since/until were given instead of a range.
	Custom       bool
	Since, Until time.Time
	Matrix       runtimerules.Matrix
	Columns      []attackColumn
	// EventsURL lists the counted events on the Events page.
	EventsURL string
	Error     string
}

type attackColumn struct {
	runtimerules.MatrixTactic
	Cells []attackCell
}

// attackCell is a technique with its link to the Events page and its
// shade (0: no event; 1-4: quartiles of the largest count).
type attackCell struct {
	runtimerules.MatrixCell
	Href  string
	Heat  int
	Title string
}

// attackLinkRE: the ATT&CK ID forms the Events page's filters take; cells
// with other values (a producer's typo, hostile text) get no link.
var (
	attackTechniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
	attackTacticRE    = regexp.MustCompile(`^TA[0-9]{4}$`)
)

// attackPage shows events counted by ATT&CK tactic and technique over a
// time range and the Events page's filters (events.ParseCountFilter: the
// API's names and checks, a bad value answered 400 with the error). Each
// cell links to the Events page with the same filters and time bounds, so
// the list shows what the cell counts.
func (c *Console) attackPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := attackData{Form: q, Ranges: attackRanges, Range: q.Get("range")}
	now := c.opt.now().UTC()
	status := http.StatusOK
	err := func() error {
		fq := url.Values{}
		for k, vs := range q {
			if k != "range" {
				fq[k] = vs
			}
		}
		f, err := events.ParseCountFilter(fq)
		if err != nil {
			return err
		}
		d.Custom = !f.Since.IsZero() || !f.Until.IsZero()
		if d.Custom {
			if d.Range != "" {
				return service.Invalid("range: give a range or since/until, not both")
			}
		} else {
			if d.Range == "" {
				d.Range = defaultAttackRange
			}
			since, ok := runtimerules.Since(d.Range, now)
			if !ok {
				return service.Invalid("range %q: want 1h, 24h, 7d, 30d, 90d or all", truncateText(d.Range))
			}
			// Fixed bounds (to the second, as the Events page's filters
			// take them), so that a cell's link lists what it counts.
			f.Since = since.Truncate(time.Second)
			f.Until = now.Truncate(time.Second).Add(time.Second)
		}
		d.Since, d.Until = f.Since, f.Until
		d.Matrix, err = c.opt.services.RuntimeRules.Matrix(r.Context(), f)
		if err != nil {
			return err
		}
		d.Columns, d.EventsURL = attackColumns(d.Matrix, fq, f)
		return nil
	}()
	switch {
	case errors.Is(err, service.ErrInvalid):
		d.Error = sentence(err.Error())
		status = http.StatusBadRequest
	case err != nil:
		c.storeError(w, r, "ATT&CK matrix", err)
		return
	}
	p := c.newPage(r, "attack", "ATT&CK matrix", crumb{Label: "Events", Href: "/events"}, crumb{Label: "ATT&CK matrix"})
	p.Data = d
	c.render(w, r, status, "attack", p)
}

func attackColumns(m runtimerules.Matrix, fq url.Values, f events.Filter) ([]attackColumn, string) {
	var max int64
	for _, t := range m.Tactics {
		for _, x := range t.Techniques {
			max = maxInt64(max, x.Events)
		}
	}
	// The Events page's query: the same filters, fixed time bounds.
	base := url.Values{}
	for k, vs := range fq {
		base[k] = vs
	}
	for _, k := range []string{api.EventParamSince, api.EventParamUntil, api.EventParamTactic, api.EventParamTechnique} {
		base.Del(k)
	}
	if !f.Since.IsZero() {
		base.Set(api.EventParamSince, f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		base.Set(api.EventParamUntil, f.Until.UTC().Format(time.RFC3339))
	}
	out := make([]attackColumn, 0, len(m.Tactics))
	for _, t := range m.Tactics {
		col := attackColumn{MatrixTactic: t}
		for _, x := range t.Techniques {
			cell := attackCell{MatrixCell: x}
			if x.Events > 0 {
				cell.Heat = 1 + int(3*x.Events/maxInt64(max, 1))
				if cell.Heat > 4 {
					cell.Heat = 4
				}
			}
			if attackTechniqueRE.MatchString(x.Technique) && (x.Tactic == "" || attackTacticRE.MatchString(x.Tactic)) {
				v := url.Values{}
				for k, vs := range base {
					v[k] = vs
				}
				v.Set(api.EventParamTechnique, x.Technique)
				if x.Tactic != "" {
					v.Set(api.EventParamTactic, x.Tactic)
				}
				cell.Href = (&url.URL{Path: "/events", RawQuery: v.Encode()}).String()
			}
			cell.Title = x.Technique
			if x.Name != "" {
				cell.Title += " " + x.Name
			}
			col.Cells = append(col.Cells, cell)
		}
		out = append(out, col)
	}
	return out, (&url.URL{Path: "/events", RawQuery: base.Encode()}).String()
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func truncateText(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
