// Package tail follows log files the way log inspection needs them: every line written is read
// exactly once, across rotation and restarts.
//
//   - Files are named by paths or globs (Spec) and polled: a poll costs an fstat of each open
//     file and a stat of its path, so thousands of container logs are cheap to follow.
//   - A file is identified by its device and inode plus a fingerprint of its first bytes (up to
//     FingerprintBytes), so inode reuse after a delete is not mistaken for the old file.
//   - Rename-and-create rotation (logrotate's default, kubelet's container log rotation): when
//     the path names a new file, the old one stays open and is read to its end until it has been
//     idle for RotateGrace, so lines its writer appends before reopening are not lost; the new
//     file is read from its start.
//   - copytruncate and truncation: a file whose size drops below the read offset, or whose head
//     no longer matches its fingerprint (truncated, then rewritten past the old offset), is
//     truncated. The lines not yet read are looked for in a copy beside it (a sibling whose head
//     matches the fingerprint, plain or .gz) and read from there; the file is then read again
//     from offset 0. A truncation with no copy (a log cleared by hand) is reported as a Notice.
//   - The committed offset, the identity and a skip flag of each file are persisted in a state
//     file (written atomically: temporary file, fsync, rename). A restart resumes each file at
//     its offset; a file rotated while the follower was stopped is found again by its identity
//     among its siblings and read to its end first.
//   - A line is delivered once it is complete (a newline was read); a partial last line waits
//     for the rest. Lines longer than MaxLineBytes are cut (Line.Cut) and the rest skipped.
//
// Delivery guarantee: exactly once across clean stops (Run returns after saving the state of
// the lines it delivered); after a crash, the lines delivered since the last state save (at most
// SaveInterval) are delivered again. Lines a writer appends to a rotated file after RotateGrace,
// or to a copytruncated file between logrotate's copy and its truncate (a race logrotate
// documents), cannot be read by anyone and are not.
package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Spec names the files of one source.
type Spec struct {
	// Pattern is a path or a filepath.Match glob ("/var/log/pods/*/*/*.log").
	Pattern string
	// WatchOnly reports size and identity changes of the files (Notice) without reading them:
	// for binary logs such as wtmp and lastlog, whose clearing is the event.
	WatchOnly bool
	// MaxLineBytes overrides the follower's line limit for these files (Kubernetes audit events
	// can be larger than a syslog line); 0 keeps it. At most 16 MiB.
	MaxLineBytes int
}

// Line is one complete line. Data is valid only during the Handler call.
type Line struct {
	Spec   int    // index of the Spec that matched the file
	Path   string // the path the file had when it was opened
	Data   []byte // without the newline (and a trailing '\r')
	Offset int64  // offset of the line's first byte in the file
	Cut    bool   // the line was longer than MaxLineBytes: Data is its beginning
}

// NoticeKind classifies a Notice.
type NoticeKind string

const (
	// NoticeTruncated: the file shrank below what was read (or its head was rewritten) and no
	// copy of it was found: cleared, not rotated. OldSize is the size before, NewSize after.
	NoticeTruncated NoticeKind = "truncated"
	// NoticeCopyTruncated: the file was truncated after being copied (Detail names the copy,
	// whose unread lines were delivered before this notice).
	NoticeCopyTruncated NoticeKind = "copytruncated"
	// NoticeRotated: the path now names another file, or none while the file still has a name
	// (renamed, the writer creates the path again); the old file is read to its end.
	NoticeRotated NoticeKind = "rotated"
	// NoticeRemoved: the file was deleted (no name left), or a WatchOnly path no longer exists.
	NoticeRemoved NoticeKind = "removed"
	// NoticeLost: bytes that were not read can no longer be (a rotated file removed while the
	// follower was stopped, a read error). OldSize-Offset bytes at most were lost.
	NoticeLost NoticeKind = "lost"
	// NoticeShrunk: a WatchOnly file became smaller in place (OldSize -> NewSize); a file
	// replaced by another (rotation) is not reported.
	NoticeShrunk NoticeKind = "shrunk"
)

// Notice reports a change to a file that is not a line.
type Notice struct {
	Spec    int
	Path    string
	Kind    NoticeKind
	OldSize int64
	NewSize int64
	Offset  int64 // the read offset when it happened
	Detail  string
	Time    time.Time
}

