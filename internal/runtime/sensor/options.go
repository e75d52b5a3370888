package sensor

import (
	"fmt"
	"log/slog"
	"strings"

	"mamori/internal/runtime/event"
)

// Mode says how the sensor observes the system.
type Mode string

const (
	// ModeAuto: eBPF when the kernel accepts the programs, else fallback.
	ModeAuto Mode = "auto"
	// ModeEBPF: the CO-RE programs of bpf/sensor.bpf.c (every kind).
	ModeEBPF Mode = "ebpf"
	// ModeFallback: the netlink proc connector (CN_PROC) and fanotify:
	// exec, fork, exit, setuid, setgid, ptrace, open, write and load only
	// (docs/runtime-sensor.md lists what rules still work).
	ModeFallback Mode = "fallback"
)

// ParseMode reads a --sensor flag value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeAuto, ModeEBPF, ModeFallback:
		return m, nil
	case "":
		return ModeAuto, nil
	}
	return "", fmt.Errorf("sensor: unknown mode %q (want auto, ebpf or fallback)", event.Sanitize(s, 32))
}

// SyscallHooks says how the eBPF sensor hooks system calls.
type SyscallHooks string

const (
	// HooksAuto: tracepoint where it loses nothing (the kernel runs no
	// 32-bit code and has a tracepoint for every call the enabled kinds
	// need), else raw.
	HooksAuto SyscallHooks = "auto"
	// HooksRaw: the raw sys_exit tracepoint (tp_btf): a program runs at the
	// exit of every system call of every task, returning after a table
	// load for the calls no enabled kind needs. Sees 32-bit (ia32, int
	// 0x80) calls too.
	HooksRaw SyscallHooks = "raw"
	// HooksTracepoint: the syscalls:sys_exit_<name> tracepoints of the
	// calls the enabled kinds need, nothing on the others (about half the
	// cost per unrelated call of raw). Needs tracefs (mounted at
	// /sys/kernel/tracing when absent). Blind to 32-bit (ia32) system
	// calls, which these tracepoints skip: a process can evade the sensor
	// with int 0x80 where the kernel runs 32-bit code.
	HooksTracepoint SyscallHooks = "tracepoint"
)

// ParseSyscallHooks reads a --syscall-hooks value.
func ParseSyscallHooks(s string) (SyscallHooks, error) {
	switch h := SyscallHooks(strings.ToLower(strings.TrimSpace(s))); h {
	case HooksAuto, HooksRaw, HooksTracepoint:
		return h, nil
	case "":
		return HooksAuto, nil
	}
	return "", fmt.Errorf("sensor: unknown system call hooks %q (want auto, raw or tracepoint)", event.Sanitize(s, 32))
}

// fallbackKinds are the kinds the fallback (CN_PROC + fanotify) reports.
var fallbackKinds = []event.Kind{
	event.KindExec, event.KindFork, event.KindExit, event.KindSetuid, event.KindSetgid, event.KindPtrace,
	event.KindOpen, event.KindWrite, event.KindLoad,
}

// Defaults.
const (
	// DefaultRingBufferSize holds about 30,000 typical records (a file
	// event is ~250 bytes): 0.3 s of a 100,000 events/s burst while the
	// reader is descheduled on a busy 2-core node.
	DefaultRingBufferSize = 8 << 20
	// minRingBufferSize is one page: the kernel's minimum.
	minRingBufferSize = 4096
	// maxPrefixes bounds the kernel's prefix trie (its max_entries).
	maxPrefixes = 256
	// maxPrefixLen is the part of a prefix the kernel compares (LPM_BYTES).
	maxPrefixLen = 256
)

// Values of the cgroup filter map (CG_INCLUDE, CG_EXCLUDE in
// bpf/sensor.bpf.c), also used by the fallback.
const (
	cgInclude = 1
	cgExclude = 2
)

// DefaultWatchPrefixes are the file-event path prefixes watched when no
// WithPathPrefixes is given: where the built-in rules look (credentials,
// persistence, binaries, logs, temporary and in-memory directories, kernel
// and cgroup control files, runtime sockets).
var DefaultWatchPrefixes = []string{
	"/etc/", "/root/", "/home/", "/run/", "/var/run/", "/var/spool/cron/", "/var/log/",
	"/tmp/", "/var/tmp/", "/dev/shm/", "/proc/sys/", "/sys/fs/cgroup/", "/sys/kernel/",
	"/boot/", "/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/",
	"/lib/systemd/", "/usr/lib/systemd/", "/var/lib/kubelet/",
}

// DefaultExcludePrefixes are never reported as file events (the dynamic
// loader's cache is opened by every exec).
var DefaultExcludePrefixes = []string{"/etc/ld.so.cache"}

// Option configures New.
type Option func(*options) error

