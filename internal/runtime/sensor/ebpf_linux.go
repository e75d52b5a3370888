//go:build linux && amd64

package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	stSlots    = numKinds + 2
	stPathTrnc = numKinds
)

// pollInterval is how long a record may wait in the ring buffer when too
// few are waiting to wake the reader (the kernel wakes it once 1/16 of the
// ring is full): the detection latency floor, against a context switch per
// event under load.
const pollInterval = 50 * time.Millisecond

type ebpfBackend struct {
	objs  bpfObjects
	links []link.Link
	rd    *ringbuf.Reader
	c     *counters
	boot  time.Time
	log   interface{ Warn(string, ...any) }
}

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
	b := &ebpfBackend{c: c, log: o.log}
	if err := spec.LoadAndAssign(&b.objs, nil); err != nil {
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
	for nr, id := range syscallsAMD64 {
		if err := b.objs.Syscalls.Put(nr, uint32(id)); err != nil {
			return fmt.Errorf("sensor: system call table: %w", err)
		}
	}
	for nr, id := range syscalls386 {
		if err := b.objs.SyscallsCompat.Put(nr, uint32(id)); err != nil {
			return fmt.Errorf("sensor: compat system call table: %w", err)
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
		{"sys_enter", b.objs.SysEnter, syscallKinds || on(event.KindLoad)},
		{"sys_exit", b.objs.SysExit, syscallKinds || on(event.KindLoad)},
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
	return nil
}

func (b *ebpfBackend) run(ctx context.Context, emit func(*event.Event, recordInfo)) error {
	stop := context.AfterFunc(ctx, func() { b.rd.Close() })
	defer stop()
	var rec ringbuf.Record
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
		info, err := decodeRecord(rec.RawSample, b.boot, e)
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
	errs = append(errs, b.objs.Close())
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
