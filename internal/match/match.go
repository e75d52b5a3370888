// Package match matches an inventory's packages against OSV advisories:
// distro release scoping, source packages for distros, OSV range evaluation,
// one finding per vulnerability (records that alias each other are merged,
// see dedupe.go), severity (from the matched record, else from the records
// of the same vulnerability, see severity.go), known exploitation (CISA KEV)
// and exploit prediction (EPSS), and the priority of each finding
// (internal/priority). It turns OSV malicious-package records (MAL-*) into
// malware findings.
package match

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"mamori/internal/model"
	"mamori/internal/osrelease"
	"mamori/internal/version"
	"mamori/internal/vulndb"
)

// Engine is the Engine of the findings the matcher makes (malicious-package
// records, OSV MAL-*): what tells them from clamd's, YARA's and the hash
// lists' malware findings when a re-match replaces them.
const Engine = model.EngineOSV

// Source is where advisories come from; *vulndb.DB implements it.
type Source interface {
	// Lookup returns the advisories naming package name in ecosystem (an
	// OSV ecosystem with release scope where the data has one: "Debian:12").
	Lookup(ecosystem, name string) ([]*vulndb.Record, error)
}

var _ Source = (*vulndb.DB)(nil)

// Intel is what a Source may know beyond a package's advisories: the other
// records of the same vulnerability (where a severity comes from when the
// matched record has none) and the exploit intelligence of CVEs. A Source
// that does not implement it gives neither; *vulndb.DB does.
type Intel interface {
	// Ratings returns the severity data of the records (but except) whose
	// ID is one of ids or that name one of ids as the same vulnerability.
	Ratings(except string, ids []string) ([]vulndb.Rating, error)
	// Exploits returns the KEV entries and EPSS scores of CVEs.
	Exploits(cves []string) ([]vulndb.CVEIntel, error)
	Metadata() vulndb.Metadata
}

var _ Intel = (*vulndb.DB)(nil)

// Matcher matches inventories against one Source. It caches the prepared
// (parsed, version-sorted) advisories of each (ecosystem, package) it has
// looked up, so matching many inventories against one database — the
// re-match after a database update — parses each advisory once. A Matcher
// is safe for concurrent use; make a new one when the database changes.
type Matcher struct {
	src   Source
	intel Intel // nil when src has none
	// epssDate is the score date of the database's EPSS data.
	epssDate string
	mu       sync.Mutex
	cache    map[string]*cacheEntry
	results  map[query]*resultEntry
}

type cacheEntry struct {
	once sync.Once
	advs []*advisory
	err  error
}

// resultEntry memoises the hits of one (ecosystem, name, version), and the
// findings made of them: images share most of their packages, so a
// re-match of many inventories evaluates each distinct installed version,
// and builds its findings (merging, severity, KEV, EPSS, priority), once.
type resultEntry struct {
	once sync.Once
	hits []advHit
	err  error

	findOnce sync.Once
	found    queryFindings
	findErr  error
}

// queryFindings are the findings of one query without their package
// (forPackage adds it), and the malicious-package records that matched.
type queryFindings struct {
	findings  []model.Vulnerability
	malicious []*advisory
}

type advHit struct {
	adv *advisory
	hit hit
}

// maxResults bounds the memoised (ecosystem, name, version) results of one
// Matcher (about 100 bytes each plus hits); past it, results are computed
// without being kept.
const maxResults = 1 << 21

// NewMatcher returns a Matcher reading src.
func NewMatcher(src Source) *Matcher {
	m := &Matcher{src: src, cache: map[string]*cacheEntry{}, results: map[query]*resultEntry{}}
	if in, ok := src.(Intel); ok {
		m.intel = in
		if e := in.Metadata().EPSS; e != nil {
			m.epssDate = e.Date
		}
	}
	return m
}

// entry returns the memo of q.
func (m *Matcher) entry(q query) *resultEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.results[q]
	if e == nil {
		e = &resultEntry{}
		if len(m.results) < maxResults {
			m.results[q] = e
		}
	}
	return e
}

