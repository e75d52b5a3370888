package console

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mamori/internal/model"
	"mamori/internal/secret"
	"mamori/internal/store"
)

// overview are the counts cards above the images list.
type overview struct {
	Images   int
	Critical int
	High     int
	Medium   int
	Fixable  int
	Total    int
}

type imagesData struct {
	Query    string
	Sort     string
	Overview overview
	Images   []store.ImageSummary
	Pager    *pager
}

var imageSorts = map[string]store.ImageSort{
	"lastScanned": store.ImageSortLastScanned,
	"name":        store.ImageSortName,
	"risk":        store.ImageSortRisk,
}

func (c *Console) imagesPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, per := pageParams(q)
	d := imagesData{Query: textParam(q.Get("q")), Sort: q.Get("sort")}
	srt, ok := imageSorts[d.Sort]
	if !ok {
		d.Sort, srt = "risk", store.ImageSortRisk
	}
	ctx := r.Context()
	ip, err := c.opt.services.Images.ListImages(ctx, store.ImageFilter{Query: d.Query, Sort: srt,
		Page: store.Page{Limit: per, Offset: (page - 1) * per}})
	if err != nil {
		c.storeError(w, r, "image list", err)
		return
	}
	d.Images = ip.Images
	d.Pager = newPager(r.URL, page, per, ip.Total)

	all, err := c.opt.services.Images.ListImages(ctx, store.ImageFilter{Page: store.Page{Limit: 1}})
	if err != nil {
		c.storeError(w, r, "image count", err)
		return
	}
	d.Overview.Images = all.Total
	if d.Overview, err = c.overview(r, d.Overview); err != nil {
		c.storeError(w, r, "vulnerability counts", err)
		return
	}
	p := c.newPage(r, "images", "Images", crumb{Label: "Images"})
	p.Data = d
	c.render(w, r, http.StatusOK, "images", p)
}

// overviewTTL is how long the dashboard's counts cards are reused. Counting
// distinct vulnerabilities under five filters over 100,000 rows costs
// hundreds of milliseconds on SQLite (measured: the fixable count alone
// ~370 ms); a security dashboard that is 30 s behind is fine, while the
// image list under the cards is always live.
const overviewTTL = 30 * time.Second

// overviewCache holds the last counts and when they were taken.
type overviewCache struct {
	mu  sync.Mutex
	at  time.Time
	val overview
}

// overview counts vulnerabilities (distinct IDs over all images) by the
// cards' criteria, each a count query with a one-row page, reusing counts
// younger than overviewTTL. o.Images is always the live count.
func (c *Console) overview(r *http.Request, o overview) (overview, error) {
	c.ov.mu.Lock()
	defer c.ov.mu.Unlock() // one computation at a time; the others wait for its result
	now := c.opt.now()
	if !c.ov.at.IsZero() && now.Sub(c.ov.at) < overviewTTL && now.After(c.ov.at) {
		v := c.ov.val
		v.Images = o.Images
		return v, nil
	}
	v, err := c.countOverview(r, o)
	if err != nil {
		return o, err
	}
	c.ov.at, c.ov.val = now, v
	return v, nil
}