// Handler receives lines and notices, from one goroutine at a time, in file order. The
// follower commits a line's offset when Line returns.
type Handler interface {
	Line(Line)
	Notice(Notice)
}

// Errors.
var (
	// ErrState: the state file is unreadable or malformed (Run refuses to start rather than read
	// every file again from its start).
	ErrState = errors.New("tail: bad state file")
	// ErrSpec: a Spec is invalid.
	ErrSpec = errors.New("tail: bad spec")
)

// Stats are the follower's counters, read with Follower.Stats.
type Stats struct {
	Lines        uint64
	Bytes        uint64
	CutLines     uint64 // lines longer than MaxLineBytes
	Truncations  uint64
	CopyReads    uint64 // copytruncate copies read
	Rotations    uint64
	LostNotices  uint64
	OpenFiles    int
	Draining     int    // rotated files still being read
	SkippedFiles uint64 // paths over MaxFiles, or not regular files
	ReadErrors   uint64
	StateSaves   uint64
	Generations  uint64 // rotated generations found among siblings (rotated more than once between polls)
}

// file is one open file being followed.
type file struct {
	spec   int
	path   string
	f      *os.File
	id     fileID
	fp     fingerprint
	head   []byte // the file's first bytes as read, while headOK (fp is their hash)
	headOK bool   // the file was read from offset 0 by this follower: fp grows with head
	// copyMod is the modification time (Unix ns) of the latest copytruncate copy read for this
	// file: copies newer than it are generations not read yet.
	copyMod   int64
	offset    int64 // committed: the byte after the last delivered line (or skipped bytes)
	readPos   int64 // offset + len(partial) unless skipping
	partial   []byte
	skipping  bool // inside an overlong line: discard to the next newline
	size      int64
	modNs     int64
	idleSince time.Time // draining: last time it grew
	watchOnly bool
}

type fileID struct{ Dev, Ino uint64 }

// fingerprint is a hash of the first Len bytes of a file.
type fingerprint struct {
	Len int64
	Sum [sha256.Size]byte
}

// Follower follows the files of a list of Specs. It is used by one goroutine (Run).
type Follower struct {
	opts     options
	specs    []Spec
	log      *slog.Logger
	files    map[string]*file // current file of each followed path
	order    []string         // paths in the order they were added
	draining []*file
	buf      []byte
	stats    Stats
	dirty    bool
	lastSave time.Time
	lastScan time.Time
	saved    map[string]stateEntry // state loaded at start, by path, consumed while resuming
	gone     map[string]int64      // paths whose file was renamed away, with its last mtime
	closed   []fingerprint         // the last files closed, so that a generation is not read twice
	resumed  bool                  // a state file existed at start
	warned   map[string]bool
}

// New returns a Follower for specs.
func New(specs []Spec, opts ...Option) (*Follower, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%w: no files to follow", ErrSpec)
	}
	for i, s := range specs {
		if s.Pattern == "" || !filepath.IsAbs(s.Pattern) {
			return nil, fmt.Errorf("%w: spec %d: pattern %q is not an absolute path", ErrSpec, i, s.Pattern)
		}
		if _, err := filepath.Match(s.Pattern, ""); err != nil {
			return nil, fmt.Errorf("%w: spec %d: pattern %q: %w", ErrSpec, i, s.Pattern, err)
		}
		if s.MaxLineBytes != 0 && (s.MaxLineBytes < 256 || s.MaxLineBytes > 16<<20) {
			return nil, fmt.Errorf("%w: spec %d: max line bytes %d not in [256, 16 MiB]", ErrSpec, i, s.MaxLineBytes)
		}
	}
	return &Follower{
		opts:   o,
		specs:  append([]Spec(nil), specs...),
		log:    o.logger,
		files:  map[string]*file{},
		buf:    make([]byte, readChunk),
		warned: map[string]bool{},
		gone:   map[string]int64{},
	}, nil
}

// readChunk is the size of one read.
const readChunk = 64 << 10

// Stats returns the counters. Call it from the goroutine running Run, or after Run returned.
func (t *Follower) Stats() Stats {
	s := t.stats
	s.OpenFiles = len(t.files) + len(t.draining)
	s.Draining = len(t.draining)
	return s
}