func (m *Matcher) hitsOf(e *resultEntry, q query) {
	e.once.Do(func() {
		advs, err := m.advisories(q.ecosystem, q.name)
		if err != nil {
			e.err = err
			return
		}
		for _, a := range advs {
			if h, ok := a.match(q); ok {
				e.hits = append(e.hits, advHit{adv: a, hit: h})
			}
		}
	})
}

// matchFindings returns q's findings (one per vulnerability, dedupe.go)
// and matching malicious-package records.
func (m *Matcher) matchFindings(q query) (queryFindings, error) {
	e := m.entry(q)
	m.hitsOf(e, q)
	if e.err != nil {
		return queryFindings{}, e.err
	}
	e.findOnce.Do(func() {
		var hits []pkgHit
		for _, ah := range e.hits {
			if ah.adv.malicious {
				e.found.malicious = append(e.found.malicious, ah.adv)
				continue
			}
			hits = append(hits, pkgHit{adv: ah.adv, q: q, hit: ah.hit})
		}
		if len(hits) > 0 {
			e.found.findings, e.findErr = m.findings(nil, hits)
		}
	})
	return e.found, e.findErr
}

// Match matches inv against src with a fresh Matcher. See Matcher.Match.
func Match(ctx context.Context, src Source, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, error) {
	return NewMatcher(src).Match(ctx, inv)
}

// Match returns one Vulnerability per (vulnerability, inventory package)
// whose installed version an advisory's affected ranges or versions cover
// (advisories that alias each other are one vulnerability: dedupe.go), and
// one malware Finding per package named by an OSV malicious-package record
// (ID "MAL-…"). Withdrawn advisories are skipped. Packages of an ecosystem
// without a known version ordering match only explicit versions lists.
// Every vulnerability has its priority set. Results are sorted by package
// then ID. Only a failing Source is an error.
func (m *Matcher) Match(ctx context.Context, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, error) {
	if inv == nil {
		return nil, nil, nil
	}
	osEco := osrelease.OSVEcosystem(inv.OS)
	var vulns []model.Vulnerability
	var malware []model.Finding
	for i := range inv.Packages {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		p := &inv.Packages[i]
		qs := queriesFor(p, osEco)
		var seen []string // IDs already reported for p (several queries)
		for _, q := range qs {
			r, err := m.matchFindings(q)
			if err != nil {
				return nil, nil, fmt.Errorf("match %s %s: %w", p.Name, p.Version, err)
			}
			for _, a := range r.malicious {
				if !slices.Contains(seen, a.id) {
					seen = append(seen, a.id)
					malware = append(malware, a.malwareFinding(p))
				}
			}
			for _, t := range r.findings {
				if len(qs) > 1 {
					if slices.Contains(seen, t.ID) {
						continue
					}
					seen = append(seen, t.ID)
				}
				vulns = append(vulns, forPackage(t, p, q))
			}
		}
	}
	slices.SortStableFunc(vulns, func(a, b model.Vulnerability) int {
		return cmp.Or(
			cmp.Compare(a.Package.Type, b.Package.Type),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.Package.Version, b.Package.Version),
			cmp.Compare(a.Package.Path, b.Package.Path),
			cmp.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(malware, func(a, b model.Finding) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Location.Path, b.Location.Path))
	})
	return vulns, malware, nil
}