func (c *Console) countOverview(r *http.Request, o overview) (overview, error) {
	count := func(f store.VulnerabilityFilter) (int, error) {
		f.Limit = 1
		vp, err := c.opt.services.Images.ListVulnerabilities(r.Context(), f)
		return vp.Total, err
	}
	var err error
	for _, x := range []struct {
		dst *int
		f   store.VulnerabilityFilter
	}{
		{&o.Total, store.VulnerabilityFilter{}},
		{&o.Critical, store.VulnerabilityFilter{Severities: []model.Severity{model.SeverityCritical}}},
		{&o.High, store.VulnerabilityFilter{Severities: []model.Severity{model.SeverityHigh}}},
		{&o.Medium, store.VulnerabilityFilter{Severities: []model.Severity{model.SeverityMedium}}},
		{&o.Fixable, store.VulnerabilityFilter{FixableOnly: true}},
	} {
		if *x.dst, err = count(x.f); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ---------------------------------------------------------------------------
// image detail

type imageTab struct {
	Key, Label string
	Count      int
	URL        string
}

type imageData struct {
	Image  *store.ImageDetail
	Tab    string
	Tabs   []imageTab
	Query  string
	Sevs   []sevOption
	Dist   []distRow
	Pager  *pager
	Vulns  []model.Vulnerability
	Pkgs   []model.Package
	Finds  []model.Finding
	Layers []layerRow
	Scans  []store.ScanRecord
	// FindingKind is the kind the findings tab shows, for its empty state.
	FindingKind string
}

type distRow struct {
	Severity model.Severity
	N        int
	W        float64
}

type layerRow struct {
	N        int
	Layer    model.Layer
	Packages int
}

func (c *Console) imagePage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Image IDs are numbers; this one is not.")
		return
	}
	ctx := r.Context()
	img, err := c.opt.services.Images.GetImage(ctx, id)
	if err != nil {
		c.storeError(w, r, "image", err)
		return
	}
	q := r.URL.Query()
	page, per := pageParams(q)
	d := imageData{Image: img, Tab: q.Get("tab"), Query: textParam(q.Get("q"))}

	kinds := map[string]model.FindingKind{"secrets": model.KindSecret, "malware": model.KindMalware, "misconfig": model.KindMisconfig}
	base := &url.URL{Path: "/images/" + strconv.FormatInt(id, 10)}
	counts := img.Vulnerabilities
	d.Tabs = []imageTab{
		{Key: "vulns", Label: "Vulnerabilities", Count: counts.Total()},
		{Key: "packages", Label: "Packages", Count: len(img.Packages)},
		{Key: "secrets", Label: "Secrets", Count: countKind(img.Findings, model.KindSecret)},
		{Key: "malware", Label: "Malware", Count: countKind(img.Findings, model.KindMalware)},
		{Key: "misconfig", Label: "Misconfigurations", Count: countKind(img.Findings, model.KindMisconfig)},
		{Key: "layers", Label: "Layers", Count: len(img.Layers)},
		{Key: "scans", Label: "Scan history", Count: -1},
	}
	known := false
	for i := range d.Tabs {
		d.Tabs[i].URL = withParam(base, "tab", d.Tabs[i].Key)
		known = known || d.Tabs[i].Key == d.Tab
	}
	if !known {
		d.Tab = "vulns"
	}
	maxN := max(counts.Critical, counts.High, counts.Medium, counts.Low, counts.Negligible, counts.Unknown)
	for _, s := range []struct {
		sev model.Severity
		n   int
	}{
		{model.SeverityCritical, counts.Critical}, {model.SeverityHigh, counts.High},
		{model.SeverityMedium, counts.Medium}, {model.SeverityLow, counts.Low},
		{model.SeverityNegligible, counts.Negligible}, {model.SeverityUnknown, counts.Unknown},
	} {
		d.Dist = append(d.Dist, distRow{Severity: s.sev, N: s.n, W: distbar(s.n, maxN)})
	}

	switch d.Tab {
	case "vulns":
		sevs := severitySet(q["severity"])
		d.Sevs = sevOptions(sevs)
		vulns, err := c.opt.services.Images.ImageVulnerabilities(ctx, id)
		if err != nil {
			c.storeError(w, r, "image vulnerabilities", err)
			return
		}
		needle := strings.ToLower(d.Query)
		kept := vulns[:0]
		for _, v := range vulns {
			if len(sevs) > 0 && !sevs[v.Severity] {
				continue
			}
			if needle != "" && !vulnMatches(&v, needle) {
				continue
			}
			kept = append(kept, v)
		}
		lo, hi := paginate(len(kept), page, per)
		d.Vulns = kept[lo:hi]
		d.Pager = newPager(r.URL, page, per, len(kept))
	case "packages":
		needle := strings.ToLower(d.Query)
		var kept []model.Package
		for _, p := range img.Packages {
			if needle == "" || pkgMatches(&p, needle) {
				kept = append(kept, p)
			}
		}
		lo, hi := paginate(len(kept), page, per)
		d.Pkgs = kept[lo:hi]
		d.Pager = newPager(r.URL, page, per, len(kept))
	case "secrets", "malware", "misconfig":
		d.FindingKind = d.Tab
		for _, f := range img.Findings {
			if f.Kind != kinds[d.Tab] {
				continue
			}
			if f.Kind == model.KindSecret {
				f.Evidence = redactEvidence(f.Evidence)
			}
			d.Finds = append(d.Finds, f)
		}
		sort.SliceStable(d.Finds, func(i, j int) bool { return d.Finds[i].Severity > d.Finds[j].Severity })
		lo, hi := paginate(len(d.Finds), page, per)
		total := len(d.Finds)
		d.Finds = d.Finds[lo:hi]
		d.Pager = newPager(r.URL, page, per, total)
	case "layers":
		perLayer := map[string]int{}
		for _, p := range img.Packages {
			for _, l := range p.Locations {
				if l.LayerDiffID != "" {
					perLayer[l.LayerDiffID]++
					break
				}
			}
		}
		for i, l := range img.Layers {
			d.Layers = append(d.Layers, layerRow{N: i + 1, Layer: l, Packages: perLayer[l.DiffID]})
		}
	case "scans":
		sp, err := c.opt.services.Images.ListScans(ctx, store.ScanFilter{ImageID: id, Page: store.Page{Limit: per, Offset: (page - 1) * per}})
		if err != nil {
			c.storeError(w, r, "scan history", err)
			return
		}
		d.Scans = sp.Scans
		d.Pager = newPager(r.URL, page, per, sp.Total)
	}

	p := c.newPage(r, "images", img.Name, crumb{Label: "Images", Href: "/images"}, crumb{Label: img.Name})
	p.Data = d
	c.render(w, r, http.StatusOK, "image", p)
}

func countKind(fs []model.Finding, k model.FindingKind) int {
	n := 0
	for i := range fs {
		if fs[i].Kind == k {
			n++
		}
	}
	return n
}

func vulnMatches(v *model.Vulnerability, needle string) bool {
	if strings.Contains(strings.ToLower(v.ID), needle) || strings.Contains(strings.ToLower(v.Package.Name), needle) {
		return true
	}
	for _, a := range v.Aliases {
		if strings.Contains(strings.ToLower(a), needle) {
			return true
		}
	}
	return false
}

func pkgMatches(p *model.Package, needle string) bool {
	if strings.Contains(strings.ToLower(p.Name), needle) || strings.Contains(strings.ToLower(p.PURL), needle) ||
		strings.Contains(strings.ToLower(p.Version), needle) {
		return true
	}
	for _, l := range p.Locations {
		if strings.Contains(strings.ToLower(l.Path), needle) {
			return true
		}
	}
	return false
}

// redactedRE matches secret.Redact's output.
var redactedRE = regexp.MustCompile(`^[^\n]{0,4}\*\*\*\*\([0-9]+ chars\)$`)

// redactEvidence keeps secret evidence redacted in the console even when a
// scan was uploaded with --show-secrets: evidence that does not carry the
// scanner's redaction mark is redacted here the same way.
func redactEvidence(ev string) string {
	if ev == "" || redactedRE.MatchString(ev) {
		return ev
	}
	return secret.Redact(ev)
}
