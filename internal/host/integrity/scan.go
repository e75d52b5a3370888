package integrity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Option configures a Scanner (and the Build, Compare and Monitor that use
// one).
type Option func(*options) error

type options struct {
	root    string
	workers int
	rehash  bool
	log     *slog.Logger
	procDir string
	colls   []Collector // nil: DefaultCollectors
	noColl  bool
	// Monitor
	watch              WatchMode
	interval, poll     time.Duration
	debounce, maxDelay time.Duration
	minRescan          time.Duration
	maxDirty           int
	statePath          string
}

// WithRoot scans under dir instead of "/": rule paths, the files the
// collectors read (etc/passwd ...) and the paths in records are taken
// relative to it. Tests use a fixture root.
func WithRoot(dir string) Option {
	return func(o *options) error {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("integrity: root %s: %w", dir, err)
		}
		o.root = abs
		return nil
	}
}

// WithWorkers bounds the parallel walkers and hashers; the default is the
// number of usable CPUs (GOMAXPROCS).
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("integrity: workers %d out of range 1-1024", n)
		}
		o.workers = n
		return nil
	}
}

// WithRehash makes a compare read every regular file again even when its
// size, times and inode are those of the baseline.
func WithRehash(b bool) Option {
	return func(o *options) error { o.rehash = b; return nil }
}

// WithLogger sets the logger; default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("integrity: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithProcDir reads processes, sockets and kernel modules from dir
// instead of /proc (tests use a recorded fixture).
func WithProcDir(dir string) Option {
	return func(o *options) error { o.procDir = dir; return nil }
}

// WithCollectors sets the system object collectors (default
// DefaultCollectors()); none at all with WithCollectors() and no argument.
func WithCollectors(cs ...Collector) Option {
	return func(o *options) error {
		o.colls, o.noColl = cs, len(cs) == 0
		return nil
	}
}

func makeOptions(opts []Option) (options, error) {
	o := options{root: "/", workers: runtime.GOMAXPROCS(0), log: slog.Default(), procDir: "/proc",
		watch: WatchAuto, interval: DefaultCompareInterval, poll: DefaultPollInterval, debounce: DefaultDebounce, maxDelay: DefaultMaxDelay, minRescan: DefaultMinRescan, maxDirty: maxDirty}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	if o.colls == nil && !o.noColl {
		o.colls = DefaultCollectors()
	}
	return o, nil
}

// full returns the path on this machine of logical path p.
func (o *options) full(p string) string {
	if o.root == "/" {
		return p
	}
	return o.root + p
}

// Stats counts what a scan did.
type Stats struct {
	Files  int   // records produced
	Hashed int   // regular files read and hashed
	Reused int   // hashes taken from the previous baseline (unchanged size, times, inode)
	Bytes  int64 // bytes hashed
	// Errors are files that could not be read (their record has no hash
	// or is missing); the first maxErrors are kept, ErrorCount has all.
	Errors     []string
	ErrorCount int
}

const maxErrors = 100

// Scanner walks the paths of a rule set.
type Scanner struct {
	rs *RuleSet
	o  options
}

// NewScanner returns a scanner for rs, which must be valid.
func NewScanner(rs *RuleSet, opts ...Option) (*Scanner, error) {
	if rs == nil {
		return nil, fmt.Errorf("%w: nil rule set", ErrInvalidRules)
	}
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Scanner{rs: rs, o: o}, nil
}

// root is a walk start: a rule path after glob expansion.
type root struct {
	path string
	rule int
	// noEntries records the path itself only (a subdirectory of a
	// non-recursive rule's directory).
	noEntries bool
}

// roots expands the rule paths (globs included) that exist now. A path
// claimed by two rules goes to the first.
func (s *Scanner) roots() ([]root, error) {
	seen := map[string]bool{}
	var out []root
	for i := range s.rs.Rules {
		for _, p := range s.rs.Rules[i].Paths {
			ps := []string{p}
			if hasGlob(p) {
				m, err := filepath.Glob(s.o.full(p))
				if err != nil {
					return nil, fmt.Errorf("integrity: glob %s: %w", p, err)
				}
				ps = ps[:0]
				for _, f := range m {
					ps = append(ps, strings.TrimPrefix(f, strings.TrimSuffix(s.o.root, "/")))
				}
			}
			for _, q := range ps {
				if !seen[q] {
					seen[q] = true
					out = append(out, root{path: q, rule: i})
				}
			}
		}
	}
	return out, nil
}

