// Package loads is the service of "in use at run time" (issue 15): the
// node agents report the files their containers executed or loaded (the
// sensor's load kind, each file once per container); the service keeps
// them per container with the image's digest (bounded, expiring with the
// container), maps them through internal/inuse to the packages of the
// image's stored inventory and marks the image's vulnerability rows in use
// (model.InUse: the containers, the last time seen) with their priority
// recomputed. Where no agent reported a container of the image, the mark
// is absent, never false. Marks are redone when loads arrive (a marker
// loop, debounced per image), when a container ends or expires, when the
// image is scanned again and when its inventory is re-matched
// (MarkResult, called by the images service and the matcher).
package loads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/inuse"
	"mamori/internal/model"
	"mamori/internal/priority"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Store is what the service needs of the store.
type Store interface {
	store.LoadStore
}

// Defaults of the marker.
const (
	// DefaultMarkInterval is how often the marker re-marks the images
	// whose loads changed (each image at most once per interval).
	DefaultMarkInterval = 2 * time.Second
	// DefaultEndedRetention keeps an ended container's loads this long
	// (a short-lived job still counts for a while); DefaultStaleAfter
	// expires the containers no agent report has named for this long (the
	// agent or its node is gone: agents report their running containers
	// every minute).
	DefaultEndedRetention = 10 * time.Minute
	DefaultStaleAfter     = 15 * time.Minute
	// maxClockSkew: a load time further off the server's clock than this
	// is replaced by the time of receipt.
	maxClockSkew = 24 * time.Hour
)

// Config configures the service.
type Config struct {
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// MarkInterval, EndedRetention and StaleAfter: 0 = the defaults.
	MarkInterval, EndedRetention, StaleAfter time.Duration
}

// Service ingests load reports and keeps the in-use marks current.
type Service struct {
	st  Store
	log *slog.Logger
	now func() time.Time
	cfg Config

	mu    sync.Mutex
	dirty map[string]bool // image digests to re-mark
	wake  chan struct{}

	stats Stats
}

