package integrity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// WatchMode selects the real-time backend.
type WatchMode string

const (
	// WatchAuto uses fanotify filesystem marks where the kernel and the
	// privileges allow them, inotify elsewhere.
	WatchAuto WatchMode = "auto"
	// WatchFanotify uses fanotify only; Run fails where it cannot.
	WatchFanotify WatchMode = "fanotify"
	// WatchInotify uses inotify only.
	WatchInotify WatchMode = "inotify"
	// WatchNone turns real-time detection off: scheduled compares only.
	WatchNone WatchMode = "none"
)

// Monitor defaults.
const (
	// DefaultCompareInterval between scheduled full compares. Real-time
	// events catch changes as they happen; the compare catches what they
	// cannot (changes while the agent was down, paths that appeared where
	// nothing was watched, a lost watch).
	DefaultCompareInterval = time.Hour
	// DefaultPollInterval for the collectors that have no file to watch
	// (listening ports, kernel modules).
	DefaultPollInterval = 15 * time.Second
	// DefaultDebounce: a batch is processed once no change arrived for this
	// long (a package upgrade writes thousands of files in a burst) ...
	DefaultDebounce = 200 * time.Millisecond
	// DefaultMaxDelay ... but never later than this after its first change.
	DefaultMaxDelay = 2 * time.Second
	// maxDirty bounds the changed paths held for one batch; beyond it the
	// batch becomes a full rescan (memory stays bounded under a storm).
	maxDirty = 8192
	// DefaultMinRescan is the least time between two rescans after
	// overflows; changes in between wait for the next rescan.
	DefaultMinRescan = 30 * time.Second
	// stateSaveInterval: the state file is written at most this often.
	stateSaveInterval = 10 * time.Second
)

// WithWatch selects the real-time backend; default WatchAuto.
func WithWatch(m WatchMode) Option {
	return func(o *options) error {
		switch m {
		case WatchAuto, WatchFanotify, WatchInotify, WatchNone:
			o.watch = m
			return nil
		}
		return fmt.Errorf("integrity: watch mode %q (want auto, fanotify, inotify or none)", m)
	}
}

// WithCompareInterval sets the scheduled full compare interval; default
// DefaultCompareInterval.
func WithCompareInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("integrity: compare interval %v below 1s", d)
		}
		o.interval = d
		return nil
	}
}

// WithPollInterval sets how often ports and kernel modules are read;
// default DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("integrity: poll interval %v below 100ms", d)
		}
		o.poll = d
		return nil
	}
}

// WithCoalesce sets the debounce and the longest delay of a batch.
func WithCoalesce(debounce, maxDelay time.Duration) Option {
	return func(o *options) error {
		if debounce <= 0 || maxDelay < debounce {
			return fmt.Errorf("integrity: coalesce %v/%v: want 0 < debounce <= max delay", debounce, maxDelay)
		}
		o.debounce, o.maxDelay = debounce, maxDelay
		return nil
	}
}

// WithMinRescan sets the least time between two overflow rescans;
// default DefaultMinRescan.
func WithMinRescan(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("integrity: negative rescan interval %v", d)
		}
		o.minRescan = d
		return nil
	}
}

// WithStateFile keeps the monitor's state (what it last reported) in
// path, so that a restarted agent reports each change once, not again
// from the baseline.
func WithStateFile(path string) Option {
	return func(o *options) error { o.statePath = path; return nil }
}

// EmitFunc receives the events of one batch. It is called from the
// monitor's goroutine with the monitor busy: it must not call back into
// the Monitor, and a slow EmitFunc delays detection (the kernel queue
// then overflows into a rescan; nothing is lost).
type EmitFunc func(ctx context.Context, events []Event)

// Monitor is the real-time integrity loop. Create it with NewMonitor and
// call Run; Rebuild and CompareNow may be called from other goroutines.
type Monitor struct {
	s    *Scanner
	emit EmitFunc

	opMu     sync.Mutex // serialises compares, batches, polls and rebuilds
	mu       sync.Mutex // guards the fields below
	key      []byte
	state    *Baseline
	dirtyAt  time.Time // state changed since it was saved
	savedAt  time.Time
	roots    []root
	watchers []watcher
	status   Status
	// testGate, when set before Run, blocks the watchers' readers until
	// closed (tests overflow the kernel queue with it).
	testGate chan struct{}
}

