package loginspect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/host/loginspect/rules"
	"mamori/internal/host/loginspect/tail"
	"mamori/internal/model"
)

// sink collects events.
type sink struct {
	mu     sync.Mutex
	events []model.Event
}

func (s *sink) handle(_ context.Context, ev model.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return nil
}

func (s *sink) byRule() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, e := range s.events {
		m[e.Rule.ID]++
	}
	return m
}

func (s *sink) waitFor(t *testing.T, rule string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: the machines running CI are shared
	for s.byRule()[rule] < n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d %s: have %v", n, rule, s.byRule())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendTo(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

type env struct {
	dir, auth, pods, audit, wtmp, state string
}

func newEnv(t *testing.T) env {
	dir := t.TempDir()
	e := env{dir: dir, auth: filepath.Join(dir, "log", "auth.log"), pods: filepath.Join(dir, "log", "pods"),
		audit: filepath.Join(dir, "log", "kubernetes", "audit.log"), wtmp: filepath.Join(dir, "log", "wtmp"), state: filepath.Join(dir, "state")}
	appendTo(t, e.auth)
	if err := os.WriteFile(e.wtmp, make([]byte, 384*4), 0o664); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) sources() []SourceConfig {
	return []SourceConfig{
		{Name: "auth", Format: "syslog", Paths: []string{e.auth}},
		{Name: "pods", Format: "cri", Paths: []string{filepath.Join(e.pods, "*", "*", "*.log")}},
		{Name: "audit", Format: "k8s-audit", Paths: []string{e.audit}},
		{Name: "records", Format: FormatWatch, Paths: []string{e.wtmp}},
	}
}

func start(t *testing.T, e env, s *sink, extra ...Option) (stop func() Snapshot) {
	t.Helper()
	opts := append([]Option{WithSources(e.sources()...), WithJournal(nil), WithStateDir(e.state), WithHost("node1"),
		WithHandler(s.handle), WithLocation(time.UTC),
		WithTailOptions(tail.WithPollInterval(5*time.Millisecond), tail.WithRescanInterval(20*time.Millisecond))}, extra...)
	in, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	return func() Snapshot {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return in.Stats()
	}
}

func sshFail(ts time.Time, ip, user string) string {
	return fmt.Sprintf("%s node1 sshd[%d]: Failed password for %s from %s port 4022 ssh2", ts.Format("2006-01-02T15:04:05.000000-07:00"), ts.Second()+100, user, ip)
}

func TestInspectorEndToEndOnFiles(t *testing.T) {
	e := newEnv(t)
	s := &sink{}
	stop := start(t, e, s)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 7 {
		appendTo(t, e.auth, sshFail(now.Add(time.Duration(i)*time.Second), "203.0.113.77", "root"))
	}
	s.waitFor(t, "ssh-brute-force", 1)
	// A pod log appears later; its lines are read from the start.
	podLog := filepath.Join(e.pods, "prod_web-1_2b3c", "web", "0.log")
	appendTo(t, podLog, now.Format(time.RFC3339Nano)+" stdout F started")
	// The audit log: a binding to cluster-admin.
	appendTo(t, e.audit, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"x1","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create","user":{"username":"mallory"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"clusterrolebindings","name":"pwn","apiGroup":"rbac.authorization.k8s.io"},"responseStatus":{"code":201},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"mallory"}]},"stageTimestamp":"`+now.Format(time.RFC3339Nano)+`","annotations":{"authorization.k8s.io/decision":"allow"}}`)
	s.waitFor(t, "k8s-cluster-admin-binding", 1)
	// wtmp cleared, auth.log cleared.
	if err := os.Truncate(e.wtmp, 0); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "log-cleared", 1)
	if err := os.Truncate(e.auth, 0); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "log-cleared", 2)
	time.Sleep(100 * time.Millisecond)
	snap := stop()
	got := s.byRule()
	// The binding is also an RBAC change by a user.
	if got["ssh-brute-force"] != 1 || got["log-cleared"] != 2 || got["k8s-cluster-admin-binding"] != 1 || got["k8s-rbac-changed"] != 1 || len(s.events) != 5 {
		t.Fatalf("events %v", got)
	}
	if snap.Lines != 9 || snap.Events != 5 || snap.Notices["truncated"] != 1 || snap.Notices["shrunk"] != 1 || len(snap.DecodeErrors) != 0 {
		t.Fatalf("stats %+v", snap)
	}
	for _, ev := range s.events {
		if ev.Rule.ID == "log-cleared" && ev.File.Path != e.wtmp && ev.File.Path != e.auth {
			t.Fatalf("%+v", ev.File)
		}
		if ev.Rule.ID == "ssh-brute-force" && (ev.Host != "node1" || ev.Count != 5 || ev.Network.SrcAddr != "203.0.113.77") {
			t.Fatalf("%+v", ev)
		}
	}
	// A restart resumes: old lines are not evaluated again; new ones are.
	s2 := &sink{}
	stop = start(t, e, s2)
	for i := range 5 {
		appendTo(t, e.auth, sshFail(now.Add(time.Hour+time.Duration(i)*time.Second), "198.51.100.4", "admin"))
	}
	s2.waitFor(t, "ssh-brute-force", 1)
	time.Sleep(100 * time.Millisecond)
	snap = stop()
	if got := s2.byRule(); len(s2.events) != 1 || got["ssh-brute-force"] != 1 || s2.events[0].Network.SrcAddr != "198.51.100.4" {
		t.Fatalf("after restart: %v", got)
	}
	if snap.Lines != 5 {
		t.Fatalf("lines after restart %d", snap.Lines)
	}
}

func TestStartAtEnd(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	for i := range 6 {
		appendTo(t, e.auth, sshFail(now.Add(time.Duration(i)*time.Second), "192.0.2.50", "root")) // history
	}
	s := &sink{}
	stop := start(t, e, s, WithStartAtEnd(true))
	time.Sleep(200 * time.Millisecond)
	appendTo(t, e.auth, sshFail(now.Add(10*time.Second), "192.0.2.50", "root"))
	time.Sleep(200 * time.Millisecond)
	snap := stop()
	if len(s.events) != 0 || snap.Lines != 1 {
		t.Fatalf("history reported: %v, %d lines", s.byRule(), snap.Lines)
	}
}

func TestHandlerBackPressureLosesNothing(t *testing.T) {
	// The pipeline is slow: reading waits for it, nothing is dropped.
	e := newEnv(t)
	ch := make(chan model.Event)
	stop := start(t, e, &sink{}, WithHandler(ChannelHandler(ch)))
	now := time.Now().UTC()
	for b := range 20 { // 20 bursts from 20 addresses
		for i := range 5 {
			appendTo(t, e.auth, sshFail(now.Add(time.Duration(i)*time.Second), fmt.Sprintf("192.0.2.%d", b+1), "root"))
		}
	}
	seen := map[string]bool{}
	for range 20 {
		select {
		case ev := <-ch:
			seen[ev.Network.SrcAddr] = true
			time.Sleep(5 * time.Millisecond)
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d events", len(seen))
		}
	}
	if len(seen) != 20 {
		t.Fatalf("%d distinct", len(seen))
	}
	go func() { // drain whatever the final poll delivers while stopping
		for range ch {
		}
	}()
	snap := stop()
	if snap.HandlerErrors != 0 || snap.Events != 20 {
		t.Fatalf("%+v", snap)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, opt := range []Option{
		WithSources(SourceConfig{Name: "x", Format: "nope", Paths: []string{"/x"}}),
		WithSources(SourceConfig{Name: "x", Format: "syslog", Paths: []string{"rel"}}),
		WithSources(SourceConfig{Name: "x", Format: "syslog"}),
		WithSources(SourceConfig{Name: "x", Format: "journal", Paths: []string{"/x"}}),
		WithStateDir("relative"),
		WithJournal(&JournalConfig{Directory: "rel"}),
	} {
		if _, err := New(opt); !errors.Is(err, ErrConfig) {
			t.Errorf("err %v", err)
		}
	}
	_, err := New(WithRules(rules.Source{Name: "bad.yaml", Data: []byte("rules: [{id: x}]")}))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatal(err)
	}
}

// TestJournalSubprocess drives the journal reader with a stand-in for journalctl that prints
// entries, exits, and checks the arguments it is given: the cursor is resumed, restarts
// happen, overlong entries are skipped. (The real journalctl and journald are in the
// privileged e2e test.)
func TestJournalSubprocess(t *testing.T) {
	dir := t.TempDir()
	argsLog := filepath.Join(dir, "args")
	script := filepath.Join(dir, "journalctl")
	entry := func(i int) string {
		return fmt.Sprintf(`{"__CURSOR":"s=1;i=%d","__REALTIME_TIMESTAMP":"%d","SYSLOG_IDENTIFIER":"sshd","_PID":"9","_HOSTNAME":"h","MESSAGE":"Failed password for root from 192.0.2.200 port 1 ssh2"}`,
			i, time.Now().UnixMicro()+int64(i))
	}
	var body strings.Builder
	body.WriteString("#!/bin/sh\necho \"$@\" >> " + argsLog + "\n")
	body.WriteString("case \"$*\" in *after-cursor=s=1\\;i=3*) ")
	for i := 4; i <= 6; i++ {
		fmt.Fprintf(&body, "echo '%s'; ", entry(i))
	}
	body.WriteString("sleep 30;; *) ")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&body, "echo '%s'; ", entry(i))
		if i == 2 {
			fmt.Fprintf(&body, "head -c %d /dev/zero | tr '\\0' x; echo; ", maxJournalLine+10)
		}
	}
	body.WriteString("exit 1;; esac\n")
	if err := os.WriteFile(script, []byte(body.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	state := filepath.Join(dir, "state")
	in, err := New(WithSources(), WithJournal(&JournalConfig{Command: script}), WithStateDir(state), WithHandler(s.handle))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	s.waitFor(t, "ssh-brute-force", 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	snap := in.Stats()
	if snap.JournalEntries != 6 || snap.JournalOverlong != 1 || snap.JournalRestarts < 1 || snap.Events != 1 {
		t.Fatalf("%+v", snap)
	}
	args, _ := os.ReadFile(argsLog)
	lines := strings.Split(strings.TrimSpace(string(args)), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "--no-tail") || !strings.Contains(lines[1], "--after-cursor=s=1;i=3") {
		t.Fatalf("journalctl runs: %q", lines)
	}
	cur, _ := os.ReadFile(filepath.Join(state, "journal.cursor"))
	if strings.TrimSpace(string(cur)) != "s=1;i=6" {
		t.Fatalf("cursor %q", cur)
	}
}

func TestOnce(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	for i := range 6 {
		appendTo(t, e.auth, sshFail(now.Add(time.Duration(i)*time.Second), "192.0.2.60", "root"))
	}
	s := &sink{}
	in, err := New(WithSources(e.sources()...), WithJournal(nil), WithOnce(true), WithHandler(s.handle), WithStateDir(e.state))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.Run(ctx); err != nil { // returns by itself
		t.Fatal(err)
	}
	if ctx.Err() != nil || s.byRule()["ssh-brute-force"] != 1 || in.Stats().Lines != 6 {
		t.Fatalf("%v %v %+v", ctx.Err(), s.byRule(), in.Stats())
	}
}