// Run follows the files until ctx is done, then saves the state and closes the files. It
// returns nil on cancellation and an error when the state cannot be read or saved.
func (t *Follower) Run(ctx context.Context, h Handler) error {
	if err := t.loadState(); err != nil {
		return err
	}
	defer t.closeAll()
	tick := time.NewTicker(t.opts.poll)
	defer tick.Stop()
	for {
		t.Poll(h)
		if err := t.maybeSave(false); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			t.Poll(h) // what was written up to now
			return t.maybeSave(true)
		case <-tick.C:
		}
	}
}

// Poll runs one polling cycle: new files, growth, truncation and rotation. Run calls it every
// PollInterval; tests and callers with their own loop may call it directly (after Start).
func (t *Follower) Poll(h Handler) {
	now := t.opts.now()
	if t.lastScan.IsZero() || now.Sub(t.lastScan) >= t.opts.rescan {
		t.scan(h)
		t.lastScan = now
	}
	// Rotated files first: their lines are older than those of the files that replaced them.
	draining := t.draining
	t.draining = nil
	kept := draining[:0]
	for _, fl := range draining {
		if t.drain(fl, h, now) {
			kept = append(kept, fl)
		} else {
			t.closeFile(fl)
		}
	}
	for i := len(kept); i < len(draining); i++ {
		draining[i] = nil
	}
	t.draining = append(kept, t.draining...)
	for _, p := range t.order {
		fl := t.files[p]
		if fl == nil {
			continue
		}
		t.follow(fl, h)
	}
	t.compact()
}

// Start loads the state without starting the loop, for callers that drive Poll themselves.
func (t *Follower) Start() error { return t.loadState() }

// Stop saves the state and closes every file, for callers that drive Poll themselves.
func (t *Follower) Stop() error {
	err := t.maybeSave(true)
	t.closeAll()
	return err
}

// compact drops closed paths from order, and the duplicate a path reopened after rotation left.
func (t *Follower) compact() {
	if len(t.order) == len(t.files) {
		return
	}
	seen := make(map[string]bool, len(t.files))
	kept := t.order[:0]
	for _, p := range t.order {
		if t.files[p] != nil && !seen[p] {
			seen[p] = true
			kept = append(kept, p)
		}
	}
	t.order = kept
}

// isOpen reports whether a file with this identity is followed or drained already.
func (t *Follower) isOpen(id fileID) bool {
	for _, fl := range t.files {
		if fl.id == id {
			return true
		}
	}
	for _, fl := range t.draining {
		if fl.id == id {
			return true
		}
	}
	return false
}

