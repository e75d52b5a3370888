// Package appcontrol is the application control engine of mamori agent:
// an allow-list of executables, libraries and scripts by SHA-256, learned
// from an inventory of the host, a maintenance window and the package
// managers (dpkg, rpm); execution of anything not on it is logged or
// blocked through fanotify FAN_OPEN_EXEC_PERM (and, for scripts and
// libraries, FAN_OPEN_PERM when an interpreter or the dynamic loader opens
// them). The list is exported and imported in a documented format so the
// server can edit it. See docs/host-appcontrol.md.
package appcontrol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Source says how an entry was learned.
type Source string

const (
	SourceInventory   Source = "inventory"
	SourceMaintenance Source = "maintenance"
	SourceDpkg        Source = "dpkg"
	SourceRPM         Source = "rpm"
	// SourceManual: added by an operator (on the server, or by import).
	SourceManual Source = "manual"
)

var sources = map[Source]bool{SourceInventory: true, SourceMaintenance: true, SourceDpkg: true, SourceRPM: true, SourceManual: true}

// Entry is one allowed file content.
type Entry struct {
	SHA256 string `json:"sha256"`
	// Path is where it was seen when learned (informational: the decision
	// is by content only).
	Path string `json:"path,omitempty"`
	Kind Kind   `json:"kind,omitempty"`
	// Source is how it was learned; Package the owning package for dpkg
	// and rpm entries.
	Source  Source    `json:"source"`
	Package string    `json:"package,omitempty"`
	Added   time.Time `json:"added"`
}

// List limits, enforced on import.
const (
	MaxEntries    = 5_000_000
	maxPathLen    = 4096
	maxPackageLen = 256
	maxImport     = 2 << 30
)

var (
	// ErrFormat: an allow-list document is malformed.
	ErrFormat = errors.New("appcontrol: bad allow-list")
	// ErrPackageDB: a package database (dpkg md5sums, rpm output) is malformed.
	ErrPackageDB = errors.New("appcontrol: bad package database")
)

// FormatName and FormatVersion identify an exported allow-list.
const (
	FormatName    = "mamori-appcontrol-allowlist"
	FormatVersion = 1
)

// Document is the exported form of a list (docs/host-appcontrol.md).
type Document struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	Generated time.Time `json:"generated"`
	// Host names the host the list was learned on (informational).
	Host    string  `json:"host,omitempty"`
	Entries []Entry `json:"entries"`
}

// List is the allow-list: a set of SHA-256 digests, each with the entries
// that explain it. It is safe for concurrent use; lookups take a read lock.
type List struct {
	mu     sync.RWMutex
	byHash map[[32]byte][]Entry
	n      int
}

// NewList returns an empty list.
func NewList() *List { return &List{byHash: map[[32]byte][]Entry{}} }

func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrFormat, truncate(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: sha256 %q: %v", ErrFormat, truncate(s), err)
	}
	return h, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// validate checks and normalises an entry.
func validate(e *Entry) ([32]byte, error) {
	e.SHA256 = strings.ToLower(e.SHA256)
	h, err := parseHash(e.SHA256)
	if err != nil {
		return h, err
	}
	if !sources[e.Source] {
		return h, fmt.Errorf("%w: source %q (want inventory, maintenance, dpkg, rpm or manual)", ErrFormat, truncate(string(e.Source)))
	}
	switch e.Kind {
	case "", KindExecutable, KindLibrary, KindScript:
	default:
		return h, fmt.Errorf("%w: kind %q", ErrFormat, truncate(string(e.Kind)))
	}
	if len(e.Path) > maxPathLen || !utf8.ValidString(e.Path) || strings.IndexByte(e.Path, 0) >= 0 {
		return h, fmt.Errorf("%w: path of %s is not a valid path of at most %d bytes", ErrFormat, e.SHA256, maxPathLen)
	}
	if len(e.Package) > maxPackageLen || !utf8.ValidString(e.Package) || strings.IndexByte(e.Package, 0) >= 0 {
		return h, fmt.Errorf("%w: package of %s is not valid text of at most %d bytes", ErrFormat, e.SHA256, maxPackageLen)
	}
	return h, nil
}

