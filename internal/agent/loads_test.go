package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
)

// loadServer records load reports; fail makes the next calls fail.
type loadServer struct {
	mu      sync.Mutex
	reports []api.LoadReport
	fail    []error
}

func (s *loadServer) ReportLoads(_ context.Context, r api.LoadReport) (api.LoadReportResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		return api.LoadReportResult{}, err
	}
	s.reports = append(s.reports, r)
	n := 0
	for _, c := range r.Containers {
		n += len(c.Loads)
	}
	return api.LoadReportResult{Accepted: n}, nil
}

func (s *loadServer) paths() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, r := range s.reports {
		for _, c := range r.Containers {
			for _, l := range c.Loads {
				out[c.ID] = append(out[c.ID], l.Path)
			}
		}
	}
	return out
}

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func loadEvent(ctr, digest, path string, resolved bool) (*event.Event, *container.Info) {
	e := &event.Event{Kind: event.KindLoad, Time: time.Now(), File: event.File{Path: path, Resolved: resolved}}
	if ctr == "" {
		return e, nil
	}
	e.Container = event.Container{ID: ctr, Name: ctr + "-name", Image: "app:1", ImageDigest: digest}
	return e, &container.Info{Container: e.Container}
}

// TestLoadForwarder: only containers' resolved, real-file loads are
// forwarded, with the container's image digest; a failed report is sent
// again, a refused one dropped; the running list goes with sync; the
// per-container cap and the pending bound hold and are counted.
func TestLoadForwarder(t *testing.T) {
	srv := &loadServer{}
	f := newLoadForwarder(srv, "node-1", nil, discardLogger())
	for _, c := range []struct {
		ctr, digest, path string
		resolved          bool
	}{
		{"", "", "/usr/bin/bash", true},                 // the host: never forwarded
		{"c1", testDigest, "/usr/bin/tar", true},        // forwarded
		{"c1", testDigest, "/proc/self/maps", true},     // pseudo file system
		{"c1", testDigest, "lib/libz.so.1", false},      // unresolved
		{"c2", "", "/usr/bin/tar", true},                // no digest: the server could not find the image
		{"c2b", testDigest, "/usr/lib/libz.so.1", true}, // forwarded
	} {
		e, info := loadEvent(c.ctr, c.digest, c.path, c.resolved)
		f.observe(e, info)
	}
	ctx := context.Background()
	if err := f.flushWith(ctx, true, []string{"c1", "c2b"}); err != nil {
		t.Fatal(err)
	}
	got := srv.paths()
	if !slices.Equal(got["c1"], []string{"/usr/bin/tar"}) || !slices.Equal(got["c2b"], []string{"/usr/lib/libz.so.1"}) || len(got) != 2 {
		t.Fatalf("forwarded %v", got)
	}
	r := srv.reports[0]
	if r.Node != "node-1" || !r.Sync || !slices.Equal(r.Running, []string{"c1", "c2b"}) || r.Containers[0].ImageDigest != testDigest ||
		r.Containers[0].Name != "c1-name" || r.Containers[0].Image != "app:1" {
		t.Fatalf("report %+v", r)
	}
	st := f.stats()
	if st.Host != 1 || st.Observed != 5 || st.Skipped != 1 || st.Unresolved != 1 || st.NoDigest != 1 || st.Sent != 2 || st.Reports != 1 ||
		st.Pending != 0 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}

	// A failure keeps the loads; the next flush sends them.
	srv.fail = []error{&client.Error{Method: "POST", Path: api.PathAgentLoads, StatusCode: 503}}
	e, info := loadEvent("c1", testDigest, "/usr/lib/libc.so.6", true)
	f.observe(e, info)
	if err := f.flush(ctx, false); err == nil {
		t.Fatal("no error from a failed report")
	}
	if st := f.stats(); st.Pending != 1 || st.Failures != 1 {
		t.Fatalf("after a failure: %+v", st)
	}
	if err := f.flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := srv.paths()["c1"]; !slices.Equal(got, []string{"/usr/bin/tar", "/usr/lib/libc.so.6"}) {
		t.Fatalf("after the retry: %v", got)
	}
	// A refused report is dropped, counted, not retried.
	srv.fail = []error{&client.Error{Method: "POST", Path: api.PathAgentLoads, StatusCode: 400}}
	e, info = loadEvent("c1", testDigest, "/usr/lib/libm.so.6", true)
	f.observe(e, info)
	if err := f.flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st := f.stats(); st.Pending != 0 || st.Rejected != 1 {
		t.Fatalf("after a refusal: %+v", st)
	}

	// The per-container cap.
	for i := range maxLoadsPerContainer + 5 {
		e, info := loadEvent("c3", testDigest, fmt.Sprintf("/data/%d", i), true)
		f.observe(e, info)
	}
	if st := f.stats(); st.Capped != 5 || st.Pending != maxLoadsPerContainer {
		t.Fatalf("cap: %+v", st)
	}
	if err := f.flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	// Forgotten once it is not running: a container of the same ID
	// (restarted) is counted anew.
	f.forget([]string{"c1"})
	f.mu.Lock()
	_, kept := f.sent["c3"]
	f.mu.Unlock()
	if kept {
		t.Error("c3's count kept after it stopped")
	}

	// The pending bound (a long server outage).
	srv.fail = nil
	g := newLoadForwarder(srv, "node-1", nil, discardLogger())
	for i := range maxPendingLoads + 7 {
		e, info := loadEvent(fmt.Sprintf("c%d", i/1000), testDigest, fmt.Sprintf("/f/%d", i), true)
		g.observe(e, info)
	}
	if st := g.stats(); st.Dropped != 7 || st.Pending != maxPendingLoads {
		t.Fatalf("bound: %+v", st)
	}
	// A big backlog goes in reports within the API's limits.
	srv.reports = nil
	if err := g.flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range srv.reports {
		n := 0
		for _, c := range r.Containers {
			n += len(c.Loads)
		}
		if n > api.MaxLoadReportPaths || len(r.Containers) > api.MaxLoadReportContainers {
			t.Fatalf("a report of %d paths and %d containers", n, len(r.Containers))
		}
		total += n
	}
	if total != maxPendingLoads || len(srv.reports) != (maxPendingLoads+api.MaxLoadReportPaths-1)/api.MaxLoadReportPaths {
		t.Fatalf("%d paths in %d reports", total, len(srv.reports))
	}
}