// walk state shared by the workers of one scan.
type walk struct {
	s       *Scanner
	ctx     context.Context
	prev    []File // sorted, may be nil
	isRoot  map[string]bool
	mu      sync.Mutex
	cond    *sync.Cond
	dirs    []dirJob
	pending int // dirs queued or being read
	done    bool
	hashes  chan *File
	results [][]*File // one per walker and hasher
	stats   Stats
	nHashed atomic.Int64
	nReused atomic.Int64
	nBytes  atomic.Int64
	errMu   sync.Mutex
}

type dirJob struct {
	path    string
	rule    int
	descend bool // walk subdirectories too
	root    string
}

// Scan walks every rule path and returns the records sorted by path. With
// prev (a baseline's sorted files), a regular file whose type, inode, size,
// mtime and ctime are unchanged keeps its previous hash instead of being
// read (unless WithRehash). Files that cannot be read are counted in
// Stats, not fatal; a cancelled ctx is.
func (s *Scanner) Scan(ctx context.Context, prev []File) ([]File, Stats, error) {
	roots, err := s.roots()
	if err != nil {
		return nil, Stats{}, err
	}
	return s.scan(ctx, roots, prev)
}

// scanRoots walks the given starts (ScanPaths of the Monitor).
func (s *Scanner) scan(ctx context.Context, roots []root, prev []File) ([]File, Stats, error) {
	all, err := s.roots()
	if err != nil {
		return nil, Stats{}, err
	}
	w := &walk{s: s, ctx: ctx, prev: prev, isRoot: make(map[string]bool, len(all)), hashes: make(chan *File, 4*s.o.workers)}
	for _, r := range all {
		w.isRoot[r.path] = true
	}
	w.cond = sync.NewCond(&w.mu)
	n := s.o.workers
	w.results = make([][]*File, 2*n+1)
	var wg, hwg sync.WaitGroup
	for i := 0; i < n; i++ {
		hwg.Add(1)
		go func(slot int) {
			defer hwg.Done()
			w.hasher(slot)
		}(n + i)
	}
	// The roots themselves, in the caller's goroutine.
	for _, r := range roots {
		if ctx.Err() != nil {
			break
		}
		if s.rs.excludedTree(r.rule, "/", r.path) {
			continue
		}
		f, err := lstatFile(s.o.full(r.path), r.path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			w.fail(err)
			continue
		}
		f.Rule = uint16(r.rule)
		w.record(&f, 2*n)
		if f.Type == TypeDir && !r.noEntries {
			w.dirs = append(w.dirs, dirJob{path: r.path, rule: r.rule, descend: s.rs.Rules[r.rule].recursive(), root: r.path})
			w.pending++
		}
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(slot int) {
			defer wg.Done()
			w.walker(slot)
		}(i)
	}
	// Wake the walkers if the context ends while they wait.
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.done = true
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	wg.Wait()
	stop()
	close(w.hashes)
	hwg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, Stats{}, err
	}
	total := 0
	for _, r := range w.results {
		total += len(r)
	}
	out := make([]File, 0, total)
	for _, r := range w.results {
		for _, f := range r {
			out = append(out, *f)
		}
	}
	sortFiles(&out)
	st := w.stats
	st.Files = len(out)
	st.Hashed = int(w.nHashed.Load())
	st.Reused = int(w.nReused.Load())
	st.Bytes = w.nBytes.Load()
	return out, st, nil
}

// sortFiles sorts by path and drops duplicates (a path reached twice).
func sortFiles(fs *[]File) {
	s := *fs
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
	*fs = slices.CompactFunc(s, func(a, b File) bool { return a.Path == b.Path })
}

func (w *walk) fail(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	w.stats.ErrorCount++
	if len(w.stats.Errors) < maxErrors {
		w.stats.Errors = append(w.stats.Errors, SafeText(err.Error()))
	}
}

// next pops a directory job, waiting while others may still add some.
func (w *walk) next() (dirJob, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.dirs) == 0 && w.pending > 0 && !w.done {
		w.cond.Wait()
	}
	if len(w.dirs) == 0 || w.done {
		return dirJob{}, false
	}
	j := w.dirs[len(w.dirs)-1]
	w.dirs = w.dirs[:len(w.dirs)-1]
	return j, true
}