// scan expands the specs and opens paths not followed yet.
func (t *Follower) scan(h Handler) {
	first := t.lastScan.IsZero()
	for i, s := range t.specs {
		paths := []string{s.Pattern}
		if hasMeta(s.Pattern) {
			m, err := filepath.Glob(s.Pattern)
			if err != nil { // only ErrBadPattern, checked in New
				continue
			}
			paths = m
		}
		for _, p := range paths {
			if _, ok := t.files[p]; ok {
				continue
			}
			if after, ok := t.gone[p]; ok {
				if _, err := os.Stat(p); err != nil {
					continue
				}
				delete(t.gone, p)
				t.missedGenerations(i, p, after, nil, h)
			}
			if len(t.files)+len(t.draining) >= t.opts.maxFiles {
				t.stats.SkippedFiles++
				if !t.warned["maxfiles"] {
					t.warned["maxfiles"] = true
					t.log.Warn("log files over the limit are not followed", "limit", t.opts.maxFiles, "path", p)
				}
				continue
			}
			t.open(i, p, first, s.WatchOnly, h)
		}
	}
	if first {
		t.resumeRotated(h)
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// open starts following path. At the first scan, a path with saved state resumes there; a new
// path starts at its end when StartAtEnd is set and no state file existed, else at 0.
func (t *Follower) open(spec int, path string, first, watchOnly bool, h Handler) {
	f, fi, err := openRegular(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && !t.warned[path] {
			t.warned[path] = true
			t.stats.SkippedFiles++
			t.log.Warn("log file not followed", "path", path, "err", err)
		}
		return
	}
	if t.isOpen(idOf(fi)) { // reachable by another path (a symlink, a rotated name a glob matches)
		f.Close()
		return
	}
	fl := &file{spec: spec, path: path, f: f, id: idOf(fi), size: fi.Size(), modNs: fi.ModTime().UnixNano(), watchOnly: watchOnly}
	if watchOnly {
		if st, ok := t.saved[path]; ok {
			delete(t.saved, path)
			if st.ID == fl.id {
				fl.size = st.Size // the next poll reports a shrink that happened while stopped
			}
		}
		t.add(fl)
		return
	}
	if st, ok := t.saved[path]; ok && first {
		delete(t.saved, path)
		if st.ID == fl.id && t.matches(f, st.FP) {
			fl.fp = st.FP
			fl.offset, fl.readPos, fl.skipping = st.Offset, st.Offset, st.Skipping
			t.add(fl)
			return
		}
		if st.ID == fl.id {
			// Same inode, other head: truncated (copytruncate or cleared) while stopped.
			fl.fp = st.FP
			fl.offset, fl.readPos = st.Offset, st.Offset
			t.add(fl)
			t.truncated(fl, fi.Size(), h)
			return
		}
		// Another file now: the saved one was rotated; resumeRotated looks for it.
		t.saved[rotatedKey(st)] = st
	}
	fl.headOK = true
	if first && !t.resumed && t.opts.startAtEnd && fl.size > 0 {
		fl.headOK = false
		t.extendFingerprint(fl)
		fl.offset, fl.readPos = fl.size, fl.size
		if !endsWithNewline(f, fl.size) {
			fl.skipping = true // the rest of a line being written: not a whole line
		}
	}
	t.add(fl)
}

// rotatedKey is the key of a saved entry whose file no longer has its path.
func rotatedKey(st stateEntry) string {
	return fmt.Sprintf("\x00rotated:%s:%d:%d", st.Path, st.ID.Dev, st.ID.Ino)
}

func (t *Follower) add(fl *file) {
	t.files[fl.path] = fl
	t.order = append(t.order, fl.path)
	t.dirty = true
}

// resumeRotated finds saved files that were rotated while the follower was stopped and drains
// them from their saved offset.
func (t *Follower) resumeRotated(h Handler) {
	keys := make([]string, 0, len(t.saved))
	for k := range t.saved {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rotatedPaths []stateEntry
	for _, k := range keys {
		st := t.saved[k]
		delete(t.saved, k)
		if st.WatchOnly {
			continue
		}
		if !st.Draining {
			rotatedPaths = append(rotatedPaths, st)
		}
		if t.isOpen(st.ID) {
			continue
		}
		f, fi, p := findByIdentity(st)
		if f == nil {
			// What was appended to it after the stop is unknown: reported, so that a gap is
			// never silent.
			t.notice(h, Notice{Spec: st.Spec, Path: st.Path, Kind: NoticeLost, OldSize: st.Size, Offset: st.Offset,
				Detail: "the file was rotated away and removed while the follower was stopped; lines written to it after the stop were not read"})
			continue
		}
		fl := &file{spec: st.Spec, path: p, f: f, id: idOf(fi), fp: st.FP, offset: st.Offset, readPos: st.Offset,
			skipping: st.Skipping, size: fi.Size(), modNs: fi.ModTime().UnixNano(), idleSince: t.opts.now()}
		if fi.Size() < st.Offset {
			t.notice(h, Notice{Spec: st.Spec, Path: p, Kind: NoticeLost, OldSize: st.Size, NewSize: fi.Size(), Offset: st.Offset,
				Detail: "the rotated file is smaller than what was read"})
			fl.offset, fl.readPos = fi.Size(), fi.Size()
		}
		t.draining = append(t.draining, fl)
		t.dirty = true
	}
	// Generations rotated in and out while stopped, after the file the state names.
	for _, st := range rotatedPaths {
		t.missedGenerations(st.Spec, st.Path, st.ModNs, []fingerprint{st.FP}, h)
	}
}

// findByIdentity looks for a saved file among the siblings of its path.
func findByIdentity(st stateEntry) (*os.File, os.FileInfo, string) {
	dir := filepath.Dir(st.Path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if idOf(info) != st.ID {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, fi, err := openRegular(p)
		if err != nil {
			continue
		}
		if idOf(fi) == st.ID && fileMatches(f, st.FP) {
			return f, fi, p
		}
		f.Close()
	}
	return nil, nil, ""
}

// follow reads a followed path's new lines and checks it for truncation and rotation.
func (t *Follower) follow(fl *file, h Handler) {
	fi, err := fl.f.Stat()
	if err != nil {
		t.stats.ReadErrors++
		return
	}
	size := fi.Size()
	if fl.watchOnly {
		t.watch(fl, fi, h)
		return
	}
	changed := size != fl.size || fi.ModTime().UnixNano() != fl.modNs
	fl.modNs = fi.ModTime().UnixNano()
	switch {
	case size < fl.readPos:
		t.truncated(fl, size, h)
	case changed && !t.matches(fl.f, fl.fp):
		t.truncated(fl, size, h)
	}
	fl.size = size
	if size > fl.readPos {
		// Nothing read since the last copytruncate: the file was blind to another
		// copytruncate that happened before this read (its generation is only in the newer copy,
		// and this read may be of the generation after it). Copies newer than the last one read,
		// whose head is not the one just read, are that generation.
		blind := fl.readPos == 0 && fl.copyMod > 0
		t.read(fl, h)
		if blind {
			if m := t.missedGenerations(fl.spec, fl.path, fl.copyMod, nil, h); m > fl.copyMod {
				fl.copyMod = m
			}
		}
	}
	if !fl.headOK && fl.fp.Len < t.opts.fpBytes && size > fl.fp.Len {
		t.extendFingerprint(fl)
	}
	// Rotation: the path names another file, or none.
	pi, err := os.Stat(fl.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Renamed away (rotation without create: the path comes back) or deleted (no link left).
		kind := NoticeRotated
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
			kind = NoticeRemoved
		}
		t.rotateOut(fl, h, kind)
		if len(t.gone) < t.opts.maxFiles {
			t.gone[fl.path] = fl.modNs // generations created and rotated before the path is back
		}
	case err == nil && idOf(pi) != fl.id:
		t.rotateOut(fl, h, NoticeRotated)
		// Generations rotated in and out between two polls, then the new file (read from the
		// next poll, after the old file's rest).
		t.missedGenerations(fl.spec, fl.path, fl.modNs, nil, h)
		t.open(fl.spec, fl.path, false, false, h)
	}
}

// rotateOut moves fl from the followed paths to the draining files.
func (t *Follower) rotateOut(fl *file, h Handler, kind NoticeKind) {
	delete(t.files, fl.path)
	fl.idleSince = t.opts.now()
	t.draining = append(t.draining, fl)
	t.stats.Rotations++
	t.dirty = true
	t.notice(h, Notice{Spec: fl.spec, Path: fl.path, Kind: kind, OldSize: fl.size, Offset: fl.readPos})
}

// drain reads a rotated file; it reports whether to keep it open.
func (t *Follower) drain(fl *file, h Handler, now time.Time) bool {
	fi, err := fl.f.Stat()
	if err != nil {
		return false
	}
	if fi.Size() > fl.readPos {
		t.read(fl, h)
		fl.idleSince = now
		return true
	}
	if fi.Size() < fl.readPos {
		// Truncated after rotation: nothing more can be read from it.
		t.flushPartial(fl, h)
		return false
	}
	if now.Sub(fl.idleSince) < t.opts.rotateGrace {
		return true
	}
	t.flushPartial(fl, h) // the file is final: its last line will get no newline
	return false
}

// watch checks a WatchOnly file.
func (t *Follower) watch(fl *file, fi os.FileInfo, h Handler) {
	size := fi.Size()
	if size < fl.size {
		t.notice(h, Notice{Spec: fl.spec, Path: fl.path, Kind: NoticeShrunk, OldSize: fl.size, NewSize: size})
		t.dirty = true
	}
	if size != fl.size {
		t.dirty = true
	}
	fl.size = size
	pi, err := os.Stat(fl.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		delete(t.files, fl.path)
		t.closeFile(fl)
		t.dirty = true
		t.notice(h, Notice{Spec: fl.spec, Path: fl.path, Kind: NoticeRemoved, OldSize: size})
	case err == nil && idOf(pi) != fl.id:
		// Replaced by a new file: rotation (logrotate rotates wtmp and btmp monthly), not a
		// clearing; the new file is watched from here.
		delete(t.files, fl.path)
		t.closeFile(fl)
		t.dirty = true
		t.open(fl.spec, fl.path, false, true, h)
	}
}

// truncated handles a file that shrank or whose head changed: unread lines are read from a copy
// when one exists, then the file is read again from 0.
func (t *Follower) truncated(fl *file, size int64, h Handler) {
	t.stats.Truncations++
	old := fl.size
	if old < fl.readPos {
		old = fl.readPos
	}
	n := Notice{Spec: fl.spec, Path: fl.path, Kind: NoticeTruncated, OldSize: old, NewSize: size, Offset: fl.readPos}
	if cp := t.findCopy(fl, h); cp != "" {
		t.stats.CopyReads++
		n.Kind, n.Detail = NoticeCopyTruncated, cp
		t.remember(fl.fp) // the copy is read: never again as a generation
	} else {
		t.flushPartial(fl, h)
	}
	fl.partial = fl.partial[:0]
	fl.offset, fl.readPos, fl.skipping = 0, 0, false
	fl.size = size
	fl.head, fl.headOK, fl.fp = fl.head[:0], true, fingerprint{}
	t.dirty = true
	t.notice(h, n)
}

// findCopy looks for a copy of fl (copytruncate) among its siblings and delivers its lines from
// fl's committed offset; it returns the copy's path, or "".
func (t *Follower) findCopy(fl *file, h Handler) string {
	if fl.fp.Len == 0 {
		return ""
	}
	dir, base := filepath.Split(fl.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	type cand struct {
		path string
		mod  time.Time
	}
	var cands []cand
	for _, e := range ents {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || idOf(info) == fl.id {
			continue
		}
		cands = append(cands, cand{filepath.Join(dir, name), info.ModTime()})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mod.After(cands[j].mod) })
	for _, c := range cands {
		if t.readCopy(fl, c.path, h) {
			// Copies made after this one hold generations truncated away before a poll saw them.
			fl.copyMod = max(c.mod.UnixNano(), t.missedGenerations(fl.spec, fl.path, c.mod.UnixNano(), []fingerprint{fl.fp}, h))
			return c.path
		}
	}
	return ""
}

// readCopy delivers the lines of the copy at path after fl's committed offset, if its head
// matches fl's fingerprint.
func (t *Follower) readCopy(fl *file, path string, h Handler) bool {
	f, fi, err := openRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(io.LimitReader(f, maxCompressedCopy))
		if err != nil {
			return false
		}
		r = zr
	} else if fi.Size() < fl.offset {
		return false
	}
	head := make([]byte, fl.fp.Len)
	if _, err := io.ReadFull(r, head); err != nil || sha256.Sum256(head) != fl.fp.Sum {
		return false
	}
	// Skip to the committed offset, then deliver what follows as lines of fl.
	if fl.offset > fl.fp.Len {
		if n, err := io.CopyN(io.Discard, r, fl.offset-fl.fp.Len); err != nil || n != fl.offset-fl.fp.Len {
			return false
		}
	} else {
		r = io.MultiReader(bytes.NewReader(head[fl.offset:]), r)
	}
	fl.partial = fl.partial[:0]
	fl.readPos = fl.offset
	for {
		n, err := r.Read(t.buf)
		if n > 0 {
			t.consume(fl, t.buf[:n], h)
		}
		if err != nil {
			break
		}
	}
	t.flushPartial(fl, h)
	return true
}

// maxCompressedCopy bounds the bytes of a .gz copy read (a bomb guard; copies are log files).
const maxCompressedCopy = 1 << 30

// read delivers the complete lines between readPos and the end of the file.
func (t *Follower) read(fl *file, h Handler) {
	budget := t.opts.maxReadPerPoll
	for budget > 0 {
		n, err := fl.f.ReadAt(t.buf, fl.readPos)
		if n > 0 {
			t.consume(fl, t.buf[:n], h)
			budget -= int64(n)
			t.dirty = true
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.stats.ReadErrors++
			}
			return
		}
	}
}

// consume splits a chunk read at fl.readPos into lines.
func (t *Follower) consume(fl *file, chunk []byte, h Handler) {
	t.stats.Bytes += uint64(len(chunk))
	if fl.headOK && fl.readPos < t.opts.fpBytes && fl.readPos == int64(len(fl.head)) {
		// The fingerprint is made of the bytes read, not read again from the file, which may
		// have been truncated and rewritten since.
		n := min(t.opts.fpBytes-fl.readPos, int64(len(chunk)))
		fl.head = append(fl.head, chunk[:n]...)
		fl.fp = fingerprint{Len: int64(len(fl.head)), Sum: sha256.Sum256(fl.head)}
	}
	max := t.opts.maxLine
	if fl.spec < len(t.specs) && t.specs[fl.spec].MaxLineBytes > 0 {
		max = t.specs[fl.spec].MaxLineBytes
	}
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			fl.readPos += int64(len(chunk))
			if fl.skipping {
				fl.offset = fl.readPos
				return
			}
			room := max - len(fl.partial)
			if len(chunk) <= room {
				fl.partial = append(fl.partial, chunk...)
				return
			}
			// Overlong: deliver its beginning now, skip the rest up to the next newline.
			fl.partial = append(fl.partial, chunk[:room]...)
			t.deliver(fl, h, fl.partial, fl.offset, true)
			fl.partial = fl.partial[:0]
			fl.skipping = true
			fl.offset = fl.readPos
			return
		}
		seg := chunk[:i]
		chunk = chunk[i+1:]
		fl.readPos += int64(i + 1)
		if fl.skipping {
			fl.skipping = false
			fl.offset = fl.readPos
			continue
		}
		start := fl.offset
		line, cut := seg, false
		if len(fl.partial) > 0 {
			room := max - len(fl.partial)
			if len(seg) > room {
				seg, cut = seg[:room], true
			}
			fl.partial = append(fl.partial, seg...)
			line = fl.partial
		} else if len(seg) > max {
			line, cut = seg[:max], true
		}
		fl.offset = fl.readPos
		t.deliver(fl, h, line, start, cut)
		fl.partial = fl.partial[:0]
	}
}

