package appcontrol

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/host/fanotify"
	"mamori/internal/host/hostfs"
)

// Mode is what the enforcer does with a file not on the list.
type Mode string

const (
	// ModeLog reports it and lets it run.
	ModeLog Mode = "log"
	// ModeBlock denies the exec (or the interpreter's open) with EPERM.
	ModeBlock Mode = "block"
)

// ParseMode checks a configured mode.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeLog, ModeBlock:
		return Mode(s), nil
	}
	return "", fmt.Errorf("appcontrol: mode %q: want log or block", s)
}

// Actions of a Decision.
const (
	ActionLogged = "logged"
	ActionDenied = "denied"
	// ActionLearned: maintenance mode added the file to the list.
	ActionLearned = "learned"
)

// Decision is one reported application control decision.
type Decision struct {
	Time time.Time `json:"time"`
	// Access is "exec" (execve), "script" (an interpreter opening a
	// script), "library" (a shared object opened) or "loader" (the dynamic
	// loader opening an executable: ld.so ./prog).
	Access string `json:"access"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
	Kind   Kind   `json:"kind,omitempty"`
	Size   int64  `json:"size"`
	PID    int32  `json:"pid"`
	Exe    string `json:"exe,omitempty"`
	Action string `json:"action"`
	// Reason says why: "not on the allow-list", "larger than N bytes:
	// not verified".
	Reason string `json:"reason,omitempty"`
}

// interpreterRE matches the executables that run scripts they open by
// name (the basename of /proc/PID/exe).
var interpreterRE = regexp.MustCompile(`^(sh|bash|dash|zsh|ksh|ksh93|mksh|ash|busybox|fish|tcsh|csh|` +
	`python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|` +
	`awk|gawk|mawk|nawk|Rscript|osascript)$`)

// loaderRE matches the dynamic loader, which opens an executable (not
// execs it) when run as "ld.so ./prog".
var loaderRE = regexp.MustCompile(`^ld(-linux[-a-z0-9_.]*|-musl-[a-z0-9_]+)?\.so(\.[0-9]+)*$`)

func isInterpreter(exe string) bool {
	return interpreterRE.MatchString(path.Base(strings.TrimSuffix(exe, " (deleted)")))
}

func isLoader(exe string) bool {
	return loaderRE.MatchString(path.Base(strings.TrimSuffix(exe, " (deleted)")))
}

// fileInfo is what the enforcer caches per file identity and change: its
// kind and, once computed, its digest. Caching the digest rather than the
// verdict makes list edits take effect at once.
type fileInfo struct {
	content  bool // executable content (Classify)
	kind     Kind
	hashed   bool
	sum      [32]byte
	tooLarge bool
	reported bool
}

// Enforcer is the fanotify handler of application control.
type Enforcer struct {
	list        atomic.Pointer[List]
	mode        Mode
	maintOn     atomic.Bool
	maintUntil  atomic.Int64
	scripts     bool
	libraries   bool
	maxSize     int64
	cache       *hostfs.Cache[fileInfo]
	report      func(Decision)
	log         *slog.Logger
	hashed      atomic.Uint64
	allowed     atomic.Uint64
	unknown     atomic.Uint64
	learned     atomic.Uint64
	incomplete  atomic.Uint64
	ignoredOpen atomic.Uint64
}

var (
	_ fanotify.Handler      = (*Enforcer)(nil)
	_ fanotify.QuickDecider = (*Enforcer)(nil)
)

// EnforcerOption configures an Enforcer.
type EnforcerOption func(*Enforcer) error

// WithScripts turns on (default) or off the check of scripts opened by an
// interpreter (sh script.sh, python3 x.py: FAN_OPEN_PERM by an
// interpreter's process).
func WithScripts(on bool) EnforcerOption {
	return func(e *Enforcer) error { e.scripts = on; return nil }
}

// WithLibraries turns on (default) or off the check of shared objects
// opened by any process (the dynamic loader maps libraries with open(2),
// not exec).
func WithLibraries(on bool) EnforcerOption {
	return func(e *Enforcer) error { e.libraries = on; return nil }
}

// WithMaxFileSize caps the files hashed; larger ones are "not verified"
// and treated as not on the list.
func WithMaxFileSize(n int64) EnforcerOption {
	return func(e *Enforcer) error {
		if n <= 0 {
			return fmt.Errorf("appcontrol: max file size %d must be positive", n)
		}
		e.maxSize = n
		return nil
	}
}

// WithCacheSize bounds the cache of file digests.
func WithCacheSize(n int) EnforcerOption {
	return func(e *Enforcer) error {
		if n < 1 {
			return fmt.Errorf("appcontrol: cache size %d must be positive", n)
		}
		e.cache = hostfs.NewCache[fileInfo](n)
		return nil
	}
}

// WithReport sets where decisions on files not on the list (and learned
// ones) are reported: once per file content. It is called from the
// listener's workers and must not block for long.
func WithReport(f func(Decision)) EnforcerOption {
	return func(e *Enforcer) error { e.report = f; return nil }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) EnforcerOption {
	return func(e *Enforcer) error {
		if l == nil {
			return fmt.Errorf("appcontrol: nil logger")
		}
		e.log = l
		return nil
	}
}

// NewEnforcer returns the application control handler for list in mode.
func NewEnforcer(list *List, mode Mode, opts ...EnforcerOption) (*Enforcer, error) {
	if list == nil {
		return nil, fmt.Errorf("appcontrol: nil list")
	}
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, err
	}
	e := &Enforcer{mode: mode, scripts: true, libraries: true, maxSize: DefaultMaxFileSize,
		cache: hostfs.NewCache[fileInfo](0), report: func(Decision) {}, log: slog.Default()}
	e.list.Store(list)
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// SetList replaces the allow-list (an import from the server); it takes
// effect at the next decision.
func (e *Enforcer) SetList(l *List) {
	if l != nil {
		e.list.Store(l)
	}
}

// List is the allow-list in use (maintenance mode adds to it).
func (e *Enforcer) List() *List { return e.list.Load() }

// SetMaintenance turns maintenance mode on or off: while on, files not on
// the list are allowed and added to it (planned software changes).
func (e *Enforcer) SetMaintenance(on bool) {
	e.maintOn.Store(on)
	if !on {
		e.maintUntil.Store(0)
	}
}

// MaintenanceFor turns maintenance mode on for d (it ends by itself).
func (e *Enforcer) MaintenanceFor(d time.Duration) {
	e.maintUntil.Store(time.Now().Add(d).UnixNano())
}

// Maintenance reports whether maintenance mode is on.
func (e *Enforcer) Maintenance() bool {
	return e.maintOn.Load() || time.Now().UnixNano() < e.maintUntil.Load()
}

// Mask is what the enforcer needs marked: execs, and opens when scripts
// or libraries are checked.
func (e *Enforcer) Mask() uint64 {
	m := uint64(fanotify.OpenExecPerm)
	if e.scripts || e.libraries {
		m |= fanotify.OpenPerm
	}
	return m
}

// Mark is a place the enforcer watches (fanotify.MarkMount by default).
type Mark struct {
	Path string
	Kind fanotify.MarkKind
}

// Listen creates a fanotify listener with the marks for the enforcer's mask.
func (e *Enforcer) Listen(marks []Mark, lopts ...fanotify.Option) (*fanotify.Listener, error) {
	if len(marks) == 0 {
		return nil, fmt.Errorf("appcontrol: at least one mark is needed")
	}
	l, err := fanotify.New(lopts...)
	if err != nil {
		return nil, fmt.Errorf("appcontrol: %w", err)
	}
	for _, m := range marks {
		kind := m.Kind
		if kind == fanotify.MarkInode {
			kind = fanotify.MarkMount
		}
		if err := l.Mark(kind, m.Path, e.Mask()); err != nil {
			_ = l.Close() // the mark error is reported
			return nil, fmt.Errorf("appcontrol: %w", err)
		}
	}
	return l, nil
}

// Run listens on marks until ctx ends.
func (e *Enforcer) Run(ctx context.Context, marks []Mark, lopts ...fanotify.Option) error {
	l, err := e.Listen(marks, lopts...)
	if err != nil {
		return err
	}
	defer l.Close() // idempotent
	return l.Run(ctx, e)
}

// access says how a (non-exec) open matters for a file of kind, or "" when
// it does not.
func (e *Enforcer) access(exec bool, exe string, kind Kind) string {
	switch {
	case exec:
		return "exec"
	case e.libraries && kind == KindLibrary:
		return "library"
	case e.scripts && kind == KindScript && isInterpreter(exe):
		return "script"
	case kind == KindExecutable && isLoader(exe):
		return "loader"
	}
	return ""
}

// openMayMatter is the cheap pre-check of a non-exec open: without
// libraries checked, only interpreters' and the loader's opens can matter.
func (e *Enforcer) openMayMatter(exe string) bool {
	return e.libraries || (e.scripts && isInterpreter(exe)) || isLoader(exe)
}

// QuickDecide implements fanotify.QuickDecider from the digest cache.
func (e *Enforcer) QuickDecide(ev *fanotify.Event) (fanotify.Verdict, bool) {
	exec := ev.Exec()
	if !exec && !e.openMayMatter(ev.Exe) {
		e.ignoredOpen.Add(1)
		return fanotify.Allow, true
	}
	info, ok := e.cache.Get(&ev.Stat)
	if !ok {
		return 0, false
	}
	if !exec && (!info.content || e.access(false, ev.Exe, info.kind) == "") {
		e.ignoredOpen.Add(1)
		return fanotify.Allow, true
	}
	if info.tooLarge && info.reported && !e.Maintenance() {
		e.unknown.Add(1)
		return e.verdict(), true
	}
	if !info.hashed {
		return 0, false
	}
	if e.list.Load().Allowed(info.sum) {
		e.allowed.Add(1)
		return fanotify.Allow, true
	}
	if e.Maintenance() || !info.reported {
		return 0, false // learn or report in Decide
	}
	e.unknown.Add(1)
	return e.verdict(), true
}

func (e *Enforcer) verdict() fanotify.Verdict {
	if e.mode == ModeBlock {
		return fanotify.Deny
	}
	return fanotify.Allow
}

// Decide implements fanotify.Handler.
func (e *Enforcer) Decide(ctx context.Context, ev *fanotify.Event) fanotify.Verdict {
	exec := ev.Exec()
	if !exec && !e.openMayMatter(ev.Exe) {
		e.ignoredOpen.Add(1)
		return fanotify.Allow
	}
	f := ev.File()
	st := ev.Stat
	p, err := ev.Path()
	if err != nil {
		p = ""
	}
	p = strings.TrimSuffix(p, " (deleted)")
	info, cached := e.cache.Get(&st)
	if !cached {
		info.kind, info.content = Classify(f, st.Size, p, st.Mode)
		if exec && !info.content {
			info.kind, info.content = KindExecutable, true
		}
	}
	access := e.access(exec, ev.Exe, info.kind)
	if access == "" {
		if !cached {
			e.cache.Put(&st, info)
		}
		e.ignoredOpen.Add(1)
		return fanotify.Allow
	}
	d := Decision{Time: time.Now().UTC(), Access: access, Path: p, Kind: info.kind, Size: st.Size, PID: ev.PID, Exe: ev.Exe}
	if !info.hashed {
		if st.Size > e.maxSize {
			if e.Maintenance() {
				e.log.Warn("appcontrol: maintenance mode cannot learn a file over the size cap; allowed", "path", p, "size", st.Size)
				return fanotify.Allow
			}
			info.tooLarge = true
			return e.unknownFile(ev, &st, info, d, fmt.Sprintf("larger than %d bytes: not verified", e.maxSize))
		}
		sum, _, err := digests(ctx, f, st.Size, nil, nil)
		if err != nil {
			e.incomplete.Add(1)
			e.log.Warn("appcontrol: could not hash in time; allowed", "path", p, "pid", ev.PID, "err", err)
			return fanotify.Allow
		}
		e.hashed.Add(1)
		info.sum, info.hashed = sum, true
		var after unix.Stat_t
		if err := unix.Fstat(ev.Fd(), &after); err == nil && sameChange(&st, &after) {
			e.cache.Put(&st, info)
		}
	}
	d.SHA256 = hex.EncodeToString(info.sum[:])
	list := e.list.Load()
	if list.Allowed(info.sum) {
		e.allowed.Add(1)
		return fanotify.Allow
	}
	if e.Maintenance() {
		if err := list.Add(Entry{SHA256: d.SHA256, Path: p, Kind: info.kind, Source: SourceMaintenance}); err != nil {
			e.log.Error("appcontrol: maintenance mode could not learn a file; allowed", "path", p, "err", err)
		} else {
			e.learned.Add(1)
			d.Action = ActionLearned
			e.report(d)
		}
		return fanotify.Allow
	}
	return e.unknownFile(ev, &st, info, d, "not on the allow-list")
}

func sameChange(a, b *unix.Stat_t) bool {
	ida, cha := hostfs.IdentityOf(a)
	idb, chb := hostfs.IdentityOf(b)
	return ida == idb && cha == chb
}

// unknownFile reports (once per file content) and decides a file not on
// the list.
func (e *Enforcer) unknownFile(ev *fanotify.Event, st *unix.Stat_t, info fileInfo, d Decision, reason string) fanotify.Verdict {
	e.unknown.Add(1)
	v := e.verdict()
	if !info.reported {
		d.Reason = reason
		d.Action = ActionLogged
		if v == fanotify.Deny {
			d.Action = ActionDenied
		}
		e.report(d)
		info.reported = true
		if info.hashed || info.tooLarge {
			e.cache.Put(st, info)
		}
	}
	return v
}

// EnforcerStats counts decisions.
type EnforcerStats struct {
	// Hashed: files hashed (cache misses). Allowed: decisions for files on
	// the list. Unknown: decisions for files not on it. Learned: added in
	// maintenance mode. Incomplete: could not hash in time (allowed).
	// IgnoredOpens: opens that did not need a decision.
	Hashed, Allowed, Unknown, Learned, Incomplete, IgnoredOpens uint64
	Cache                                                       hostfs.CacheStats
}

// Stats returns the enforcer's counters.
func (e *Enforcer) Stats() EnforcerStats {
	return EnforcerStats{Hashed: e.hashed.Load(), Allowed: e.allowed.Load(), Unknown: e.unknown.Load(),
		Learned: e.learned.Load(), Incomplete: e.incomplete.Load(), IgnoredOpens: e.ignoredOpen.Load(), Cache: e.cache.Stats()}
}
