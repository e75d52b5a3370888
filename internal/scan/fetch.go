package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"mamori/internal/match"
	"mamori/internal/model"
	"mamori/internal/vulndb"
)

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

var _ Matcher = (*fetchingMatcher)(nil)

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