// TestLoadForwarderRun: the loop sends the running list at start and
// pending loads within a couple of seconds, and what is pending at stop.
func TestLoadForwarderRun(t *testing.T) {
	srv := &loadServer{}
	changed := make(chan struct{})
	inv := func() (container.Inventory, <-chan struct{}) {
		return container.Inventory{Containers: []container.Info{{Container: event.Container{ID: "c1"}},
			{Container: event.Container{ID: "pause"}, Sandbox: true}}}, changed
	}
	f := newLoadForwarder(srv, "node-1", inv, discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx) }()
	e, info := loadEvent("c1", testDigest, "/usr/bin/tar", true)
	f.observe(e, info)
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.paths()["c1"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not sent within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.mu.Lock()
	first := srv.reports[0]
	srv.mu.Unlock()
	if !first.Sync || !slices.Equal(first.Running, []string{"c1"}) {
		t.Errorf("first report %+v: want the running list without the sandbox", first)
	}
	e, info = loadEvent("c1", testDigest, "/usr/lib/libz.so.1", true)
	f.observe(e, info)
	cancel()
	<-done
	if got := srv.paths()["c1"]; !slices.Equal(got, []string{"/usr/bin/tar", "/usr/lib/libz.so.1"}) {
		t.Errorf("after stop: %v", got)
	}
}

