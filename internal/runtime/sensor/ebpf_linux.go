//go:build linux && amd64

package sensor

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"mamori/internal/runtime/event"
)

// Go generate runs scripts/bpf-generate.sh (clang + bpf2go); its outputs
// bpf_x86_bpfel.{go,o} are committed.
//go:generate ../../../scripts/bpf-generate.sh

// Values of the prefix map and stats slots (bpf/sensor.bpf.c).
const (
	pfxInclude = 1
	pfxExclude = 2
	stSlots    = numKinds + 1
	stPathTrnc = numKinds
)

// pollInterval is how long a record may wait in the ring buffer when too
// few are waiting to wake the reader (the kernel wakes it once 1/16 of the
// ring is full): the detection latency floor, against a context switch per
// event under load.
const pollInterval = 50 * time.Millisecond

// ebpfObjects are the loaded maps and programs: of the two system call
// exit programs only the one of the chosen hooks is loaded (sysExit).
type ebpfObjects struct {
	bpfMaps
	HandleExec *ebpf.Program `ebpf:"handle_exec"`
	HandleFork *ebpf.Program `ebpf:"handle_fork"`
	HandleExit *ebpf.Program `ebpf:"handle_exit"`
	sysExit    *ebpf.Program
}

func (o *ebpfObjects) close() error {
	return errors.Join(o.bpfMaps.Close(), closeProgs(o.HandleExec, o.HandleFork, o.HandleExit, o.sysExit))
}

func closeProgs(ps ...*ebpf.Program) error {
	var errs []error
	for _, p := range ps {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

type ebpfBackend struct {
	objs  ebpfObjects
	links []link.Link
	rd    *ringbuf.Reader
	c     *counters
	boot  time.Time
	log   interface {
		Warn(string, ...any)
		Info(string, ...any)
	}
	hooks        SyscallHooks
	unseen       map[event.Kind]bool // kinds the tracepoint hooks cannot report here
	tracefs      string              // the tracefs the tracepoint hooks were found in
	mountedTrace bool                // this sensor mounted it (unmounted at close)
}

func (b *ebpfBackend) syscallHooks() SyscallHooks { return b.hooks }

var _ backend = (*ebpfBackend)(nil)

// startEBPF loads and attaches the programs. Any refusal (no BTF, verifier,
// permissions) is returned wrapped in ErrNotSupported with the kernel's
// reason, so auto mode can fall back.
func startEBPF(o *options, c *counters) (backend, error) {
	b, err := newEBPF(o, c)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func newEBPF(o *options, c *counters) (*ebpfBackend, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("%w: kernel BTF: %w", ErrNotSupported, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: memlock rlimit: %w", ErrNotSupported, err)
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("sensor: BPF object: %w", err)
	}
	spec.Maps[bpfMapEvents].MaxEntries = uint32(o.ringSize)
	if err := spec.Variables["wakeup_bytes"].Set(uint64(o.ringSize / 16)); err != nil {
		return nil, fmt.Errorf("sensor: BPF object: wakeup threshold: %w", err)
	}
	if err := spec.Variables["sys_native"].Set(syscallTable(syscallsAMD64, o.kinds)); err != nil {
		return nil, fmt.Errorf("sensor: BPF object: system call table: %w", err)
	}
	if err := spec.Variables["sys_compat"].Set(syscallTable(syscalls386, o.kinds)); err != nil {
		return nil, fmt.Errorf("sensor: BPF object: compat system call table: %w", err)
	}
	b := &ebpfBackend{c: c, log: o.log}
	defer func() {
		if b.mountedTrace && b.rd == nil { // failed before the end
			b.unmountTracefs()
		}
	}()
	b.hooks = b.chooseHooks(o)
	keep, drop := bpfProgSysExit, bpfProgSysExitTp
	if b.hooks == HooksTracepoint {
		keep, drop = drop, keep
	}
	delete(spec.Programs, drop)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			tail := ve.Log
			if len(tail) > 8 {
				tail = tail[len(tail)-8:]
			}
			return nil, fmt.Errorf("%w: load BPF programs: %w (verifier: %s)", ErrNotSupported, err, strings.Join(tail, " | "))
		}
		return nil, fmt.Errorf("%w: load BPF programs: %w", ErrNotSupported, err)
	}
	b.objs.sysExit = coll.DetachProgram(keep)
	err = coll.Assign(&b.objs)
	coll.Close()
	if err != nil {
		b.close()
		return nil, fmt.Errorf("sensor: BPF objects: %w", err)
	}
	boot, err := bootTime()
	if err != nil {
		b.close()
		return nil, err
	}
	b.boot = boot
	if err := b.configure(o); err != nil {
		b.close()
		return nil, err
	}
	if err := b.attach(o); err != nil {
		b.close()
		return nil, err
	}
	if b.rd, err = ringbuf.NewReader(b.objs.Events); err != nil {
		b.close()
		return nil, fmt.Errorf("sensor: ring buffer reader: %w", err)
	}
	return b, nil
}

// configure writes the filters: kinds, self, cgroups, prefixes and the
// system call tables.
func (b *ebpfBackend) configure(o *options) error {
	cfg := bpfSensorConfig{PrefixMode: 1}
	for k, on := range o.kinds {
		if code := kindCode(k); on && code > 0 {
			cfg.Kinds |= 1 << uint(code)
		}
	}
	if o.excludeSelf {
		cfg.SelfTgid = uint32(os.Getpid())
	}
	if o.allPaths {
		cfg.PrefixMode = 0
	}
	if len(o.cgInclude) > 0 {
		cfg.CgroupMode = 1
	}
	if len(o.cgInclude)+len(o.cgExclude) > 0 {
		cfg.CgroupFilter = 1
	}
	for _, id := range o.cgInclude {
		if err := b.objs.Cgroups.Put(id, uint8(cgInclude)); err != nil {
			return fmt.Errorf("sensor: cgroup filter: %w", err)
		}
	}
	for _, id := range o.cgExclude {
		if err := b.objs.Cgroups.Put(id, uint8(cgExclude)); err != nil {
			return fmt.Errorf("sensor: cgroup filter: %w", err)
		}
	}
	put := func(p string, v uint8) error {
		var k bpfLpmKey
		n := copy(k.Data[:], p)
		k.Prefixlen = uint32(n * 8)
		if err := b.objs.Prefixes.Put(&k, v); err != nil {
			return fmt.Errorf("sensor: path prefix %s: %w", event.Quote(p, 64), err)
		}
		return nil
	}
	for _, p := range o.include {
		if err := put(p, pfxInclude); err != nil {
			return err
		}
	}
	for _, p := range o.exclude {
		if err := put(p, pfxExclude); err != nil {
			return err
		}
	}
	if err := b.objs.ConfigMap.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("sensor: config: %w", err)
	}
	return nil
}

