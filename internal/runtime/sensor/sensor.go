// Package sensor is the node agent's view of what processes do: exec, fork
// and exit, file, network and privilege events, from CO-RE eBPF programs
// on tp_btf tracepoints (bpf/sensor.bpf.c), or, where the kernel refuses
// BPF, from the netlink proc connector and fanotify (fewer kinds).
//
// Filtering happens in the kernel (enabled kinds, cgroups, path prefixes,
// per-container de-duplication of loaded files), so user space receives
// only what a rule can use. Records the ring buffer has no room for are
// counted per kind and reported by Stats, never silently dropped.
//
//	s, err := sensor.New(sensor.WithKinds(event.KindExec, event.KindConnect))
//	defer s.Close()
//	err = s.Run(ctx, func(e *event.Event) { ... })
package sensor

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"sync/atomic"

	"mamori/internal/runtime/event"
)

// ErrNotSupported is wrapped when the requested mode cannot run on this
// kernel or platform (no BTF, BPF refused, no CN_PROC ...).
var ErrNotSupported = errors.New("sensor: not supported")

// Sensor reports runtime events. Run it once; Close releases the kernel
// objects.
type Sensor struct {
	o       *options
	b       backend
	mode    Mode
	filter  pathFilter
	procs   *procCache
	stats   counters
	running atomic.Bool
	closeMu sync.Mutex
	closed  bool
}

// backend is one way of observing the kernel.
type backend interface {
	// run delivers decoded events to emit until ctx ends or close is called.
	run(ctx context.Context, emit func(*event.Event, recordInfo)) error
	// kernelStats returns the kernel-side counters: emitted and lost per
	// kind, plus paths cut short.
	kernelStats() (emitted, lost map[event.Kind]uint64, pathTrunc uint64, err error)
	close() error
}

// New starts a sensor in the mode of WithMode (auto by default: eBPF, or
// the fallback when the kernel refuses BPF, logged).
func New(opts ...Option) (*Sensor, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &Sensor{o: o, filter: newPathFilter(o), procs: newProcCache("/proc")}
	s.stats.init()
	switch o.mode {
	case ModeEBPF:
		s.b, err = startEBPF(o, &s.stats)
		s.mode = ModeEBPF
	case ModeFallback:
		s.b, err = startFallback(o, &s.stats)
		s.mode = ModeFallback
	default:
		s.b, err = startEBPF(o, &s.stats)
		s.mode = ModeEBPF
		if err != nil {
			o.log.Warn("eBPF sensor unavailable, using the CN_PROC + fanotify fallback", "err", err)
			var ferr error
			s.b, ferr = startFallback(o, &s.stats)
			s.mode = ModeFallback
			if ferr != nil {
				return nil, fmt.Errorf("sensor: eBPF: %w; fallback: %w", err, ferr)
			}
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	if s.mode == ModeFallback {
		var missing []string
		for _, k := range event.Kinds {
			if o.kinds[k] && !slices.Contains(fallbackKinds, k) {
				missing = append(missing, string(k))
			}
		}
		if len(missing) > 0 {
			o.log.Warn("the fallback sensor cannot report some kinds", "kinds", missing)
		}
	}
	o.log.Info("runtime sensor started", "mode", s.mode, "syscallHooks", s.SyscallHooks(), "kinds", len(s.Kinds()))
	return s, nil
}

// Mode says which sensor runs: "ebpf" or "fallback".
func (s *Sensor) Mode() Mode { return s.mode }

// SyscallHooks says how system calls are hooked (eBPF mode: HooksRaw or
// HooksTracepoint); "" in fallback mode.
func (s *Sensor) SyscallHooks() SyscallHooks {
	if h, ok := s.b.(interface{ syscallHooks() SyscallHooks }); ok {
		return h.syscallHooks()
	}
	return ""
}

// Hooks says how the programs attach: "tp_btf" (eBPF, raw system call
// hooks: every program a BTF-enabled tracepoint), "tp_btf+tracepoint"
// (eBPF, system calls on their syscalls:sys_exit_* tracepoints) or
// "cn_proc+fanotify" (the fallback).
func (s *Sensor) Hooks() string {
	switch {
	case s.mode == ModeFallback:
		return "cn_proc+fanotify"
	case s.SyscallHooks() == HooksTracepoint:
		return "tp_btf+tracepoint"
	}
	return "tp_btf"
}

// Kinds lists the kinds this sensor reports: those asked for (WithKinds)
// that its mode can observe (the fallback sees fewer; the tracepoint hooks
// miss a kind none of whose system calls has a tracepoint on this kernel).
// Rules over other kinds cannot fire.
func (s *Sensor) Kinds() []event.Kind {
	obs, _ := s.b.(interface{ observes(event.Kind) bool })
	var out []event.Kind
	for _, k := range event.Kinds {
		if !s.o.kinds[k] {
			continue
		}
		if s.mode == ModeFallback && !slices.Contains(fallbackKinds, k) {
			continue
		}
		if obs != nil && !obs.observes(k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// Run calls fn for each event, in the order the reader receives them, until
// ctx ends (then it returns nil) or the sensor fails. fn runs on Run's
// goroutine: while it runs, the kernel buffers (and, when full, counts
// lost records). The event is fn's to keep. Run may be called once.
func (s *Sensor) Run(ctx context.Context, fn func(*event.Event)) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sensor: Run called twice")
	}
	return s.b.run(ctx, func(e *event.Event, info recordInfo) { s.deliver(e, info, fn) })
}

// deliver completes a decoded event and hands it to fn (the per-event path
// of Run after decoding; BenchmarkDeliver).
func (s *Sensor) deliver(e *event.Event, info recordInfo, fn func(*event.Event)) {
	if info.unnormalized() && e.Kind.IsFile() {
		// The kernel let a path with ".." through: clean it and apply
		// the prefix filter the kernel could not.
		e.File.Path = cleanPath(e.File.Path)
		if e.File.NewPath != "" {
			e.File.NewPath = cleanPath(e.File.NewPath)
		}
		if !s.filter.match(e.File.Path) && (e.File.NewPath == "" || !s.filter.match(e.File.NewPath)) {
			s.stats.filtered.Add(1)
			return
		}
	}
	s.procs.observe(e)
	s.stats.received(e.Kind)
	fn(e)
}

// Events is Run with a channel: events are sent on the returned channel
// (buffered, size buf) until ctx ends; the error channel then receives
// Run's result. A consumer slower than the kernel makes the kernel drop
// records (counted), not this function.
func (s *Sensor) Events(ctx context.Context, buf int) (<-chan *event.Event, <-chan error) {
	ch := make(chan *event.Event, buf)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- s.Run(ctx, func(e *event.Event) {
			select {
			case ch <- e:
			case <-ctx.Done():
			}
		})
	}()
	return ch, errc
}

// Close detaches the programs and frees the kernel objects. Run returns
// once the sensor is closed.
func (s *Sensor) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.b.close()
}

func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return path.Clean(p)
}