// flushPartial delivers a last line without a newline (the file will not grow any more).
func (t *Follower) flushPartial(fl *file, h Handler) {
	if len(fl.partial) == 0 {
		return
	}
	start := fl.offset
	fl.offset = fl.readPos
	t.deliver(fl, h, fl.partial, start, false)
	fl.partial = fl.partial[:0]
	t.dirty = true
}

func (t *Follower) deliver(fl *file, h Handler, line []byte, off int64, cut bool) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	// A writer without O_APPEND keeps its offset after copytruncate and leaves a hole of NULs.
	line = bytes.TrimLeft(line, "\x00")
	t.stats.Lines++
	if cut {
		t.stats.CutLines++
	}
	h.Line(Line{Spec: fl.spec, Path: fl.path, Data: line, Offset: off, Cut: cut})
}

func (t *Follower) notice(h Handler, n Notice) {
	if n.Kind == NoticeLost {
		t.stats.LostNotices++
	}
	n.Time = t.opts.now()
	h.Notice(n)
}

// extendFingerprint grows the fingerprint of a file not read from its start (started at its end,
// resumed from state) up to FingerprintBytes, when its known prefix still matches.
func (t *Follower) extendFingerprint(fl *file) {
	head := make([]byte, t.opts.fpBytes)
	m, _ := fl.f.ReadAt(head, 0)
	head = head[:m]
	if int64(m) <= fl.fp.Len {
		return
	}
	if fl.fp.Len > 0 && sha256.Sum256(head[:fl.fp.Len]) != fl.fp.Sum {
		return // rewritten: the next poll sees the truncation
	}
	fl.fp = fingerprint{Len: int64(m), Sum: sha256.Sum256(head)}
	t.dirty = true
}

