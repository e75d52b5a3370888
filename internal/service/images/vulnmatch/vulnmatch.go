// Package vulnmatch is the server's matching of inventories against its
// vulnerability database: it keeps the DB open (swapping it when
// "mamori db update" replaces it), matches a fresh result's inventory
// (components take inventory, the server matches), and re-matches every
// stored inventory when the DB changes, without touching an image. It is
// part of the images domain, in a package of its own so that what only
// shows images (the console) does not link the matcher.
package vulnmatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"mamori/internal/api"
	"mamori/internal/match"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/store"
	"mamori/internal/vulndb"
)

// ErrNoVulnDB: matching was asked for but the server has no vulnerability database.
var ErrNoVulnDB = errors.New("no vulnerability database")

// vulnState is the open vulnerability DB and its matcher, swapped when the
// DB in the directory changes (mamori db update writes a new file and
// renames it into place; the open handle keeps reading the old one until
// the swap).
type vulnState struct {
	dir string
	log *slog.Logger

	mu sync.RWMutex // held for reading while matching, for writing to swap
	db *vulndb.DB
	m  *match.Matcher
	md vulndb.Metadata

	rematchMu sync.Mutex // one re-match at a time
	statusMu  sync.Mutex
	status    api.RematchStatus
}

func newVulnState(dir string, log *slog.Logger) *vulnState {
	return &vulnState{dir: dir, log: log}
}

// refresh opens the DB when it is not open or has a different built-at.
// It reports whether the open DB changed.
func (v *vulnState) refresh(ctx context.Context) (bool, error) {
	if v.dir == "" {
		return false, nil
	}
	md, err := vulndb.Info(v.dir)
	if err != nil {
		return false, err
	}
	v.mu.RLock()
	same := v.db != nil && v.md.BuiltAt.Equal(md.BuiltAt)
	v.mu.RUnlock()
	if same {
		return false, nil
	}
	db, err := vulndb.Open(ctx, v.dir)
	if err != nil {
		return false, err
	}
	v.mu.Lock()
	old := v.db
	v.db, v.m, v.md = db, match.NewMatcher(db), db.Metadata()
	v.mu.Unlock()
	if old != nil {
		if err := old.Close(); err != nil {
			v.log.Warn("close old vulnerability DB", "err", err)
		}
	}
	v.log.Info("vulnerability DB loaded", "builtAt", v.md.BuiltAt, "records", v.md.Records)
	return true, nil
}

func (v *vulnState) available() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.db != nil
}

// acquire returns the matcher and metadata, held until release is called;
// m is nil without a DB.
func (v *vulnState) acquire() (m *match.Matcher, md vulndb.Metadata, release func()) {
	v.mu.RLock()
	return v.m, v.md, v.mu.RUnlock
}

func (v *vulnState) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.db != nil {
		if err := v.db.Close(); err != nil {
			v.log.Warn("close vulnerability DB", "err", err)
		}
		v.db, v.m = nil, nil
	}
}

func (v *vulnState) info(ctx context.Context, st store.MetaStore) api.DBInfo {
	v.mu.RLock()
	out := api.DBInfo{Available: v.db != nil, BuiltAt: v.md.BuiltAt, Records: v.md.Records, Ecosystems: v.md.Ecosystems}
	v.mu.RUnlock()
	if s, err := st.GetMeta(ctx, store.MetaVulnDBBuiltAt); err == nil {
		out.MatchedBuiltAt = s
	}
	v.statusMu.Lock()
	out.Rematch = v.status
	v.statusMu.Unlock()
	return out
}

// Reload opens the database in the directory when it changed (a `mamori
// db import|update` since) and reports whether it did; re-matching is the
// caller's (Rematch).
func (s *Matcher) Reload(ctx context.Context) (bool, error) {
	changed, err := s.vdb.refresh(ctx)
	if errors.Is(err, vulndb.ErrNoDB) {
		return false, nil
	}
	return changed, err
}