// Status is what the monitor did so far.
type Status struct {
	// Backends maps each watched directory to the backend watching it
	// ("fanotify", "inotify"), or to the error that left it unwatched.
	Backends map[string]string
	// Overflows counts kernel queue overflows (each followed by a rescan).
	Overflows int
	// Saturated counts batches with more changed paths than are tracked
	// one by one (maxDirty); they become rescans too.
	Saturated int
	// Batches counts processed batches of real-time changes; Changes the
	// notifications they coalesced.
	Batches, Changes int
	// Compares counts full compares (scheduled, initial and rescans).
	Compares int
	// Events counts emitted events.
	Events      int
	LastCompare time.Time
}

// NewMonitor returns a monitor comparing the host with base. With
// WithStateFile and a state file of the same baseline (same key), it
// resumes from that state.
func NewMonitor(rs *RuleSet, base *Baseline, emit EmitFunc, opts ...Option) (*Monitor, error) {
	if base == nil || emit == nil {
		return nil, errors.New("integrity: NewMonitor needs a baseline and an emit function")
	}
	s, err := NewScanner(rs, opts...)
	if err != nil {
		return nil, err
	}
	m := &Monitor{s: s, emit: emit, key: base.Key, state: base, status: Status{Backends: map[string]string{}}}
	if p := s.o.statePath; p != "" {
		st, err := Load(p)
		switch {
		case err == nil && string(st.Key) == string(base.Key):
			m.state = st
		case err == nil:
			s.o.log.Info("integrity: state file belongs to another baseline; starting from the baseline", "state", p)
		case !errors.Is(err, os.ErrNotExist):
			s.o.log.Warn("integrity: state file unreadable; starting from the baseline", "state", p, "err", err)
		}
	}
	return m, nil
}

// Status returns a copy of the monitor's status.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	st.Backends = make(map[string]string, len(m.status.Backends))
	for k, v := range m.status.Backends {
		st.Backends[k] = v
	}
	return st
}

// State returns the state the monitor compares with (the baseline plus
// every change reported since). The caller must not modify it.
func (m *Monitor) State() *Baseline {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Run watches and compares until ctx ends: it sets up the watches,
// runs a full compare (changes made while nothing watched), then handles
// real-time changes, polls and scheduled compares. It returns nil when
// ctx ends, after saving the state.
func (m *Monitor) Run(ctx context.Context) error {
	changes := make(chan change, 1024)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		m.mu.Lock()
		for _, w := range m.watchers {
			w.close()
		}
		m.watchers = nil
		m.mu.Unlock()
		wg.Wait()
		m.saveState(true)
	}()
	if err := m.setupWatches(wctx, changes, &wg); err != nil {
		return err
	}
	if err := m.locked(func() error { return m.compare(ctx, SourceCompare) }); err != nil {
		return ignoreCancel(ctx, err)
	}
	o := &m.s.o
	compareT := time.NewTicker(o.interval)
	defer compareT.Stop()
	pollT := time.NewTicker(o.poll)
	defer pollT.Stop()
	batch := newBatch()
	var debounce, rescanAt <-chan time.Time
	var lastRescan time.Time
	var timer *time.Timer
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-changes:
			batch.add(c, m.s.o.root, m.s.o.maxDirty)
			// Drain what is queued: one batch, one timer.
			for drained := false; !drained; {
				select {
				case c := <-changes:
					batch.add(c, m.s.o.root, m.s.o.maxDirty)
				default:
					drained = true
				}
			}
			wait := o.debounce
			if left := o.maxDelay - time.Since(batch.first); left < wait {
				wait = max(left, 0)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			debounce = timer.C
		case <-debounce:
			debounce = nil
			b := batch
			batch = newBatch()
			if b.overflow || b.saturated {
				m.noteRescan(b)
				// Rescans are rate-limited: under a sustained storm (a
				// fanotify filesystem mark sees every write on its file
				// system) they would otherwise run back to back.
				if wait := time.Until(lastRescan.Add(o.minRescan)); wait > 0 {
					if rescanAt == nil {
						rescanAt = time.After(wait)
					}
					continue
				}
			}
			if rescanAt != nil {
				continue // the pending rescan covers these changes
			}
			if b.overflow || b.saturated {
				lastRescan = time.Now()
				if err := m.locked(func() error { return m.compare(ctx, SourceRescan) }); err != nil {
					return ignoreCancel(ctx, err)
				}
				continue
			}
			if err := m.locked(func() error { return m.process(ctx, b, changes, &wg, wctx) }); err != nil {
				return ignoreCancel(ctx, err)
			}
		case <-rescanAt:
			rescanAt = nil
			lastRescan = time.Now()
			if err := m.locked(func() error { return m.compare(ctx, SourceRescan) }); err != nil {
				return ignoreCancel(ctx, err)
			}
		case <-compareT.C:
			if err := m.locked(func() error { return m.compare(ctx, SourceCompare) }); err != nil {
				return ignoreCancel(ctx, err)
			}
		case <-pollT.C:
			if err := m.locked(func() error { return m.poll(ctx) }); err != nil {
				return ignoreCancel(ctx, err)
			}
			m.saveState(false)
		}
	}
}