// Add adds an entry (an entry with the same digest, path, source and
// package is replaced). It returns false when the entry is invalid.
func (l *List) Add(e Entry) error {
	h, err := validate(&e)
	if err != nil {
		return err
	}
	if e.Added.IsZero() {
		e.Added = time.Now().UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addLocked(h, e)
}

func (l *List) addLocked(h [32]byte, e Entry) error {
	es := l.byHash[h]
	for i, old := range es {
		if old.Path == e.Path && old.Source == e.Source && old.Package == e.Package {
			es[i] = e
			return nil
		}
	}
	if l.n >= MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrFormat, MaxEntries)
	}
	l.byHash[h] = append(es, e)
	l.n++
	return nil
}

// Allowed reports whether content with digest sum is on the list.
func (l *List) Allowed(sum [32]byte) bool {
	l.mu.RLock()
	_, ok := l.byHash[sum]
	l.mu.RUnlock()
	return ok
}

// Lookup returns the entries for a digest.
func (l *List) Lookup(sum [32]byte) []Entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]Entry(nil), l.byHash[sum]...)
}

// Remove drops every entry of a digest and reports whether there was one.
func (l *List) Remove(sha256hex string) (bool, error) {
	h, err := parseHash(strings.ToLower(sha256hex))
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	es, ok := l.byHash[h]
	if ok {
		l.n -= len(es)
		delete(l.byHash, h)
	}
	return ok, nil
}

// Len is the number of entries; Digests the number of distinct digests.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.n
}

// Digests is the number of distinct digests.
func (l *List) Digests() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.byHash)
}

// Entries returns every entry, sorted by digest then path.
func (l *List) Entries() []Entry {
	l.mu.RLock()
	out := make([]Entry, 0, l.n)
	for _, es := range l.byHash {
		out = append(out, es...)
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].SHA256 != out[j].SHA256 {
			return out[i].SHA256 < out[j].SHA256
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// Merge adds every entry of other.
func (l *List) Merge(other *List) error {
	for _, e := range other.Entries() {
		if err := l.Add(e); err != nil {
			return err
		}
	}
	return nil
}

// Export writes the list as a Document (JSON, entries sorted).
func (l *List) Export(w io.Writer, host string) error {
	doc := Document{Format: FormatName, Version: FormatVersion, Generated: time.Now().UTC(), Host: host, Entries: l.Entries()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("appcontrol: export: %w", err)
	}
	return nil
}

// Import reads a Document. Unknown fields, another format or version,
// invalid digests, sources or kinds, and more than MaxEntries entries are
// errors naming the entry.
func Import(r io.Reader) (*List, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxImport+1))
	if err != nil {
		return nil, fmt.Errorf("appcontrol: import: %w", err)
	}
	if len(b) > maxImport {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, maxImport)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc Document
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrFormat)
	}
	if doc.Format != FormatName || doc.Version != FormatVersion {
		return nil, fmt.Errorf("%w: format %q version %d, want %q version %d", ErrFormat, truncate(doc.Format), doc.Version, FormatName, FormatVersion)
	}
	if len(doc.Entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrFormat, len(doc.Entries), MaxEntries)
	}
	l := NewList()
	for i := range doc.Entries {
		e := doc.Entries[i]
		h, err := validate(&e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if err := l.addLocked(h, e); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return l, nil
}

// Save writes the list to path atomically (temp file, fsync, rename), mode 0600.
func (l *List) Save(path, host string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".allowlist-*")
	if err != nil {
		return fmt.Errorf("appcontrol: save %s: %w", path, err)
	}
	err = l.Export(tmp, host)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name()) // the partial temp file
		return fmt.Errorf("appcontrol: save %s: %w", path, err)
	}
	return nil
}

// Load reads a list saved with Save or exported by the server.
func Load(path string) (*List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("appcontrol: load: %w", err)
	}
	defer f.Close() // read-only
	l, err := Import(f)
	if err != nil {
		return nil, fmt.Errorf("appcontrol: load %s: %w", path, err)
	}
	return l, nil
}