// matches reports whether f's head still hashes to fp.
func (t *Follower) matches(f *os.File, fp fingerprint) bool { return fileMatches(f, fp) }

func fileMatches(f *os.File, fp fingerprint) bool {
	if fp.Len == 0 {
		return true
	}
	head := make([]byte, fp.Len)
	n, _ := f.ReadAt(head, 0)
	return int64(n) == fp.Len && sha256.Sum256(head) == fp.Sum
}

func endsWithNewline(f *os.File, size int64) bool {
	var b [1]byte
	n, _ := f.ReadAt(b[:], size-1)
	return n == 1 && b[0] == '\n'
}

// openRegular opens path for reading without following it into a FIFO or device (O_NONBLOCK
// keeps a FIFO from blocking the open; the type is checked on the descriptor).
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	return f, fi, nil
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(st.Dev), Ino: st.Ino}
	}
	return fileID{}
}

// maxClosed is how many closed files' fingerprints are remembered.
const maxClosed = 64

func (t *Follower) closeFile(fl *file) {
	t.remember(fl.fp)
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

func (t *Follower) closeAll() {
	for _, fl := range t.files {
		t.closeFile(fl)
	}
	for _, fl := range t.draining {
		t.closeFile(fl)
	}
	t.files = map[string]*file{}
	t.order = nil
	t.draining = nil
}