// TestRuntimeAsksForLoads: with a load reporter the sensor is asked for
// the load kind; without one it is not (the kernel filters it).
func TestRuntimeAsksForLoads(t *testing.T) {
	cfg := Defaults().Modules.Runtime
	without, err := NewRuntime(cfg, "n", RuleConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	with, err := NewRuntime(cfg, "n", RuleConfig{}, nil, WithLoadReporter(&loadServer{}))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(without.kinds, event.KindLoad) || !slices.Contains(with.kinds, event.KindLoad) {
		t.Fatalf("kinds without %v, with %v", without.kinds, with.kinds)
	}
	for code, want := range map[int]bool{400: true, 404: true, 413: true, 401: false, 403: false, 429: false, 500: false, 503: false} {
		if got := permanent(&client.Error{StatusCode: code}); got != want {
			t.Errorf("permanent(%d) = %v", code, got)
		}
	}
	if permanent(errors.New("connection refused")) {
		t.Error("a connection error is permanent")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestSweep: the processes of a container older than the sensor are read
// once (executable and mapped files, each once; anonymous, pseudo-file and
// deleted mappings left out); a container started after it, the host's
// processes and a container already swept are not.
func TestSweep(t *testing.T) {
	root := t.TempDir()
	mkproc := func(pid int, maps, exe string) uint32 {
		t.Helper()
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "maps"), []byte(maps), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
		// A file stands in for the namespace: its inode is the "namespace".
		ns := filepath.Join(dir, "ns", "mnt")
		if err := os.WriteFile(ns, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(ns, &st); err != nil {
			t.Fatal(err)
		}
		return uint32(st.Ino)
	}
	maps := `55d0c0a00000-55d0c0a28000 r--p 00000000 00:3e 1311 /usr/bin/tar
55d0c0a28000-55d0c0aa0000 r-xp 00028000 00:3e 1311 /usr/bin/tar
55d0c1b6e000-55d0c1b8f000 rw-p 00000000 00:00 0 [heap]
7f1a2c000000-7f1a2c028000 r--p 00000000 00:3e 2211 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2c100000-7f1a2c101000 r--p 00000000 00:3e 2299 /usr/lib/x86_64-linux-gnu/lib with space.so.1
7f1a2c200000-7f1a2c201000 r--p 00000000 00:3e 2300 /usr/lib/x86_64-linux-gnu/libgone.so.1 (deleted)
7f1a2c300000-7f1a2c301000 r--p 00000000 00:05 77 /dev/zero
7ffd1c5e1000-7ffd1c602000 rw-p 00000000 00:00 0 [stack]
`
	oldNS := mkproc(101, maps, "/usr/bin/tar")
	mkproc(102, maps, "/usr/bin/tar") // same container: each path once
	newNS := mkproc(201, maps, "/usr/bin/tar")
	mkproc(301, maps, "/usr/bin/bash") // the host
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1000.50 3000.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSweeper(root)
	if s.since != 100050 {
		t.Fatalf("since %d", s.since)
	}
	old := container.Info{Container: event.Container{ID: "old", ImageDigest: testDigest}, MntNS: oldNS, PIDStart: 90000}
	young := container.Info{Container: event.Container{ID: "young", ImageDigest: testDigest}, MntNS: newNS, PIDStart: 100100}
	inv := container.Inventory{Containers: []container.Info{old, young}}
	due := s.due(inv)
	if len(due) != 1 || due[oldNS] == nil {
		t.Fatalf("due %v", due)
	}
	srv := &loadServer{}
	f := newLoadForwarder(srv, "node-1", nil, discardLogger())
	if n := f.sweep(s, due); n != 3 {
		t.Errorf("swept %d paths, want 3", n)
	}
	if err := f.flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	got := srv.paths()
	slices.Sort(got["old"])
	want := []string{"/usr/bin/tar", "/usr/lib/x86_64-linux-gnu/lib with space.so.1", "/usr/lib/x86_64-linux-gnu/libc.so.6"}
	if !slices.Equal(got["old"], want) || len(got) != 1 {
		t.Errorf("swept %v, want %v of the old container only", got, want)
	}
	if st := f.stats(); st.Swept != 3 {
		t.Errorf("stats %+v", st)
	}
	if due := s.due(inv); len(due) != 0 {
		t.Errorf("swept again: %v", due)
	}
}