// Stats are the service's counters.
type Stats struct {
	Reports, Accepted, Duplicates, Capped, Ended, Expired int64
	Marked, MarkErrors                                    int64
	// LastMark is when the latest image was re-marked.
	LastMark time.Time
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MarkInterval <= 0 {
		cfg.MarkInterval = DefaultMarkInterval
	}
	if cfg.EndedRetention <= 0 {
		cfg.EndedRetention = DefaultEndedRetention
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	return &Service{st: cfg.Store, log: cfg.Logger, now: cfg.Now, cfg: cfg, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// Container IDs: containerd, CRI and Docker use 64 hex digits, but a
	// containerd container can be given any name ("ctr run IMG my-app").
	containerIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,253}$`)
)

func printable(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// Ingest stores a report of the calling agent. Everything is checked
// before anything is stored: one bad container or path refuses the
// report (service.ErrInvalid) and stores nothing.
func (s *Service) Ingest(ctx context.Context, r api.LoadReport) (api.LoadReportResult, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleAgent {
		return api.LoadReportResult{}, fmt.Errorf("%w: only an agent token reports loads", auth.ErrForbidden)
	}
	if r.Node == "" || !printable(r.Node, 253) {
		return api.LoadReportResult{}, service.Invalid("node %q: 1 to 253 printable characters", truncate(r.Node))
	}
	if len(r.Containers) > api.MaxLoadReportContainers || len(r.Running) > api.MaxLoadReportContainers {
		return api.LoadReportResult{}, service.Invalid("%d containers and %d running: at most %d each", len(r.Containers),
			len(r.Running), api.MaxLoadReportContainers)
	}
	now := s.now().UTC()
	b := store.LoadBatch{Cluster: p.Cluster, Node: r.Node, Sync: r.Sync}
	paths := 0
	seen := map[string]int{}
	for i := range r.Containers {
		c := &r.Containers[i]
		if !containerIDRE.MatchString(c.ID) {
			return api.LoadReportResult{}, service.Invalid("container %d: id %q is not a container ID", i, truncate(c.ID))
		}
		if !digestRE.MatchString(c.ImageDigest) {
			return api.LoadReportResult{}, service.Invalid("container %s: image digest %q is not sha256:<64 hex>", c.ID, truncate(c.ImageDigest))
		}
		if !printable(c.Name, 512) || !printable(c.Image, 1024) {
			return api.LoadReportResult{}, service.Invalid("container %s: name and image: at most 512 and 1024 printable characters", c.ID)
		}
		paths += len(c.Loads)
		if paths > api.MaxLoadReportPaths {
			return api.LoadReportResult{}, service.Invalid("more than %d paths in one report", api.MaxLoadReportPaths)
		}
		sc := store.LoadContainer{ID: c.ID, Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest, Loads: make([]store.Load, 0, len(c.Loads))}
		for j, l := range c.Loads {
			if !strings.HasPrefix(l.Path, "/") || len(l.Path) > api.MaxLoadPathBytes || !utf8.ValidString(l.Path) || strings.ContainsRune(l.Path, 0) {
				return api.LoadReportResult{}, service.Invalid("container %s: load %d: path %q is not an absolute path of at most %d bytes",
					c.ID, j, truncate(l.Path), api.MaxLoadPathBytes)
			}
			at := l.Time.UTC()
			if at.IsZero() || at.Sub(now) > maxClockSkew || now.Sub(at) > maxClockSkew {
				at = now
			}
			sc.Loads = append(sc.Loads, store.Load{Path: l.Path, Time: at})
		}
		// The same container twice in a report: one entry.
		if k, dup := seen[c.ID]; dup {
			if b.Containers[k].ImageDigest != c.ImageDigest {
				return api.LoadReportResult{}, service.Invalid("container %s: two image digests in one report", c.ID)
			}
			b.Containers[k].Loads = append(b.Containers[k].Loads, sc.Loads...)
			continue
		}
		seen[c.ID] = len(b.Containers)
		b.Containers = append(b.Containers, sc)
	}
	if r.Sync {
		for i, id := range r.Running {
			if !containerIDRE.MatchString(id) {
				return api.LoadReportResult{}, service.Invalid("running %d: %q is not a container ID", i, truncate(id))
			}
		}
		b.Running = r.Running
	}
	out, err := s.st.RecordLoads(ctx, b, now)
	if errors.Is(err, store.ErrInvalid) {
		return api.LoadReportResult{}, service.Invalid("%v", err)
	}
	if err != nil {
		return api.LoadReportResult{}, fmt.Errorf("loads: %w", err)
	}
	s.mu.Lock()
	s.stats.Reports++
	s.stats.Accepted += int64(out.Accepted)
	s.stats.Duplicates += int64(out.Duplicates)
	s.stats.Capped += int64(out.Capped)
	s.stats.Ended += int64(out.Ended)
	s.mu.Unlock()
	if out.Capped > 0 {
		s.log.Warn("container loads over the cap: dropped", "node", r.Node, "cluster", p.Cluster, "capped", out.Capped,
			"cap", store.MaxLoadsPerContainer)
	}
	s.Touch(out.Digests...)
	return api.LoadReportResult{Accepted: out.Accepted, Duplicates: out.Duplicates, Capped: out.Capped, Ended: out.Ended}, nil
}

// Touch asks for the images with these digests to be re-marked.
func (s *Service) Touch(digests ...string) {
	if len(digests) == 0 {
		return
	}
	s.mu.Lock()
	for _, d := range digests {
		s.dirty[d] = true
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run re-marks the touched images (at most once per MarkInterval each)
// and expires ended and silent containers, until ctx ends. At start every
// image with loads is re-marked (the marks of a server that stopped with
// work pending).
func (s *Service) Run(ctx context.Context) {
	if ds, err := s.st.LoadDigests(ctx); err != nil {
		s.log.Warn("in use: list images with loads", "err", err)
	} else {
		s.Touch(ds...)
	}
	tick := time.NewTicker(s.cfg.MarkInterval)
	defer tick.Stop()
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			s.Expire(ctx)
			continue
		case <-tick.C:
		case <-s.wake:
			// Debounce: a burst of reports is one re-mark.
			if wait := s.cfg.MarkInterval - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		s.MarkPending(ctx)
	}
}

// Expire deletes the containers that ended more than EndedRetention ago
// or that no report named for StaleAfter, and re-marks their images.
func (s *Service) Expire(ctx context.Context) {
	now := s.now().UTC()
	ds, err := s.st.ExpireLoads(ctx, now.Add(-s.cfg.EndedRetention), now.Add(-s.cfg.StaleAfter))
	if err != nil {
		s.log.Warn("in use: expire containers", "err", err)
		return
	}
	if len(ds) > 0 {
		s.mu.Lock()
		s.stats.Expired += int64(len(ds))
		s.mu.Unlock()
		s.log.Info("in use: containers expired", "images", len(ds))
		s.Touch(ds...)
	}
}

// MarkPending re-marks every touched image now.
func (s *Service) MarkPending(ctx context.Context) {
	s.mu.Lock()
	ds := make([]string, 0, len(s.dirty))
	for d := range s.dirty {
		ds = append(ds, d)
	}
	clear(s.dirty)
	s.mu.Unlock()
	slices.Sort(ds)
	for _, d := range ds {
		if ctx.Err() != nil {
			s.Touch(d)
			continue
		}
		err := s.MarkImage(ctx, d)
		s.mu.Lock()
		if err != nil {
			s.stats.MarkErrors++
		} else {
			s.stats.Marked++
			s.stats.LastMark = s.now().UTC()
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("in use: mark image", "digest", d, "err", err)
		}
	}
}

// MarkImage re-marks the stored vulnerability rows of the image with this
// digest from its containers' loads; nothing when no image was scanned
// with that digest (its scan will be marked when it arrives).
func (s *Service) MarkImage(ctx context.Context, digest string) error {
	for attempt := 0; attempt < 3; attempt++ {
		d, err := s.st.ImageUse(ctx, digest)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		cs, err := s.st.ImageLoads(ctx, digest)
		if err != nil {
			return err
		}
		vulns := slices.Clone(d.Vulns)
		mark(vulns, &d.Inventory, cs)
		var rows []store.RowUse
		for i := range vulns {
			if !sameUse(d.Vulns[i].InUse, vulns[i].InUse) || !samePriority(d.Vulns[i].Priority, vulns[i].Priority) {
				rows = append(rows, store.RowUse{Seq: d.Seqs[i], ID: vulns[i].ID, InUse: vulns[i].InUse, Priority: vulns[i].Priority})
			}
		}
		if len(rows) == 0 {
			return nil
		}
		err = s.st.SetImageUse(ctx, d.Ref, rows)
		if errors.Is(err, store.ErrStale) {
			continue // rescanned meanwhile: read the new scan
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		s.log.Debug("in use: image marked", "digest", digest, "rows", len(rows), "containers", len(cs))
		return nil
	}
	return fmt.Errorf("image %s: rescanned three times while it was marked", digest)
}

// MarkResult marks vulns (a fresh scan of the image with this digest, or a
// re-match of its inventory) from what the agents reported, in place,
// before they are stored: loaded, not loaded (an agent watched a container
// of the image), or absent (no agent data: a mark the producer sent is
// removed). digest "" (not an image) is always absent. observed says the
// image has agent data: the caller touches it once the result is stored,
// so that loads that arrived meanwhile are marked too.
func (s *Service) MarkResult(ctx context.Context, digest string, inv *model.Inventory, vulns []model.Vulnerability) (observed bool, err error) {
	var cs []store.ContainerLoads
	if digest != "" {
		if cs, err = s.st.ImageLoads(ctx, digest); err != nil {
			return false, fmt.Errorf("in use: %w", err)
		}
	}
	mark(vulns, inv, cs)
	return len(cs) > 0, nil
}

// mark applies the containers' loads to vulns.
func mark(vulns []model.Vulnerability, inv *model.Inventory, cs []store.ContainerLoads) {
	if len(cs) == 0 {
		// No agent data: absent. Only rows that carry a mark change (their
		// priority is recomputed without it).
		for i := range vulns {
			if v := &vulns[i]; v.InUse != nil {
				v.InUse = nil
				p := priority.Of(v)
				v.Priority = &p
			}
		}
		return
	}
	n := 0
	for i := range cs {
		n += len(cs[i].Loads)
	}
	loads := make([]inuse.Load, 0, n)
	for i := range cs {
		c := &cs[i]
		for _, l := range c.Loads {
			loads = append(loads, inuse.Load{ContainerID: c.ID, ContainerName: c.Name, Path: l.Path, Time: l.Time})
		}
	}
	inuse.Mark(vulns, inuse.NewIndex(inv), loads, true)
}

func sameUse(a, b *model.InUse) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Loaded != b.Loaded || a.Count != b.Count || !a.LastSeen.Equal(b.LastSeen) || len(a.Containers) != len(b.Containers) {
		return false
	}
	for i := range a.Containers {
		x, y := a.Containers[i], b.Containers[i]
		if x.ID != y.ID || x.Name != y.Name || x.Path != y.Path || !x.LastSeen.Equal(y.LastSeen) {
			return false
		}
	}
	return true
}

func samePriority(a, b *model.Priority) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