type options struct {
	mode          Mode
	kinds         map[event.Kind]bool
	include       []string // path prefixes; nil = defaults
	exclude       []string
	allPaths      bool
	cgInclude     []uint64
	cgExclude     []uint64
	ringSize      int
	excludeSelf   bool
	log           *slog.Logger
	fallbackMarks []string // fallback: paths whose file systems fanotify marks
	hooks         SyscallHooks
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		mode:        ModeAuto,
		hooks:       HooksAuto,
		ringSize:    DefaultRingBufferSize,
		excludeSelf: true,
		log:         slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.kinds == nil {
		o.kinds = map[event.Kind]bool{}
		for _, k := range event.Kinds {
			o.kinds[k] = true
		}
	}
	if o.include == nil && !o.allPaths {
		o.include = DefaultWatchPrefixes
		if o.exclude == nil {
			o.exclude = DefaultExcludePrefixes
		}
	}
	if len(o.include)+len(o.exclude) > maxPrefixes {
		return nil, fmt.Errorf("sensor: %d path prefixes, at most %d", len(o.include)+len(o.exclude), maxPrefixes)
	}
	return o, nil
}

// WithMode selects eBPF, the fallback, or auto (the default).
func WithMode(m Mode) Option {
	return func(o *options) error {
		if _, err := ParseMode(string(m)); err != nil {
			return err
		}
		o.mode = m
		return nil
	}
}

// WithSyscallHooks chooses how system calls are hooked in eBPF mode
// (default HooksAuto). Sensor.SyscallHooks says which is in use.
func WithSyscallHooks(h SyscallHooks) Option {
	return func(o *options) error {
		if _, err := ParseSyscallHooks(string(h)); err != nil {
			return err
		}
		o.hooks = h
		return nil
	}
}

// WithKinds reports only these kinds (default: every kind). The kernel
// drops the others before they cost a record.
func WithKinds(kinds ...event.Kind) Option {
	return func(o *options) error {
		o.kinds = map[event.Kind]bool{}
		for _, k := range kinds {
			if _, err := event.ParseKind(string(k)); err != nil {
				return fmt.Errorf("sensor: %w", err)
			}
			o.kinds[k] = true
		}
		return nil
	}
}

// WithPathPrefixes sets the path prefixes file events (open, write,
// rename, unlink, chmod) are reported for: a path is reported when its
// longest matching prefix is in include and not in exclude. A prefix is
// compared byte by byte ("/etc/" for the directory, "/etc/shadow" for the
// file and "/etc/shadow-"). Load events are not filtered by path.
func WithPathPrefixes(include, exclude []string) Option {
	return func(o *options) error {
		for _, p := range append(append([]string{}, include...), exclude...) {
			if p == "" || p[0] != '/' {
				return fmt.Errorf("sensor: path prefix %s is not absolute", event.Quote(p, 256))
			}
			if len(p) > maxPrefixLen {
				return fmt.Errorf("sensor: path prefix %s is longer than %d bytes", event.Quote(p, 64), maxPrefixLen)
			}
		}
		o.include = append([]string{}, include...)
		o.exclude = append([]string{}, exclude...)
		o.allPaths = false
		return nil
	}
}

// WithAllPaths reports file events for every path (no prefix filter).
func WithAllPaths() Option {
	return func(o *options) error {
		o.allPaths = true
		o.include, o.exclude = nil, nil
		return nil
	}
}

// WithCgroups reports only processes in these cgroup v2 ids (include) and
// never those in exclude (the agent's own cgroup, for instance). An empty
// include means every cgroup.
func WithCgroups(include, exclude []uint64) Option {
	return func(o *options) error {
		o.cgInclude = append([]uint64{}, include...)
		o.cgExclude = append([]uint64{}, exclude...)
		return nil
	}
}

// WithRingBufferSize sets the kernel ring buffer size in bytes (a power
// of two, at least 4096). Records that do not fit are counted as lost.
func WithRingBufferSize(n int) Option {
	return func(o *options) error {
		if n < minRingBufferSize || n&(n-1) != 0 {
			return fmt.Errorf("sensor: ring buffer size %d is not a power of two >= %d", n, minRingBufferSize)
		}
		o.ringSize = n
		return nil
	}
}

// WithSelf reports the sensor's own process too (default: never, so the
// agent does not observe itself reading /proc and the ring buffer).
func WithSelf(report bool) Option {
	return func(o *options) error {
		o.excludeSelf = !report
		return nil
	}
}

// WithLogger sets where the sensor logs (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("sensor: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithFallbackMarks sets the paths whose file systems the fallback's
// fanotify marks (default: the include prefixes that exist, and "/").
func WithFallbackMarks(paths ...string) Option {
	return func(o *options) error {
		o.fallbackMarks = append([]string{}, paths...)
		return nil
	}
}

// pathFilter is the user-space copy of the kernel's prefix filter, for
// paths the kernel let through unnormalized and for the fallback.
type pathFilter struct {
	all              bool
	include, exclude []string
}

func newPathFilter(o *options) pathFilter {
	return pathFilter{all: o.allPaths, include: o.include, exclude: o.exclude}
}

// match mirrors the longest-prefix match of the kernel trie.
func (f pathFilter) match(p string) bool {
	if f.all {
		return true
	}
	if len(p) > maxPrefixLen {
		p = p[:maxPrefixLen]
	}
	best, inc := -1, false
	for _, pre := range f.include {
		if len(pre) > best && strings.HasPrefix(p, pre) {
			best, inc = len(pre), true
		}
	}
	for _, pre := range f.exclude {
		if len(pre) >= best && strings.HasPrefix(p, pre) {
			best, inc = len(pre), false
		}
	}
	return inc
}
