package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mamori/internal/model"
	"mamori/internal/store"
)

// sevOption is one severity checkbox of a filter.
type sevOption struct {
	Value   string
	Sev     model.Severity
	Checked bool
}

var filterSeverities = []model.Severity{
	model.SeverityCritical, model.SeverityHigh, model.SeverityMedium,
	model.SeverityLow, model.SeverityNegligible, model.SeverityUnknown,
}

// severitySet reads repeated "severity" parameters; unknown names are ignored.
func severitySet(vals []string) map[model.Severity]bool {
	set := map[model.Severity]bool{}
	for _, v := range vals {
		if len(v) > 16 {
			continue
		}
		if s, err := model.ParseSeverity(v); err == nil {
			set[s] = true
		}
	}
	return set
}

func sevOptions(set map[model.Severity]bool) []sevOption {
	out := make([]sevOption, 0, len(filterSeverities))
	for _, s := range filterSeverities {
		out = append(out, sevOption{Value: strings.ToLower(s.String()), Sev: s, Checked: set[s]})
	}
	return out
}

type sortCol struct {
	Label  string
	Key    string
	URL    string
	Active bool
	Num    bool
}

type vulnsData struct {
	Query    string
	Sevs     []sevOption
	CVSSMin  string
	CVSSMax  string
	Fixable  bool
	Sort     string
	Reverse  bool
	Filtered bool
	Cols     []sortCol
	Vulns    []store.VulnerabilitySummary
	Pager    *pager
	// AnyImages is false when nothing was ever scanned (the empty state then
	// explains how to scan rather than how to change filters).
	AnyImages bool
}

var vulnSorts = map[string]store.VulnerabilitySort{
	"severity": store.VulnSortSeverity,
	"id":       store.VulnSortID,
	"package":  store.VulnSortPackage,
	"images":   store.VulnSortImages,
	"cvss":     store.VulnSortCVSS,
}

func (c *Console) vulnsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, per := pageParams(q)
	sevs := severitySet(q["severity"])
	d := vulnsData{
		Query:   textParam(q.Get("q")),
		Sevs:    sevOptions(sevs),
		Fixable: q.Get("fixable") != "",
		Sort:    q.Get("sort"),
		Reverse: q.Get("dir") == "reverse",
	}
	f := store.VulnerabilityFilter{
		Query:       d.Query,
		FixableOnly: d.Fixable,
		CVSSMin:     floatParam(q.Get("cvss_min"), 0, 10),
		CVSSMax:     floatParam(q.Get("cvss_max"), 0, 10),
		Reverse:     d.Reverse,
		Page:        store.Page{Limit: per, Offset: (page - 1) * per},
	}
	for _, s := range filterSeverities {
		if sevs[s] {
			f.Severities = append(f.Severities, s)
		}
	}
	if f.CVSSMin != nil {
		d.CVSSMin = strconv.FormatFloat(*f.CVSSMin, 'f', -1, 64)
	}
	if f.CVSSMax != nil {
		d.CVSSMax = strconv.FormatFloat(*f.CVSSMax, 'f', -1, 64)
	}
	srt, ok := vulnSorts[d.Sort]
	if !ok {
		d.Sort, srt = "severity", store.VulnSortSeverity
	}
	f.Sort = srt
	d.Filtered = d.Query != "" || len(f.Severities) > 0 || f.CVSSMin != nil || f.CVSSMax != nil || d.Fixable

	ctx := r.Context()
	vp, err := c.st.ListVulnerabilities(ctx, f)
	if err != nil {
		c.storeError(w, r, "vulnerability list", err)
		return
	}
	d.Vulns = vp.Vulnerabilities
	d.Pager = newPager(r.URL, page, per, vp.Total)
	if vp.Total == 0 {
		ip, err := c.st.ListImages(ctx, store.ImageFilter{Page: store.Page{Limit: 1}})
		if err != nil {
			c.storeError(w, r, "image count", err)
			return
		}
		d.AnyImages = ip.Total > 0
	} else {
		d.AnyImages = true
	}
	for _, col := range []sortCol{
		{Label: "Severity", Key: "severity"}, {Label: "Vulnerability", Key: "id"},
		{Label: "CVSS", Key: "cvss", Num: true}, {Label: "Packages", Key: "package"},
		{Label: "Images", Key: "images", Num: true},
	} {
		col.Active = col.Key == d.Sort
		u := *r.URL
		qq := u.Query()
		qq.Del("page")
		qq.Set("sort", col.Key)
		qq.Del("dir")
		if col.Active && !d.Reverse {
			qq.Set("dir", "reverse")
		}
		col.URL = (&url.URL{Path: u.Path, RawQuery: qq.Encode()}).String()
		d.Cols = append(d.Cols, col)
	}

	p := c.newPage(r, "vulns", "Vulnerabilities", crumb{Label: "Vulnerabilities"})
	p.Data = d
	c.render(w, r, http.StatusOK, "vulns", p)
}

type vulnData struct {
	V     *store.VulnerabilityDetail
	Pager *pager
	// Fixed lists the distinct fixed versions, for the summary.
	Fixed []string
}

func (c *Console) vulnPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		c.notFound(w, r, "No vulnerability has this ID.")
		return
	}
	page, _ := pageParams(r.URL.Query())
	v, err := c.st.GetVulnerability(r.Context(), id, store.Page{Limit: affectedPerPage, Offset: (page - 1) * affectedPerPage})
	if err != nil {
		c.storeError(w, r, "vulnerability", err)
		return
	}
	d := vulnData{V: v, Pager: newPager(r.URL, page, affectedPerPage, v.AffectedTotal)}
	seen := map[string]bool{}
	for _, a := range v.Affected {
		if a.FixedVersion != "" && !seen[a.FixedVersion] {
			seen[a.FixedVersion] = true
			d.Fixed = append(d.Fixed, a.FixedVersion)
		}
	}
	p := c.newPage(r, "vulns", v.ID, crumb{Label: "Vulnerabilities", Href: "/vulnerabilities"}, crumb{Label: v.ID})
	p.Data = d
	c.render(w, r, http.StatusOK, "vuln", p)
}