// locked runs f with the operation lock held.
func (m *Monitor) locked(f func() error) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return f()
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// batch collects the changes of one coalescing window.
type batch struct {
	first     time.Time
	n         int
	overflow  bool            // the kernel dropped events
	saturated bool            // too many paths to track
	paths     map[string]bool // logical path -> subtree
}

func newBatch() *batch { return &batch{paths: map[string]bool{}} }

func (b *batch) add(c change, root string, limit int) {
	if b.n == 0 {
		b.first = time.Now()
	}
	b.n++
	if c.overflow {
		b.overflow = true
		return
	}
	if b.overflow || b.saturated {
		return
	}
	p, ok := logical(root, c.path)
	if !ok {
		return
	}
	if len(b.paths) >= limit {
		b.saturated, b.paths = true, map[string]bool{} // too much to track: rescan
		return
	}
	b.paths[p] = b.paths[p] || c.subtree
}

// logical turns a machine path into the path below root.
func logical(root, p string) (string, bool) {
	if root == "/" {
		return p, strings.HasPrefix(p, "/")
	}
	if p == root {
		return "/", true
	}
	if !strings.HasPrefix(p, root+"/") {
		return "", false
	}
	return p[len(root):], true
}

// setupWatches (re)computes the roots and watches every directory that
// holds a rule path or a collector trigger. Directories already watched
// are not watched twice.
func (m *Monitor) setupWatches(ctx context.Context, out chan<- change, wg *sync.WaitGroup) error {
	roots, err := m.s.roots()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.roots = roots
	m.mu.Unlock()
	if m.s.o.watch == WatchNone {
		return nil
	}
	type want struct {
		dir       string // logical
		recursive bool
		rule      int
	}
	var wants []want
	for _, r := range roots {
		wants = append(wants, want{r.path, m.s.rs.Rules[r.rule].recursive(), r.rule})
	}
	for _, r := range m.s.rs.Rules { // glob paths with no match yet: their fixed prefix
		for _, p := range r.Paths {
			if hasGlob(p) {
				wants = append(wants, want{globPrefix(p), false, -1})
			}
		}
	}
	for _, c := range m.s.o.colls {
		for _, t := range c.Triggers() {
			wants = append(wants, want{t, true, -1})
		}
	}
	var ino *inotifyWatcher
	var fan *fanotifyWatcher
	m.mu.Lock()
	for _, w := range m.watchers {
		switch x := w.(type) {
		case *inotifyWatcher:
			ino = x
		case *fanotifyWatcher:
			fan = x
		}
	}
	m.mu.Unlock()
	start := func(w watcher) {
		m.mu.Lock()
		m.watchers = append(m.watchers, w)
		m.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx, out); err != nil {
				m.s.o.log.Error("integrity: watcher stopped; scheduled compares continue", "backend", w.name(), "err", err)
			}
		}()
	}
	for _, w := range wants {
		dir, recursive := w.dir, w.recursive
		full := m.s.o.full(dir)
		st, err := os.Stat(full)
		if err != nil || !st.IsDir() {
			// A file, or a path not there yet: watch the nearest existing
			// directory above it for its appearance.
			recursive = false
			for dir = path.Dir(dir); dir != "/"; dir = path.Dir(dir) {
				if st, err := os.Stat(m.s.o.full(dir)); err == nil && st.IsDir() {
					break
				}
			}
			full = m.s.o.full(dir)
		}
		m.mu.Lock()
		_, done := m.status.Backends[full]
		m.mu.Unlock()
		if done && !recursive {
			continue
		}
		rule := w.rule
		skip := func(machine string) bool {
			p, ok := logical(m.s.o.root, machine)
			return ok && rule >= 0 && m.s.rs.excluded(rule, p)
		}
		backend := ""
		var werr error
		if m.s.o.watch == WatchAuto || m.s.o.watch == WatchFanotify {
			if fan == nil {
				if fan, werr = newFanotify(m.s.o.log); werr == nil {
					fan.gate = m.testGate
					start(fan)
				} else {
					fan = nil
				}
			}
			if fan != nil {
				if werr = fan.watch(full, recursive, skip); werr == nil {
					backend = "fanotify"
				}
			}
		}
		if backend == "" && (m.s.o.watch == WatchAuto || m.s.o.watch == WatchInotify) {
			if ino == nil {
				var err error
				if ino, err = newInotify(m.s.o.log); err != nil {
					return fmt.Errorf("integrity: %w", err)
				}
				ino.gate = m.testGate
				start(ino)
			}
			if werr = ino.watch(full, recursive, skip); werr == nil {
				backend = "inotify"
			}
		}
		m.mu.Lock()
		if backend != "" {
			m.status.Backends[full] = backend
		} else {
			m.status.Backends[full] = "unwatched: " + werr.Error()
		}
		m.mu.Unlock()
		if backend == "" {
			if m.s.o.watch == WatchFanotify {
				return fmt.Errorf("integrity: %w", werr)
			}
			m.s.o.log.Warn("integrity: directory not watched; scheduled compares cover it", "dir", SafeText(full), "err", werr)
		}
	}
	return nil
}