// attach links the programs the enabled kinds need.
func (b *ebpfBackend) attach(o *options) error {
	on := func(ks ...event.Kind) bool {
		for _, k := range ks {
			if o.kinds[k] {
				return true
			}
		}
		return false
	}
	syscallKinds := false
	for _, k := range event.Kinds {
		if o.kinds[k] && !k.IsProcess() && k != event.KindLoad {
			syscallKinds = true
		}
	}
	progs := []struct {
		name string
		p    *ebpf.Program
		want bool
	}{
		{"sched_process_exec", b.objs.HandleExec, on(event.KindExec, event.KindLoad)},
		{"sched_process_fork", b.objs.HandleFork, on(event.KindFork)},
		{"sched_process_exit", b.objs.HandleExit, on(event.KindExit)},
		{"sys_exit", b.objs.sysExit, b.hooks == HooksRaw && (syscallKinds || on(event.KindLoad))},
	}
	for _, p := range progs {
		if !p.want {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: p.p})
		if err != nil {
			return fmt.Errorf("%w: attach tp_btf/%s: %w", ErrNotSupported, p.name, err)
		}
		b.links = append(b.links, l)
	}
	if b.hooks != HooksTracepoint {
		return nil
	}
	var missing []string
	hooked := map[string]bool{}
	for _, name := range neededSyscalls(o.kinds) {
		ev := "sys_exit_" + name
		if _, err := os.Stat(b.tracefs + "/events/syscalls/" + ev); err != nil {
			missing = append(missing, name)
			continue
		}
		l, err := link.Tracepoint("syscalls", ev, b.objs.sysExit, nil)
		if err != nil {
			return fmt.Errorf("%w: attach tracepoint syscalls/%s: %w", ErrNotSupported, ev, err)
		}
		b.links = append(b.links, l)
		hooked[name] = true
	}
	if len(missing) == 0 {
		return nil
	}
	// A kind none of whose calls has a tracepoint cannot be reported (a
	// kernel without module support has no init_module tracepoint: the
	// call only fails with ENOSYS there).
	b.unseen = map[event.Kind]bool{}
	var lost []string
	for _, k := range event.Kinds {
		if !o.kinds[k] || k.IsProcess() || k == event.KindLoad {
			continue
		}
		if !slices.ContainsFunc(kindSyscalls(k), func(n string) bool { return hooked[n] }) {
			b.unseen[k] = true
			lost = append(lost, string(k))
		}
	}
	b.log.Warn("syscall hooks tracepoint: these system calls have no tracepoint on this kernel and are not observed (syscall hooks raw would see them)",
		"calls", missing, "kindsLost", lost)
	return nil
}

// observes says whether the hooks can report kind k at all.
func (b *ebpfBackend) observes(k event.Kind) bool { return !b.unseen[k] }