// advisories returns the prepared advisories of (ecosystem, name), from the
// cache or the Source.
func (m *Matcher) advisories(ecosystem, name string) ([]*advisory, error) {
	key := ecosystem + "\x00" + name
	m.mu.Lock()
	e := m.cache[key]
	if e == nil {
		e = &cacheEntry{}
		m.cache[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() {
		recs, err := m.src.Lookup(ecosystem, name)
		if err != nil {
			e.err = err
			return
		}
		for _, r := range recs {
			if a := prepare(r, ecosystem, name); a != nil {
				e.advs = append(e.advs, a)
			}
		}
	})
	return e.advs, e.err
}

// query is one lookup made for a package: the OSV ecosystem and name the
// advisories use, and the version to evaluate.
type query struct {
	ecosystem string
	name      string
	version   string
}

// langEcosystems maps purl types of language packages to OSV ecosystems,
// for packages whose Ecosystem a cataloger left empty.
var langEcosystems = map[string]string{
	model.TypeGolang:   model.EcosystemGo,
	model.TypeNPM:      model.EcosystemNPM,
	model.TypePyPI:     model.EcosystemPyPI,
	model.TypeMaven:    model.EcosystemMaven,
	model.TypeGem:      model.EcosystemRubyGems,
	model.TypeCargo:    model.EcosystemCratesIO,
	model.TypeComposer: model.EcosystemPackagist,
	model.TypeNuGet:    model.EcosystemNuGet,
}

// queriesFor returns the lookups for one package.
//
// OS packages are scoped to the OS release (osEco, "Debian:12"). Debian and
// Ubuntu advisories name source packages, so a deb is looked up by its
// source name and source version; Alpine's secdb names origins (the apk's
// source), so an apk is looked up by origin. RPM distros (AlmaLinux, Rocky)
// name binary packages (checked in AlmaLinux/osv-database: "openssl-libs"
// has its own affected entries), so an rpm is looked up by its own name.
//
// A binary's Go version is matched against the "stdlib" records only: the
// "toolchain" records are vulnerabilities of the go command and compiler,
// which a compiled binary does not contain (osv-scanner does the same).
func queriesFor(p *model.Package, osEco string) []query {
	switch p.Type {
	case model.TypeDeb, model.TypeAPK:
		eco := scopedEcosystem(p, osEco)
		if eco == "" {
			return nil
		}
		name, ver := p.Name, p.Version
		if p.SourceName != "" {
			name = p.SourceName
			if p.SourceVersion != "" {
				ver = p.SourceVersion
			}
		} else if p.SourceVersion != "" {
			ver = p.SourceVersion
		}
		return []query{{ecosystem: eco, name: name, version: ver}}
	case model.TypeRPM:
		eco := scopedEcosystem(p, osEco)
		if eco == "" {
			return nil
		}
		return []query{{ecosystem: eco, name: p.Name, version: p.Version}}
	}
	eco := p.Ecosystem
	if eco == "" {
		eco = langEcosystems[p.Type]
	}
	if eco == "" {
		return nil
	}
	eco = vulndb.CanonicalEcosystem(eco)
	if eco == model.EcosystemGo {
		v := goVersion(p.Version, p.Name == "stdlib" || p.Name == "toolchain")
		return []query{{eco, p.Name, v}}
	}
	return []query{{ecosystem: eco, name: vulndb.NormalizeName(eco, p.Name), version: p.Version}}
}

// scopedEcosystem is the release-scoped OSV ecosystem of an OS package: the
// OS's, when the package belongs to it (same base ecosystem, or the
// cataloger left Ecosystem empty), else none (an rpm database in a Debian
// image is not covered by Debian's advisories).
func scopedEcosystem(p *model.Package, osEco string) string {
	if osEco == "" {
		return ""
	}
	base, _ := vulndb.SplitEcosystem(osEco)
	if p.Ecosystem != "" && vulndb.CanonicalEcosystem(p.Ecosystem) != base {
		return ""
	}
	if !osTypeMatches(p.Type, base) {
		return ""
	}
	return osEco
}

func osTypeMatches(typ, base string) bool {
	s, err := version.SchemeFor(base)
	if err != nil {
		return false
	}
	switch typ {
	case model.TypeDeb:
		return s.Name() == "deb"
	case model.TypeAPK:
		return s.Name() == "apk"
	case model.TypeRPM:
		return s.Name() == "rpm"
	}
	return false
}

// goVersion turns a Go version as inventories carry it into OSV's SemVer
// form: module versions drop the "v"; toolchain versions ("go1.21.3",
// "1.21", "go1.22rc1") become "1.21.3", "1.21.0", "1.22.0-rc.1" as the Go
// vulnerability database writes them.
func goVersion(v string, toolchain bool) string {
	v = strings.TrimSpace(v)
	if !toolchain {
		return strings.TrimPrefix(v, "v")
	}
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	pre := ""
	for _, tag := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(v, tag); i > 0 {
			pre = "-" + tag + "." + v[i+len(tag):]
			v = v[:i]
			break
		}
	}
	if strings.Count(v, ".") == 1 {
		v += ".0"
	}
	return v + pre
}