// globPrefix returns the directory part of a glob before its first
// pattern character ("/home/*/.ssh" -> "/home").
func globPrefix(p string) string {
	i := strings.IndexAny(p, "*?[")
	return path.Dir(p[:i+1])
}

// noteRescan counts a batch that turns into a rescan.
func (m *Monitor) noteRescan(b *batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status.Batches++
	m.status.Changes += b.n
	if b.overflow {
		m.status.Overflows++
		m.s.o.log.Warn("integrity: the kernel's event queue overflowed; rescanning", "changes", b.n)
	} else {
		m.status.Saturated++
		m.s.o.log.Info("integrity: too many changes to track one by one; rescanning", "changes", b.n)
	}
}

// process handles one batch of real-time changes.
func (m *Monitor) process(ctx context.Context, b *batch, changes chan<- change, wg *sync.WaitGroup, wctx context.Context) error {
	m.mu.Lock()
	m.status.Batches++
	m.status.Changes += b.n
	m.mu.Unlock()
	m.mu.Lock()
	roots := m.roots
	m.mu.Unlock()
	// Collectors whose trigger paths changed.
	var colls []Collector
	for _, c := range m.s.o.colls {
		for _, t := range c.Triggers() {
			if touched(b.paths, t) {
				colls = append(colls, c)
				break
			}
		}
	}
	// File scopes: each changed path (its subtree when a directory came or
	// went), plus rule roots below a path that appeared (their watches are
	// set up again).
	var scopes []root
	rewatch := false
	for p, subtree := range b.paths {
		for _, r := range roots {
			if strings.HasPrefix(r.path, strings.TrimSuffix(p, "/")+"/") {
				rewatch = true
			}
		}
		rule, rootPath := m.s.ruleFor(roots, p)
		if rule < 0 {
			continue
		}
		noEntries := !subtree || (!m.s.rs.Rules[rule].recursive() && p != rootPath)
		scopes = append(scopes, root{path: p, rule: rule, noEntries: noEntries})
	}
	if rewatch {
		if err := m.setupWatches(wctx, changes, wg); err != nil {
			return err
		}
		m.mu.Lock()
		roots = m.roots
		m.mu.Unlock()
		for p := range b.paths {
			for _, r := range roots {
				if strings.HasPrefix(r.path, strings.TrimSuffix(p, "/")+"/") {
					scopes = append(scopes, r)
				}
			}
		}
	}
	scopes = normalizeScopes(scopes, roots)
	var events []Event
	if len(scopes) > 0 {
		m.mu.Lock()
		prev := m.state.Files
		m.mu.Unlock()
		cur, _, err := m.s.scan(ctx, scopes, prev)
		if err != nil {
			return err
		}
		m.mu.Lock()
		old, kept := splitScope(m.state.Files, scopes)
		cur = inScope(cur, scopes)
		events = diffFiles(old, cur, m.state.Rules, m.s.ruleRefs(), m.s.rs, SourceRealtime, time.Now().UTC())
		m.state = m.state.withFiles(mergeFiles(kept, cur), m.s.ruleRefs())
		m.mu.Unlock()
	}
	evs, err := m.recollect(ctx, colls, SourceRealtime)
	if err != nil {
		return err
	}
	m.publish(ctx, append(events, evs...))
	m.saveState(false)
	return nil
}