// chooseHooks decides the system call hooks: tracepoint when asked, or in
// auto mode when it loses nothing here (no 32-bit code, a tracepoint for
// each needed call); raw otherwise. Tracepoint mode needs tracefs, mounted
// at /sys/kernel/tracing when absent (a privileged, harmless mount, undone
// at Close); without it the hooks are raw.
func (b *ebpfBackend) chooseHooks(o *options) SyscallHooks {
	if o.hooks == HooksRaw {
		return HooksRaw
	}
	if o.hooks == HooksAuto && ia32Enabled(kernelConfig(), readCmdline()) {
		b.log.Info("syscall hooks raw: this kernel runs 32-bit code, which per-call tracepoints do not see")
		return HooksRaw
	}
	dir, mounted, err := ensureTracefs()
	if err != nil {
		b.log.Warn("syscall hooks raw: no tracefs for per-call tracepoints", "error", err)
		return HooksRaw
	}
	b.tracefs, b.mountedTrace = dir, mounted
	if o.hooks == HooksAuto {
		for _, name := range neededSyscalls(o.kinds) {
			if _, err := os.Stat(dir + "/events/syscalls/sys_exit_" + name); err != nil && !optionalSyscalls[name] {
				b.log.Info("syscall hooks raw: a needed system call has no tracepoint", "call", name)
				b.unmountTracefs()
				return HooksRaw
			}
		}
	}
	return HooksTracepoint
}

// optionalSyscalls are calls an older kernel may lack altogether (no
// tracepoint because no call): openat2 (5.6), fchmodat2 (6.6).
var optionalSyscalls = map[string]bool{"openat2": true, "fchmodat2": true}

const tracefsMount = "/sys/kernel/tracing"

// ensureTracefs finds tracefs where cilium/ebpf looks for it, or mounts it
// at /sys/kernel/tracing.
func ensureTracefs() (dir string, mounted bool, err error) {
	for _, d := range []string{tracefsMount, "/sys/kernel/debug/tracing"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
			if _, err := os.Stat(d + "/events/syscalls"); err == nil {
				return d, false, nil
			}
		}
	}
	if err := unix.Mount("tracefs", tracefsMount, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", false, fmt.Errorf("mount tracefs on %s: %w", tracefsMount, err)
	}
	if _, err := os.Stat(tracefsMount + "/events/syscalls"); err != nil {
		unix.Unmount(tracefsMount, unix.MNT_DETACH)
		return "", false, fmt.Errorf("tracefs has no system call events (CONFIG_FTRACE_SYSCALLS): %w", err)
	}
	return tracefsMount, true, nil
}

func (b *ebpfBackend) unmountTracefs() {
	if !b.mountedTrace {
		return
	}
	b.mountedTrace = false
	if err := unix.Unmount(b.tracefs, unix.MNT_DETACH); err != nil {
		b.log.Warn("unmount tracefs", "dir", b.tracefs, "error", err)
	}
}

// kernelConfig returns the running kernel's configuration, or nil.
func kernelConfig() []byte {
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			if b, err := io.ReadAll(io.LimitReader(zr, 4<<20)); err == nil {
				return b
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		if b, err := os.ReadFile("/boot/config-" + unix.ByteSliceToString(u.Release[:])); err == nil {
			return b
		}
	}
	return nil
}

func readCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}

func (b *ebpfBackend) run(ctx context.Context, emit func(*event.Event, recordInfo)) error {
	stop := context.AfterFunc(ctx, func() { b.rd.Close() })
	defer stop()
	var rec ringbuf.Record
	d := newDecoder(b.boot)
	b.rd.SetDeadline(time.Now().Add(pollInterval))
	for {
		if err := b.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				b.rd.SetDeadline(time.Now().Add(pollInterval))
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("sensor: read ring buffer: %w", err)
		}
		e := new(event.Event)
		info, err := d.decode(rec.RawSample, e)
		if err != nil {
			b.c.decode.Add(1)
			continue
		}
		emit(e, info)
	}
}

func (b *ebpfBackend) kernelStats() (emitted, lost map[event.Kind]uint64, pathTrunc uint64, err error) {
	emitted, lost = map[event.Kind]uint64{}, map[event.Kind]uint64{}
	var per []bpfStatCounters
	for slot := uint32(0); slot < uint32(stSlots); slot++ {
		if err := b.objs.Stats.Lookup(slot, &per); err != nil {
			return nil, nil, 0, fmt.Errorf("sensor: read kernel counters: %w", err)
		}
		var e, l uint64
		for _, c := range per {
			e += c.Emitted
			l += c.Lost
		}
		switch {
		case slot == uint32(stPathTrnc):
			pathTrunc = e
		case slot > 0 && int(slot) < numKinds:
			if e > 0 {
				emitted[kindCodes[slot]] = e
			}
			if l > 0 {
				lost[kindCodes[slot]] = l
			}
		}
	}
	return emitted, lost, pathTrunc, nil
}

func (b *ebpfBackend) close() error {
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	b.links = nil
	if b.rd != nil {
		errs = append(errs, b.rd.Close())
	}
	errs = append(errs, b.objs.close())
	b.unmountTracefs()
	return errors.Join(errs...)
}

// bootTime is the wall-clock time the boot-time clock started.
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("sensor: CLOCK_BOOTTIME: %w", err)
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}
