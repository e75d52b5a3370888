// Package vulnmatch opens the vulnerability matcher of a scan over a
// vulnerability database directory (scan.BuildOptions.Matcher): the CLI's
// scans and the server use it; the components that only take inventory do
// not link it (or the database).
package vulnmatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"mamori/internal/match"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/vulndb"
)

// DefaultDBMaxAge: OSV data changes daily; a week-old database misses
// the advisories a user most needs.
const DefaultDBMaxAge = 7 * 24 * time.Hour

// Options say where the database is and how it is checked.
type Options struct {
	// Dir is the vulnerability database directory.
	Dir string
	// MaxAge is the age above which the database is reported stale (0:
	// DefaultDBMaxAge; negative: never).
	MaxAge time.Duration
	// Fetch, when set, is how the database is fetched on first use when
	// Dir holds none (a new user's first scan): it is called once, after
	// the inventory, with the OSV ecosystems the inventory needs, and must
	// leave a database in Dir. Nil keeps the missing database an error
	// (--offline, --skip-db-update).
	Fetch func(ctx context.Context, ecosystems []string) error
}

// Opener returns the scan.MatcherOpener of o.
func Opener(o Options) scan.MatcherOpener {
	return func(ctx context.Context) (scan.Matcher, *model.DBInfo, func(), []string, error) {
		if o.Fetch != nil && !hasDB(o.Dir) {
			fm := &fetchingMatcher{dir: o.Dir, fetch: o.Fetch, info: &model.DBInfo{}}
			return fm, fm.info, fm.close, nil, nil
		}
		db, err := vulndb.Open(ctx, o.Dir)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		md := db.Metadata()
		info := &model.DBInfo{BuiltAt: md.BuiltAt}
		setFeeds(info, md)
		for e := range md.Ecosystems {
			info.Ecosystems = append(info.Ecosystems, e)
		}
		sort.Strings(info.Ecosystems)
		var warnings []string
		maxAge := o.MaxAge
		if maxAge == 0 {
			maxAge = DefaultDBMaxAge
		}
		if age := time.Since(md.BuiltAt); maxAge > 0 && age > maxAge {
			warnings = append(warnings, fmt.Sprintf("the vulnerability database is %s old (built %s): run `mamori db update`",
				age.Round(time.Hour), md.BuiltAt.Format(time.RFC3339)))
		}
		return match.NewMatcher(db), info, func() { _ = db.Close() }, warnings, nil
	}
}

// hasDB reports whether dir holds a vulnerability database (of any
// readable schema: an unreadable one is reported by vulndb.Open).
func hasDB(dir string) bool {
	_, err := vulndb.Info(dir)
	return !errors.Is(err, vulndb.ErrNoDB)
}

// fetchingMatcher is the matcher of a first run: the database is fetched
// when the first inventory is ready, for exactly the ecosystems it needs
// (inventory + match: the image is never read again), then opened and used
// like any other.
type fetchingMatcher struct {
	dir   string
	fetch func(ctx context.Context, ecosystems []string) error
	// info is the Scanner's DBInfo, filled in once the database exists.
	info *model.DBInfo

	mu sync.Mutex
	db *vulndb.DB
	m  *match.Matcher
}

var _ scan.Matcher = (*fetchingMatcher)(nil)

func (f *fetchingMatcher) Match(ctx context.Context, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, error) {
	m, err := f.matcher(ctx, ecosystemsOf(inv))
	if err != nil || m == nil {
		return nil, nil, err
	}
	return m.Match(ctx, inv)
}

// matcher fetches (once) and opens the database.
func (f *fetchingMatcher) matcher(ctx context.Context, ecos []string) (*match.Matcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m != nil {
		return f.m, nil
	}
	if len(ecos) == 0 {
		return nil, nil // no package to match: nothing to fetch
	}
	if err := f.fetch(ctx, ecos); err != nil {
		return nil, fmt.Errorf("%w\n(the first-run download failed: %v)", vulndb.ErrNoDB, err)
	}
	db, err := vulndb.Open(ctx, f.dir)
	if err != nil {
		return nil, err
	}
	md := db.Metadata()
	f.info.BuiltAt = md.BuiltAt
	f.info.Ecosystems = f.info.Ecosystems[:0]
	for e := range md.Ecosystems {
		f.info.Ecosystems = append(f.info.Ecosystems, e)
	}
	sort.Strings(f.info.Ecosystems)
	setFeeds(f.info, md)
	f.db, f.m = db, match.NewMatcher(db)
	return f.m, nil
}

func (f *fetchingMatcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db != nil {
		_ = f.db.Close() // read-only database
	}
}

// ecosystemsOf lists the OSV ecosystems of an inventory's packages.
func ecosystemsOf(inv *model.Inventory) []string {
	set := map[string]bool{}
	for _, p := range inv.Packages {
		if p.Ecosystem != "" {
			set[p.Ecosystem] = true
		}
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// setFeeds records the exploit intelligence a database holds.
func setFeeds(info *model.DBInfo, md vulndb.Metadata) {
	info.KEVCatalog, info.EPSSDate = md.Feeds()
}