func (w *walk) finish(sub []dirJob) {
	w.mu.Lock()
	w.dirs = append(w.dirs, sub...)
	w.pending += len(sub) - 1
	if w.pending == 0 || len(sub) > 0 {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

func (w *walk) walker(slot int) {
	for {
		j, ok := w.next()
		if !ok {
			return
		}
		w.finish(w.readDir(j, slot))
	}
}

// readDir records the entries of one directory and returns the
// subdirectories to walk.
func (w *walk) readDir(j dirJob, slot int) []dirJob {
	s := w.s
	full := s.o.full(j.path)
	d, err := os.Open(full)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.fail(err)
		}
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		w.fail(fmt.Errorf("read directory %s: %w", j.path, err))
	}
	slices.Sort(names)
	dfd := int(d.Fd())
	var sub []dirJob
	for _, name := range names {
		if w.ctx.Err() != nil {
			return nil
		}
		p := j.path + "/" + name
		if j.path == "/" {
			p = "/" + name
		}
		if w.isRoot[p] || s.rs.excluded(j.rule, p) {
			continue // a root is walked by its own job
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				w.fail(&fs.PathError{Op: "lstat", Path: p, Err: err})
			}
			continue
		}
		f := &File{Path: p, Rule: uint16(j.rule)}
		f.stat(&st)
		if err := f.readExtra(full + "/" + name); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			w.fail(err)
		}
		w.record(f, slot)
		if f.Type == TypeDir && j.descend {
			sub = append(sub, dirJob{path: p, rule: j.rule, descend: true, root: j.root})
		}
	}
	return sub
}

// record keeps f, after hashing it when it is a regular file whose content
// is not known from the previous baseline.
func (w *walk) record(f *File, slot int) {
	if f.Type != TypeRegular {
		w.results[slot] = append(w.results[slot], f)
		return
	}
	if !w.s.o.rehash && w.prev != nil {
		if p := lookupFile(w.prev, f.Path); p != nil && p.Hashed && sameVersion(p, f) {
			f.SHA256, f.Hashed = p.SHA256, true
			w.nReused.Add(1)
			w.results[slot] = append(w.results[slot], f)
			return
		}
	}
	select {
	case w.hashes <- f:
	case <-w.ctx.Done():
	}
}

func (w *walk) hasher(slot int) {
	for f := range w.hashes {
		if w.ctx.Err() != nil {
			continue
		}
		if w.hash(f) {
			w.results[slot] = append(w.results[slot], f)
		}
	}
}

// hash fills f's digest; false when the file vanished.
func (w *walk) hash(f *File) bool {
	full := w.s.o.full(f.Path)
	for attempt := 0; ; attempt++ {
		sum, err := hashFile(full, f)
		switch {
		case err == nil:
			f.SHA256, f.Hashed = sum, true
			w.nHashed.Add(1)
			w.nBytes.Add(f.Size)
			return true
		case errors.Is(err, unix.ENOENT):
			return false
		case errors.Is(err, errChanged) && attempt == 0:
			// Replaced between lstat and open: take the new one.
			nf, lerr := lstatFile(full, f.Path)
			if lerr != nil {
				return false
			}
			nf.Rule = f.Rule
			*f = nf
			if f.Type != TypeRegular {
				return true
			}
		default:
			w.fail(fmt.Errorf("hash %s: %w", f.Path, err))
			return true // recorded without a hash
		}
	}
}

// lookupFile finds path in files sorted by path.
func lookupFile(files []File, p string) *File {
	i := sort.Search(len(files), func(i int) bool { return files[i].Path >= p })
	if i < len(files) && files[i].Path == p {
		return &files[i]
	}
	return nil
}

// ruleFor returns the rule governing logical path p and the root it falls
// under: the rule with the deepest path that is p or an ancestor of it;
// -1 when p is outside every rule or excluded.
func (s *Scanner) ruleFor(roots []root, p string) (int, string) {
	best, bestRoot := -1, ""
	for _, r := range roots {
		if (p == r.path || strings.HasPrefix(p, strings.TrimSuffix(r.path, "/")+"/")) && len(r.path) > len(bestRoot) {
			if p != r.path && !s.rs.Rules[r.rule].recursive() && path.Dir(p) != r.path {
				continue
			}
			best, bestRoot = r.rule, r.path
		}
	}
	if best >= 0 && s.rs.excludedTree(best, bestRoot, p) {
		return -1, ""
	}
	return best, bestRoot
}
