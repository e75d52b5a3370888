package console

import (
	"net/http"
	"net/url"
	"strings"

	"mamori/internal/model"
	"mamori/internal/service/images"
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
	Query   string
	Sevs    []sevOption
	CVSSMin string
	CVSSMax string
	Fixable bool
	KEV     bool
	EPSSMin string
	// InUse keeps vulnerabilities whose package a running container
	// loaded (the node agents' reports).
	InUse    bool
	Sort     string
	Reverse  bool
	Filtered bool
	Cols     []sortCol
	Vulns    []store.VulnerabilitySummary
	Pager    *pager
	// AnyImages is false when nothing was ever scanned (the empty state then
	// explains how to scan rather than how to change filters).
	AnyImages bool
	// Error is a bad filter value, shown instead of the list.
	Error string
	// Runtime: the runtime vulnerability view (images running now, in
	// Cluster when set; Clusters names them for the filter).
	Runtime  bool
	Cluster  string
	Clusters []string
	Path     string
}

// vulnsPage lists vulnerabilities with the filters of GET
// /api/v1/vulnerabilities, by the same names and through the same parser
// (images.ParseVulnerabilityFilter): a bad value is shown as an error
// with status 400, never dropped.
func (c *Console) vulnsPage(w http.ResponseWriter, r *http.Request) {
	c.listVulns(w, r, false)
}

// runtimeVulnsPage is the runtime vulnerability view: the vulnerability
// list of images running now (running=true, optionally in one cluster),
// with the same search, filters and sort; a vulnerability's page lists the
// workloads where it runs.
func (c *Console) runtimeVulnsPage(w http.ResponseWriter, r *http.Request) {
	c.listVulns(w, r, true)
}

func (c *Console) listVulns(w http.ResponseWriter, r *http.Request, runtime bool) {
	q := r.URL.Query()
	nav, title, path := "vulns", "Vulnerabilities", "/vulnerabilities"
	if runtime {
		q.Set(images.VulnParamRunning, "true")
		nav, title, path = "runtime", "Runtime vulnerabilities", "/runtime/vulnerabilities"
	}
	page, per := pageParams(q)
	f, ferr := images.ParseVulnerabilityFilter(q)
	sevs := map[model.Severity]bool{}
	for _, s := range f.Severities {
		sevs[s] = true
	}
	d := vulnsData{
		Query:   f.Query,
		Sevs:    sevOptions(sevs),
		Fixable: f.FixableOnly,
		Sort:    string(f.Sort),
		Reverse: f.Reverse,
		CVSSMin: q.Get(images.VulnParamCVSSMin),
		CVSSMax: q.Get(images.VulnParamCVSSMax),
		KEV:     f.KnownExploited,
		EPSSMin: q.Get(images.VulnParamEPSSMin),
		Runtime: runtime,
		Cluster: f.Cluster,
		Path:    path,
		InUse:   f.InUse,
	}
	if runtime {
		cs, err := c.opt.services.Identities.ListClusters(r.Context())
		if err != nil {
			c.storeError(w, r, "cluster list", err)
			return
		}
		for _, cl := range cs {
			d.Clusters = append(d.Clusters, cl.Name)
		}
	}
	// Most urgent first (internal/priority) unless asked otherwise.
	if d.Sort == "" {
		d.Sort, f.Sort = string(store.VulnSortPriority), store.VulnSortPriority
	}
	f.Page = store.Page{Limit: per, Offset: (page - 1) * per}
	d.Filtered = d.Query != "" || len(f.Severities) > 0 || d.CVSSMin != "" || d.CVSSMax != "" || d.Fixable || d.KEV || d.EPSSMin != "" || d.Cluster != "" || d.InUse
	d.Cols = vulnCols(r.URL, d.Sort, d.Reverse)
	if ferr != nil {
		d.Error = sentence(ferr.Error())
		p := c.newPage(r, nav, title, crumb{Label: title})
		p.Data = d
		c.render(w, r, http.StatusBadRequest, "vulns", p)
		return
	}

	ctx := r.Context()
	vp, err := c.opt.services.Images.ListVulnerabilities(ctx, f)
	if err != nil {
		c.storeError(w, r, "vulnerability list", err)
		return
	}
	d.Vulns = vp.Vulnerabilities
	d.Pager = newPager(r.URL, page, per, vp.Total)
	if vp.Total == 0 {
		ip, err := c.opt.services.Images.ListImages(ctx, store.ImageFilter{Page: store.Page{Limit: 1}})
		if err != nil {
			c.storeError(w, r, "image count", err)
			return
		}
		d.AnyImages = ip.Total > 0
	} else {
		d.AnyImages = true
	}
	p := c.newPage(r, nav, title, crumb{Label: title})
	p.Data = d
	c.render(w, r, http.StatusOK, "vulns", p)
}

// vulnCols are the sortable columns of the vulnerability list.
func vulnCols(u *url.URL, sort string, reverse bool) []sortCol {
	var cols []sortCol
	for _, col := range []sortCol{
		{Label: "Priority", Key: "priority", Num: true},
		{Label: "Severity", Key: "severity"}, {Label: "Vulnerability", Key: "id"},
		{Label: "CVSS", Key: "cvss", Num: true}, {Label: "Packages", Key: "package"},
		{Label: "Images", Key: "images", Num: true},
	} {
		col.Active = col.Key == sort
		qq := u.Query()
		qq.Del("page")
		qq.Set(images.VulnParamSort, col.Key)
		qq.Del(images.VulnParamReverse)
		if col.Active && !reverse {
			qq.Set(images.VulnParamReverse, "true")
		}
		col.URL = (&url.URL{Path: u.Path, RawQuery: qq.Encode()}).String()
		cols = append(cols, col)
	}
	return cols
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
	v, err := c.opt.services.Images.GetVulnerability(r.Context(), id, store.Page{Limit: affectedPerPage, Offset: (page - 1) * affectedPerPage})
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
