package analyzer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
)

// Errors returned by the walk.
var (
	// ErrTooManyEntries is returned when a layer or tree holds more entries
	// than Options allow: an endless or hostile archive.
	ErrTooManyEntries = errors.New("analyzer: too many entries")
	// ErrNoAnalyzers is returned by NewSet for an empty analyzer list.
	ErrNoAnalyzers = errors.New("analyzer: no analyzers")
)

// Defaults, each chosen for a reason.
const (
	// DefaultMemoryThreshold: files up to this size are held in memory while
	// analysers read them; bigger ones are spilled to a temp file, so memory
	// stays bounded whatever the image holds. Package databases and
	// manifests are nearly always below it.
	DefaultMemoryThreshold = 4 << 20
	// DefaultMaxFileSize: files above it are not handed to content
	// analysers at all (a warning is recorded). 2 GiB covers the largest
	// real binaries and jars while refusing absurd entries.
	DefaultMaxFileSize = 2 << 30
	// DefaultMaxEntries bounds the entries of one layer: real layers have
	// up to a few hundred thousand files.
	DefaultMaxEntries = 5_000_000
	// DefaultMaxInFlight bounds the bytes held in memory by files waiting for
	// or under analysis.
	DefaultMaxInFlight = 64 << 20
	// maxWarnings per layer: a hostile layer can produce one per entry.
	maxWarnings = 200
)

// Option configures a Set.
type Option func(*options) error

type options struct {
	memoryThreshold int64
	maxFileSize     int64
	maxEntries      int
	maxInFlight     int64
	workers         int
	tempDir         string
	skipDirs        []string
	keyExtra        []string
}

// WithMemoryThreshold sets the size up to which files are held in memory.
func WithMemoryThreshold(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("analyzer: memory threshold %d < 0", n)
		}
		o.memoryThreshold = n
		return nil
	}
}

// WithMaxFileSize sets the size above which files are not analysed.
func WithMaxFileSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("analyzer: max file size %d <= 0", n)
		}
		o.maxFileSize = n
		return nil
	}
}

// WithMaxEntries bounds the entries of one layer or tree.
func WithMaxEntries(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("analyzer: max entries %d <= 0", n)
		}
		o.maxEntries = n
		return nil
	}
}

// WithWorkers sets how many files are analysed at once within one walk.
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("analyzer: workers %d <= 0", n)
		}
		o.workers = n
		return nil
	}
}

// WithTempDir sets where large files are spilled while they are analysed.
func WithTempDir(dir string) Option {
	return func(o *options) error {
		o.tempDir = dir
		return nil
	}
}

// WithSkipDirs names directories (clean, relative, e.g. "proc") that are
// not walked, with everything below them.
func WithSkipDirs(dirs ...string) Option {
	return func(o *options) error {
		o.skipDirs = append(o.skipDirs, dirs...)
		return nil
	}
}

// WithCacheKeyExtra adds strings to the layer cache key: what changes an
// analyzer's output besides its version (a malware engine's signature
// version, custom secret rules).
func WithCacheKeyExtra(extra ...string) Option {
	return func(o *options) error {
		o.keyExtra = append(o.keyExtra, extra...)
		return nil
	}
}

// Set is a fixed list of analyzers run together in one walk.
type Set struct {
	analyzers []Analyzer
	opts      options
	key       string
}

// NewSet returns a Set running analyzers. The list is used as given: there
// is no registry.
func NewSet(analyzers []Analyzer, opts ...Option) (*Set, error) {
	if len(analyzers) == 0 {
		return nil, ErrNoAnalyzers
	}
	o := options{
		memoryThreshold: DefaultMemoryThreshold,
		maxFileSize:     DefaultMaxFileSize,
		maxEntries:      DefaultMaxEntries,
		maxInFlight:     DefaultMaxInFlight,
		workers:         runtime.GOMAXPROCS(0),
		tempDir:         os.TempDir(),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, a := range analyzers {
		if seen[a.Name()] {
			return nil, fmt.Errorf("analyzer: duplicate analyzer name %q", a.Name())
		}
		seen[a.Name()] = true
	}
	s := &Set{analyzers: analyzers, opts: o}
	s.key = s.computeKey()
	return s, nil
}

// Analyzers returns the set's analyzers.
func (s *Set) Analyzers() []Analyzer { return s.analyzers }

// computeKey hashes what makes a layer result reusable: the analyzers,
// their versions and the options that change what is analysed.
func (s *Set) computeKey() string {
	parts := make([]string, 0, len(s.analyzers)+4)
	for _, a := range s.analyzers {
		parts = append(parts, a.Name()+"@"+strconv.Itoa(a.Version()))
	}
	sort.Strings(parts)
	parts = append(parts, "maxfile="+strconv.FormatInt(s.opts.maxFileSize, 10))
	skip := append([]string(nil), s.opts.skipDirs...)
	sort.Strings(skip)
	parts = append(parts, skip...)
	parts = append(parts, s.opts.keyExtra...)
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CacheKey is the key of a layer's result for this set: it changes when
// the layer, any analyzer version or the options change.
func (s *Set) CacheKey(diffID string) string {
	h := sha256.Sum256([]byte(resultFormatVersion + "\x00" + s.key + "\x00" + diffID))
	return hex.EncodeToString(h[:])
}