// touched reports whether a changed path is the trigger, below it, or a
// directory subtree holding it.
func touched(paths map[string]bool, trigger string) bool {
	for p, subtree := range paths {
		if p == trigger || strings.HasPrefix(p, trigger+"/") || (subtree && strings.HasPrefix(trigger, strings.TrimSuffix(p, "/")+"/")) {
			return true
		}
	}
	return false
}

// normalizeScopes sorts scopes, drops those inside a subtree scope, and
// adds the roots nested in subtree scopes (a subtree scan skips them: they
// are walked as their own roots).
func normalizeScopes(scopes, roots []root) []root {
	slices.SortFunc(scopes, func(a, b root) int { return strings.Compare(a.path, b.path) })
	var out []root
	for _, s := range scopes {
		if n := len(out); n > 0 {
			last := out[n-1]
			if last.path == s.path {
				if !s.noEntries {
					out[n-1] = s
				}
				continue
			}
			if !last.noEntries && under(s.path, last.path) {
				continue
			}
		}
		out = append(out, s)
	}
	var nested []root
	for _, s := range out {
		if s.noEntries {
			continue
		}
		for _, r := range roots {
			if under(r.path, s.path) {
				nested = append(nested, r)
			}
		}
	}
	if len(nested) == 0 {
		return out
	}
	out = append(out, nested...)
	slices.SortFunc(out, func(a, b root) int { return strings.Compare(a.path, b.path) })
	return slices.CompactFunc(out, func(a, b root) bool { return a.path == b.path })
}