// advisory is one OSV record prepared for matching one (ecosystem, name).
type advisory struct {
	rec       *vulndb.Record
	id        string
	malicious bool
	aliases   []string
	refs      []string
	entries   []prepAffected
	// links are the IDs that name the same vulnerability (dedupe.go), rank
	// how specific the record is (lower is more).
	links []string
	rank  int
	// severity and cvss are computed once per advisory.
	sevOnce  sync.Once
	severity model.Severity
	cvss     []model.CVSS
	// intel is the KEV and EPSS data of the advisory's CVEs, others the
	// severities of the other records of the same vulnerability; each
	// computed once, when first needed.
	intelOnce sync.Once
	intel     advIntel
	intelErr  error
	relOnce   sync.Once
	others    []candidate
	relErr    error
}

// prepare keeps the affected entries of r that name (ecosystem, name), with
// parsed ranges; nil when none does or the record is withdrawn.
func prepare(r *vulndb.Record, ecosystem, name string) *advisory {
	if r.Withdrawn != "" {
		return nil
	}
	a := &advisory{rec: r, id: r.ID, malicious: strings.HasPrefix(r.ID, "MAL-")}
	eco := vulndb.CanonicalEcosystem(ecosystem)
	for _, af := range r.Affected {
		aeco := vulndb.CanonicalEcosystem(af.Package.Ecosystem)
		if aeco != eco || vulndb.NormalizeName(aeco, af.Package.Name) != name {
			continue
		}
		pa := prepAffected{ecosystem: af.Package.Ecosystem, severity: af.Severity}
		for _, rg := range af.Ranges {
			if pr, ok := prepareRange(rg, aeco); ok {
				pa.ranges = append(pa.ranges, pr)
			}
		}
		if len(af.Versions) > 0 {
			pa.versions = make(map[string]struct{}, len(af.Versions))
			for _, v := range af.Versions {
				pa.versions[v] = struct{}{}
			}
		}
		for _, s := range []*vulndb.Specific{af.EcosystemSpecific, af.DatabaseSpecific} {
			if s != nil && pa.urgency == "" {
				pa.urgency = cmp.Or(string(s.Urgency), string(s.Severity))
			}
		}
		a.entries = append(a.entries, pa)
	}
	if len(a.entries) == 0 {
		return nil
	}
	a.aliases = aliasesOf(r)
	a.links = linksOf(r)
	a.rank = rankOf(r.ID)
	for _, ref := range r.References {
		if ref.URL != "" && !slices.Contains(a.refs, ref.URL) {
			a.refs = append(a.refs, ref.URL)
		}
	}
	return a
}

