package agent

import (
	"context"
	"os"
	"testing"

	"mamori/internal/model"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/drift"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
)

// BenchmarkProcess: one event of bench/runtime.sh's mix (60% opens of a
// watched path, 30% execs, 10% connects), host processes, through the rules
// worker's whole path (attribution, process and writer tables, stdio kinds
// read from /proc on exec, the 56 built-in rules); the sensor's decoding
// is measured by internal/runtime/sensor's benchmarks.
func BenchmarkProcess(b *testing.B) {
	cfg := Defaults().Modules.Runtime
	r, err := NewRuntime(cfg, "n", RuleConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if r.res, err = container.New(); err != nil {
		b.Fatal(err)
	}
	if r.drift, err = drift.New(); err != nil {
		b.Fatal(err)
	}
	var emitted int
	r.sink = SinkFunc(func(model.Event) bool { emitted++; return true })
	self := os.Getpid()
	// The host's mount namespace: attribution answers "host" at once, as
	// it does for the storm's processes.
	mnt, err := container.Proc{Root: "/proc"}.NS(1, "mnt")
	if err != nil { // a sandbox hiding PID 1's namespaces: this process's
		if mnt, err = (container.Proc{Root: "/proc"}).NS(self, "mnt"); err != nil {
			b.Fatal(err)
		}
	}
	ticks, err := container.Proc{Root: "/proc"}.StartTicks(self)
	if err != nil {
		b.Fatal(err)
	}
	mk := func(i int) *event.Event {
		e := &event.Event{Namespaces: event.Namespaces{Mnt: mnt}}
		e.Process = event.Process{PID: self, PPID: os.Getppid(), Exe: "/usr/bin/cat", Comm: "cat", Args: []string{"cat", "/etc/hostname"},
			StartTime: ticks * 10_000_000}
		switch x := i % 10; {
		case x < 6:
			e.Kind, e.Syscall = event.KindOpen, "openat"
			e.File = event.File{Path: "/etc/hostname", Resolved: true, Inode: 42, Dev: 8}
		case x < 9:
			e.Kind = event.KindExec
			e.Process.Exe, e.Process.Comm, e.Process.Args = "/usr/bin/true", "true", []string{"true"}
			e.File = event.File{Path: "/usr/bin/true", Inode: 43, Dev: 8}
		default:
			e.Kind, e.Syscall = event.KindConnect, "connect"
			e.Process.Exe, e.Process.Comm = "/usr/bin/curl", "curl"
			e.Net = event.Net{Family: event.AFInet, Type: event.SockStream, Protocol: "tcp", DstAddr: "127.0.0.1", DstPort: 8080}
		}
		return e
	}
	evs := make([]*event.Event, 1000)
	for i := range evs {
		evs[i] = mk(i)
	}
	st := r.rules.Load()
	ev := st.engine.NewEvaluator()
	procs, writers := newProcTable("/proc", 0), newWriterTable(0)
	in := &rules.Input{}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := *evs[i%len(evs)]
		r.process(ctx, &e, st, ev, in, procs, writers)
		i++
	}
	b.ReportMetric(float64(emitted)/float64(b.N), "events/op")
}
func BenchmarkStdioKinds(b *testing.B) {
	self := os.Getpid()
	ticks, _ := container.Proc{Root: "/proc"}.StartTicks(self)
	start := ticks * 10_000_000
	b.ReportAllocs()
	for b.Loop() {
		in, out := stdioKinds("/proc", self, start)
		if in == "" || out == "" {
			b.Fatal("no stdio kinds")
		}
	}
}