// CheckVulnDB reloads a changed DB and re-matches every stored inventory
// when the DB's built-at differs from the one the store was matched
// against. The server calls it periodically.
func (s *Matcher) CheckVulnDB(ctx context.Context) {
	if _, err := s.vdb.refresh(ctx); err != nil {
		if !errors.Is(err, vulndb.ErrNoDB) || s.vdb.available() {
			s.log.Warn("vulnerability DB", "err", err)
		}
		return
	}
	_, md, release := s.vdb.acquire()
	release()
	if md.BuiltAt.IsZero() {
		return
	}
	matched, err := s.st.GetMeta(ctx, store.MetaVulnDBBuiltAt)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("read matched DB version", "err", err)
		return
	}
	if matched == md.BuiltAt.UTC().Format(time.RFC3339Nano) {
		return
	}
	s.log.Info("vulnerability DB changed: re-matching stored inventories", "builtAt", md.BuiltAt, "previous", matched)
	if _, err := s.Rematch(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("re-match", "err", err)
	}
}

// Store is what matching needs of the store.
type Store interface {
	store.ImageStore
	store.MetaStore
}

// Matcher matches inventories against the server's vulnerability DB.
type Matcher struct {
	st  Store
	vdb *vulnState
	log *slog.Logger
	use UseMarker
}

// UseMarker marks a re-match's vulnerabilities with what the runtime
// agents saw containers of the image load (service/loads).
type UseMarker interface {
	// MarkResult reports whether the image has agent data (observed).
	MarkResult(ctx context.Context, digest string, inv *model.Inventory, vulns []model.Vulnerability) (observed bool, err error)
	Touch(digests ...string)
}

// SetUseMarker makes re-matches keep images' in-use marks (call it before
// the matcher is used).
func (s *Matcher) SetUseMarker(m UseMarker) { s.use = m }

// New returns a Matcher over st reading the DB in vulnDBDir ("" = no
// matching: results are stored with a warning, re-match refuses).
func New(st Store, vulnDBDir string, log *slog.Logger) *Matcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Matcher{st: st, vdb: newVulnState(vulnDBDir, log), log: log}
}

// RematchRunning reports whether a re-match runs now.
func (s *Matcher) RematchRunning() bool {
	if !s.vdb.rematchMu.TryLock() {
		return true
	}
	s.vdb.rematchMu.Unlock()
	return false
}

// VulnDBAvailable reports whether the server has a vulnerability DB open.
func (s *Matcher) VulnDBAvailable() bool { return s.vdb.available() }

// DBInfo describes the vulnerability DB and the latest re-match.
func (s *Matcher) DBInfo(ctx context.Context) api.DBInfo { return s.vdb.info(ctx, s.st) }

// Close closes the vulnerability DB.
func (s *Matcher) Close() { s.vdb.close() }