// under reports whether p is strictly below dir.
func under(p, dir string) bool {
	return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// covered reports whether p is within one of the scopes: the scope path
// itself, or below it for a subtree scope.
func covered(p string, scopes []root) bool {
	for _, s := range scopes {
		if p == s.path || (!s.noEntries && under(p, s.path)) {
			return true
		}
	}
	return false
}

// splitScope returns the records in the scopes and the others.
func splitScope(files []File, scopes []root) (in, out []File) {
	out = make([]File, 0, len(files))
	for _, f := range files {
		if covered(f.Path, scopes) {
			in = append(in, f)
		} else {
			out = append(out, f)
		}
	}
	return in, out
}

// inScope keeps the records in the scopes (a scope scan may record a
// subtree scope's nested roots' parents; nothing else).
func inScope(files []File, scopes []root) []File {
	return slices.DeleteFunc(files, func(f File) bool { return !covered(f.Path, scopes) })
}

// mergeFiles merges two sorted, disjoint record lists.
func mergeFiles(a, b []File) []File {
	out := make([]File, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].Path < b[j].Path {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (s *Scanner) ruleRefs() []RuleRef {
	refs := make([]RuleRef, len(s.rs.Rules))
	for i, r := range s.rs.Rules {
		refs[i] = RuleRef{Name: r.Name, Severity: r.Severity}
	}
	return refs
}

// withFiles returns a copy of b with files (records of the current rule
// set, whose rule indexes refs).
func (b *Baseline) withFiles(files []File, refs []RuleRef) *Baseline {
	nb := *b
	nb.Files, nb.Rules = files, refs
	return &nb
}

// withObjects returns a copy of b with the objects of kind k replaced.
func (b *Baseline) withObjects(k Kind, objs []Object) *Baseline {
	nb := *b
	nb.Objects = make([]Object, 0, len(b.Objects)+len(objs))
	for _, o := range b.Objects {
		if o.Kind != k {
			nb.Objects = append(nb.Objects, o)
		}
	}
	nb.Objects = append(nb.Objects, objs...)
	sortObjects(nb.Objects)
	return &nb
}

// recollect runs collectors again and reports how their objects changed.
// A failing collector keeps its previous objects.
func (m *Monitor) recollect(ctx context.Context, colls []Collector, src Source) ([]Event, error) {
	var events []Event
	for _, c := range colls {
		objs, err := m.s.collectOne(ctx, c, m.key)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			m.s.o.log.Warn("integrity collector failed", "collector", c.Name(), "err", err)
			continue
		}
		m.mu.Lock()
		var old []Object
		for _, o := range m.state.Objects {
			if o.Kind == c.Kind() {
				old = append(old, o)
			}
		}
		events = append(events, diffObjects(old, objs, m.s.o.colls, src, time.Now().UTC())...)
		m.state = m.state.withObjects(c.Kind(), objs)
		m.mu.Unlock()
	}
	return events, nil
}

// poll runs the collectors that have no trigger files.
func (m *Monitor) poll(ctx context.Context) error {
	var colls []Collector
	for _, c := range m.s.o.colls {
		if len(c.Triggers()) == 0 {
			colls = append(colls, c)
		}
	}
	events, err := m.recollect(ctx, colls, SourcePoll)
	if err != nil {
		return err
	}
	m.publish(ctx, events)
	return nil
}

// compare runs a full compare against the state and reports every
// difference.
func (m *Monitor) compare(ctx context.Context, src Source) error {
	m.mu.Lock()
	prev := m.state
	m.mu.Unlock()
	cur, err := m.s.Build(ctx, prev, m.key)
	if err != nil {
		return err
	}
	cur.Created = prev.Created
	events := Compare(prev, cur, m.s.rs, m.s.o.colls, src, time.Now().UTC())
	m.mu.Lock()
	m.state = cur
	m.status.Compares++
	m.status.LastCompare = time.Now().UTC()
	m.mu.Unlock()
	m.publish(ctx, events)
	m.saveState(false)
	return nil
}

// CompareNow runs a full compare now; its events go to the EmitFunc.
func (m *Monitor) CompareNow(ctx context.Context) error {
	return m.locked(func() error { return m.compare(ctx, SourceCompare) })
}

// Rebuild makes a new baseline of the host as it is now (every file read
// again) and makes it the state, reporting nothing. The caller saves the
// returned baseline where it keeps it.
func (m *Monitor) Rebuild(ctx context.Context) (*Baseline, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	b, err := m.s.Build(ctx, nil, m.key)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.state = b
	m.dirtyAt = time.Now()
	m.mu.Unlock()
	m.saveState(true)
	return b, nil
}

func (m *Monitor) publish(ctx context.Context, events []Event) {
	if len(events) == 0 {
		return
	}
	m.mu.Lock()
	m.status.Events += len(events)
	m.dirtyAt = time.Now()
	m.mu.Unlock()
	m.emit(ctx, events)
}

// saveState writes the state file when it changed, at most every
// stateSaveInterval unless force.
func (m *Monitor) saveState(force bool) {
	p := m.s.o.statePath
	if p == "" {
		return
	}
	m.mu.Lock()
	st, dirty := m.state, m.dirtyAt.After(m.savedAt)
	due := force || time.Since(m.savedAt) >= stateSaveInterval
	if dirty && due {
		m.savedAt = time.Now()
	}
	m.mu.Unlock()
	if !dirty || !due {
		return
	}
	if err := st.Save(p); err != nil {
		m.s.o.log.Warn("integrity: cannot save the state file", "path", p, "err", err)
	}
}