func aliasesOf(r *vulndb.Record) []string {
	var out []string
	// Related IDs are, by OSV's definition, different vulnerabilities (a
	// Pillow advisory "related" to the libwebp CVE): an ignore or VEX entry
	// for one must not silence the other. Distribution advisories are the
	// exception: an ALSA/RLSA/RHSA/DSA/DLA/USN/SUSE record bundles the CVEs
	// it fixes under related, and those CVEs are what users suppress by.
	lists := [][]string{r.Aliases, r.Upstream}
	if vulndb.IsDistroAdvisory(r.ID) {
		lists = append(lists, r.Related)
	}
	for _, list := range lists {
		for _, id := range list {
			if id != "" && id != r.ID {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hit is how an advisory matched a package.
type hit struct {
	ecosystem string
	fix       string
	fixV      version.Version
	entries   []*prepAffected
}

// match evaluates q's version against every entry of the advisory; an
// advisory listing the package in several entries (several ranges, or the
// same package repeated, as AlmaLinux's module streams do) yields one hit
// whose fix is the lowest fix above the installed version.
func (a *advisory) match(q query) (hit, bool) {
	var h hit
	found := false
	parsed := map[*version.Scheme]version.Version{}
	parse := func(s *version.Scheme) (version.Version, bool) {
		if v, ok := parsed[s]; ok {
			return v, true
		}
		v, err := s.Parse(q.version)
		if err != nil {
			return version.Version{}, false
		}
		parsed[s] = v
		return v, true
	}
	for i := range a.entries {
		e := &a.entries[i]
		entryHit := false
		var fixes []*event
		for j := range e.ranges {
			r := &e.ranges[j]
			v, ok := parse(r.scheme)
			if !ok {
				continue
			}
			if ok, fix := r.affected(v); ok {
				entryHit = true
				if fix != nil {
					fixes = append(fixes, fix)
				}
			}
		}
		if _, listed := e.versions[q.version]; listed && !entryHit {
			entryHit = true
			for j := range e.ranges {
				if v, ok := parse(e.ranges[j].scheme); ok {
					if fix := e.ranges[j].fixAbove(v); fix != nil {
						fixes = append(fixes, fix)
					}
				}
			}
		}
		if !entryHit {
			continue
		}
		found = true
		if h.ecosystem == "" {
			h.ecosystem = e.ecosystem
		}
		h.entries = append(h.entries, e)
		for _, f := range fixes {
			if h.fix == "" {
				h.fix, h.fixV = f.raw, f.v
				continue
			}
			// Fixes of different orderings (a SEMVER and an ECOSYSTEM range)
			// do not compare; the first found stays.
			if c, err := f.v.Compare(h.fixV); err == nil && c < 0 {
				h.fix, h.fixV = f.raw, f.v
			}
		}
	}
	return h, found
}

// template is the finding of one hit without its package (forPackage).
func (a *advisory) template(h hit) model.Vulnerability {
	sev, cv := a.severityFor(h)
	r := a.rec
	return model.Vulnerability{
		ID:           a.id,
		Aliases:      a.aliases,
		FixedVersion: h.fix,
		Severity:     sev,
		// Clipped: merging appends to a copy, never into the advisory's list.
		CVSS:       slices.Clip(cv),
		Summary:    r.Summary,
		Details:    r.Details,
		DataSource: h.ecosystem,
		Published:  parseTime(r.Published),
		Modified:   parseTime(r.Modified),
		References: a.refs,
	}
}

// forPackage is a finding template made p's: the package fields, and lists
// of its own (the template's are shared by every package it matched).
func forPackage(t model.Vulnerability, p *model.Package, q query) model.Vulnerability {
	v := t
	v.Aliases = slices.Clone(t.Aliases)
	v.References = slices.Clone(t.References)
	v.Package = model.PackageRef{
		Name:       p.Name,
		Version:    p.Version,
		Type:       p.Type,
		Ecosystem:  ecosystemOf(p, q),
		PURL:       p.PURL,
		SourceName: p.SourceName,
	}
	if len(p.Locations) > 0 {
		v.Package.Path = p.Locations[0].Path
		v.Package.Layer = p.Locations[0].LayerDiffID
	}
	return v
}

func ecosystemOf(p *model.Package, q query) string {
	if p.Ecosystem != "" {
		return p.Ecosystem
	}
	base, _ := vulndb.SplitEcosystem(q.ecosystem)
	return base
}

// malwareFinding reports a package named by an OSV malicious-package
// record. A known-malicious package is Critical: the Finding model needs a
// severity and there is no lesser reading of "this package is malware".
func (a *advisory) malwareFinding(p *model.Package) model.Finding {
	r := a.rec
	title := r.Summary
	if title == "" {
		title = "Malicious package " + p.Name + "@" + p.Version
	}
	f := model.Finding{
		Kind:        model.KindMalware,
		ID:          a.id,
		Title:       title,
		Severity:    model.SeverityCritical,
		Category:    cmp.Or(p.Ecosystem, langEcosystems[p.Type], p.Type),
		Description: r.Details,
		Remediation: "Remove " + p.Name + " " + p.Version + " and rotate any credentials the environment that installed it could reach.",
		Evidence:    p.PURL,
		Engine:      Engine,
	}
	if len(p.Locations) > 0 {
		f.Location = model.Location{Path: p.Locations[0].Path, LayerDiffID: p.Locations[0].LayerDiffID}
	}
	f.References = slices.Clone(a.refs)
	return f
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t.UTC()
}