// Rematch matches every stored inventory against the current vulnerability
// DB and replaces each image's vulnerabilities and its OSV
// malicious-package findings (store.ReplaceMatches): a MAL record new in
// the DB adds a finding, a withdrawn or removed one drops it. No image is
// touched. An image rescanned meanwhile is skipped (its new scan was matched
// by its scanner). On success the DB's built-at is recorded in the store's meta.
func (s *Matcher) Rematch(ctx context.Context) (api.RematchStatus, error) {
	s.vdb.rematchMu.Lock()
	defer s.vdb.rematchMu.Unlock()
	m, md, release := s.vdb.acquire()
	defer release()
	st := api.RematchStatus{Running: true, StartedAt: time.Now().UTC(), DBBuiltAt: md.BuiltAt}
	s.setRematchStatus(st)
	if m == nil {
		st.Running, st.Error, st.FinishedAt = false, ErrNoVulnDB.Error(), time.Now().UTC()
		s.setRematchStatus(st)
		return st, ErrNoVulnDB
	}
	err := s.st.ListInventories(ctx, func(ref store.InventoryRef, inv *model.Inventory) error {
		vulns, mal, err := m.Match(ctx, inv)
		if err != nil {
			return fmt.Errorf("image %d: %w", ref.ImageID, err)
		}
		model.SortVulnerabilities(vulns)
		if vulns == nil {
			vulns = []model.Vulnerability{}
		}
		model.SortFindings(mal)
		if s.use != nil {
			// The marks from the loads as they are now; loads that arrive
			// before the write below are re-marked by the marker after it.
			observed, err := s.use.MarkResult(ctx, ref.Digest, inv, vulns)
			if err != nil {
				s.log.Warn("re-match: in-use marks", "image", ref.ImageID, "err", err)
			}
			if (observed || err != nil) && ref.Digest != "" {
				defer s.use.Touch(ref.Digest)
			}
		}
		err = s.st.ReplaceMatches(ctx, ref, vulns, mal)
		switch {
		case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrNotFound):
			st.Skipped++
			return nil
		case err != nil:
			return fmt.Errorf("image %d: %w", ref.ImageID, err)
		}
		st.Images++
		if st.Images%100 == 0 {
			s.setRematchStatus(st)
		}
		return nil
	})
	if err == nil {
		err = s.st.SetMeta(ctx, store.MetaVulnDBBuiltAt, md.BuiltAt.UTC().Format(time.RFC3339Nano))
	}
	st.Running, st.FinishedAt = false, time.Now().UTC()
	if err != nil {
		st.Error = err.Error()
		s.setRematchStatus(st)
		return st, fmt.Errorf("images: re-match: %w", err)
	}
	s.setRematchStatus(st)
	s.log.Info("re-match done", "images", st.Images, "skipped", st.Skipped, "took", st.FinishedAt.Sub(st.StartedAt))
	return st, nil
}

func (s *Matcher) setRematchStatus(st api.RematchStatus) {
	s.vdb.statusMu.Lock()
	s.vdb.status = st
	s.vdb.statusMu.Unlock()
}

// MatchResult matches a fresh scan result's inventory against the current
// DB (the server's own registry scans: components take inventory, the
// server matches), recording the DB in the result.

// MatchInventory matches an inventory a component took (a node's
// packages, an image scanned inline at admission) and returns the
// vulnerabilities and malicious-package findings, sorted, with the DB
// matched against; ErrNoVulnDB without a DB. Nothing is stored.
func (s *Matcher) MatchInventory(ctx context.Context, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, *model.DBInfo, error) {
	m, md, release := s.vdb.acquire()
	defer release()
	if m == nil {
		return nil, nil, nil, ErrNoVulnDB
	}
	vulns, mal, err := m.Match(ctx, inv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("match: %w", err)
	}
	model.SortVulnerabilities(vulns)
	model.SortFindings(mal)
	ecos := make([]string, 0, len(md.Ecosystems))
	for e := range md.Ecosystems {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	info := &model.DBInfo{BuiltAt: md.BuiltAt, Ecosystems: ecos}
	info.KEVCatalog, info.EPSSDate = md.Feeds()
	return vulns, mal, info, nil
}

// MatchResult matches a fresh result's inventory (MatchInventory) into it.
func (s *Matcher) MatchResult(ctx context.Context, res *model.Result) error {
	m, md, release := s.vdb.acquire()
	defer release()
	if m == nil {
		res.Warnings = append(res.Warnings, "no vulnerability database on the server: vulnerabilities not matched")
		return nil
	}
	vulns, mal, err := m.Match(ctx, &res.Inventory)
	if err != nil {
		return fmt.Errorf("match %s: %w", res.Target.Name, err)
	}
	res.Vulnerabilities = append(res.Vulnerabilities, vulns...)
	res.Findings = append(res.Findings, mal...)
	model.SortVulnerabilities(res.Vulnerabilities)
	model.SortFindings(res.Findings)
	ecos := make([]string, 0, len(md.Ecosystems))
	for e := range md.Ecosystems {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	res.DB = &model.DBInfo{BuiltAt: md.BuiltAt, Ecosystems: ecos}
	res.DB.KEVCatalog, res.DB.EPSSDate = md.Feeds()
	res.Scanners = append(res.Scanners, scan.ScannerVuln)
	return nil
}
