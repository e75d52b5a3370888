package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
	"mamori/internal/runtime/rules"
)

// emitModule is a module that emits n events when started (the way a host
// module would), then idles.
type emitModule struct {
	n       int
	every   time.Duration
	make    func(i int) model.Event
	emitted atomic.Int64
	dropped atomic.Int64
	done    chan struct{}
	cancel  context.CancelFunc
}

func (m *emitModule) Name() string { return "test" }
func (m *emitModule) Start(ctx context.Context, sink Sink) error {
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		for i := range m.n {
			if ctx.Err() != nil {
				return
			}
			if sink.Emit(m.make(i)) {
				m.emitted.Add(1)
			} else {
				m.dropped.Add(1)
			}
			if m.every > 0 {
				time.Sleep(m.every)
			}
		}
	}()
	return nil
}
func (m *emitModule) Stop(ctx context.Context) error {
	m.cancel()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (m *emitModule) Stats() any  { return map[string]int64{"emitted": m.emitted.Load()} }
func (m *emitModule) Config() any { return nil }

func testEvent(i int) model.Event {
	return model.Event{Time: time.Now(), Source: model.SourceRuntime, Module: "sensor",
		Rule: model.RuleRef{ID: "test-rule", Title: "Test"}, Severity: model.SeverityHigh, Action: model.ActionLog,
		Message: fmt.Sprintf("event %d", i), Process: &model.Process{PID: 1000 + i, Exe: "/bin/x"}}
}

// hostileEvent carries what a hostile process can put in an event: the
// rule's message and evidence come sanitized from the rules package, so
// the output must stay one valid JSON line per event whatever they hold.
func hostileEvent(i int) model.Event {
	e := testEvent(i)
	e.Message = "line1\nline2\r\x1b[31mred\u202e"
	e.Process.Args = []string{"a\nb", strings.Repeat("x", 4000)}
	e.File = &model.FileRef{Path: "/tmp/new\nline"}
	return e
}

func runAgent(t *testing.T, a *Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
}

func noRuntime() Config {
	c := Defaults()
	off := false
	c.Modules.Runtime.Enabled = &off
	return c
}

func TestJSONLinesOutput(t *testing.T) {
	var buf syncBuffer
	m := &emitModule{n: 500, make: func(i int) model.Event {
		if i%2 == 0 {
			return hostileEvent(i)
		}
		return testEvent(i)
	}}
	a, err := New(noRuntime(), WithOutput(&buf), WithModules(m))
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a)
	waitFor(t, func() bool { return a.Stats().Written == 500 }, "500 events written")
	stop()
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	n := 0
	ids := map[string]bool{}
	for sc.Scan() {
		line := sc.Bytes()
		if !utf8.Valid(line) {
			t.Fatalf("line %d is not UTF-8", n)
		}
		var e model.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v: %.200s", n, err, line)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("line %d invalid: %v", n, err)
		}
		if e.Node == "" || e.Host == "" || len(e.ID) != 32 || ids[e.ID] {
			t.Fatalf("line %d not stamped: node %q host %q id %q", n, e.Node, e.Host, e.ID)
		}
		ids[e.ID] = true
		n++
	}
	if n != 500 {
		t.Fatalf("%d lines for 500 events (a raw newline would split one)", n)
	}
}

func TestEmitNeverBlocks(t *testing.T) {
	cfg := noRuntime()
	cfg.Events.Queue = 4
	a, err := New(cfg, WithOutput(&syncBuffer{}), WithModules(&emitModule{}))
	if err != nil {
		t.Fatal(err)
	}
	// Not running: nothing drains the queue.
	start := time.Now()
	ok := 0
	for i := range 1000 {
		if a.Emit(testEvent(i)) {
			ok++
		}
	}
	if ok != 4 || a.Stats().EmitDropped != 996 || time.Since(start) > time.Second {
		t.Fatalf("queued %d, dropped %d in %v", ok, a.Stats().EmitDropped, time.Since(start))
	}
}

// fakeServer is the ServerAPI with failures injected: it keeps what it
// was given, like the real server, by event ID.
type fakeServer struct {
	mu         sync.Mutex
	ids        map[string]int
	failNext   int   // fail this many IngestEvents calls
	failErr    error // with this error
	registered int
	heartbeats int
	calls      int
}

func (f *fakeServer) RegisterAgent(_ context.Context, r api.AgentReport) (api.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered++
	return api.Agent{ID: 1, Node: r.Node}, nil
}
func (f *fakeServer) AgentHeartbeat(_ context.Context, r api.AgentReport) (api.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heartbeats++
	return api.Agent{ID: 1, Node: r.Node}, nil
}
func (f *fakeServer) AgentConfig(context.Context) (api.ComponentConfig, error) {
	return api.ComponentConfig{HeartbeatInterval: "1s"}, nil
}
func (f *fakeServer) IngestEvents(_ context.Context, evs []model.Event) (api.EventIngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failNext > 0 {
		f.failNext--
		return api.EventIngestResult{}, f.failErr
	}
	var r api.EventIngestResult
	for _, e := range evs {
		if f.ids[e.ID] > 0 {
			r.Duplicates++
		} else {
			r.Accepted++
		}
		f.ids[e.ID]++
	}
	return r, nil
}
func (f *fakeServer) distinct() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

func TestDeliveryAtLeastOnceThroughFailures(t *testing.T) {
	srv := &fakeServer{ids: map[string]int{}, failNext: 3, failErr: errors.New("connection refused")}
	cfg := noRuntime()
	cfg.Server.URL = "https://server.invalid" // not dialled: WithServer replaces the client
	cfg.Spool.Dir = t.TempDir()
	cfg.Events.File = ""
	m := &emitModule{n: 1000, make: testEvent}
	a, err := New(cfg, WithServer(srv), WithModules(m))
	if err != nil {
		t.Fatal(err)
	}
	a.retryMin = 10 * time.Millisecond
	stop := runAgent(t, a)
	waitFor(t, func() bool { return srv.distinct() == 1000 }, "1000 events delivered")
	waitFor(t, func() bool { s := a.Stats(); return s.Spool.Pending == 0 }, "spool empty")
	stop()
	s := a.Stats()
	if s.Delivery.Failures != 3 || s.Delivery.Sent < 1000 || s.Spool.Pending != 0 {
		t.Fatalf("delivery %+v spool %+v", s.Delivery, s.Spool)
	}
	if srv.registered != 1 {
		t.Fatalf("registered %d times", srv.registered)
	}
}

// TestSpoolSurvivesRestart: events spooled while the server is away are
// delivered by the next agent process on the same spool.
func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	down := &fakeServer{ids: map[string]int{}, failNext: 1 << 30, failErr: errors.New("connection refused")}
	cfg := noRuntime()
	cfg.Server.URL = "https://server.invalid"
	cfg.Spool.Dir = dir
	a, err := New(cfg, WithServer(down), WithModules(&emitModule{n: 300, make: testEvent}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a)
	waitFor(t, func() bool { return a.Stats().Spool.Appended == 300 }, "300 events spooled")
	stop()
	up := &fakeServer{ids: map[string]int{}}
	a, err = New(cfg, WithServer(up), WithModules(&emitModule{}))
	if err != nil {
		t.Fatal(err)
	}
	stop = runAgent(t, a)
	waitFor(t, func() bool { return up.distinct() == 300 }, "300 events delivered after the restart")
	stop()
}

// TestRejectedRequestDoesNotBlock: a request the server refuses as a whole
// (4xx) is split down to the one event it cannot take, which is dropped
// and counted; the rest are delivered.
func TestRejectedRequestDoesNotBlock(t *testing.T) {
	srv := &rejectOne{fakeServer: fakeServer{ids: map[string]int{}}, bad: "event 7"}
	cfg := noRuntime()
	cfg.Server.URL = "https://server.invalid"
	cfg.Spool.Dir = t.TempDir()
	a, err := New(cfg, WithServer(srv), WithModules(&emitModule{n: 50, make: testEvent}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a)
	waitFor(t, func() bool { return srv.distinct() == 49 && a.Stats().Spool.Pending == 0 }, "49 delivered, one dropped")
	stop()
	if r := a.Stats().Delivery.Rejected; r != 1 {
		t.Fatalf("rejected %d", r)
	}
}

type rejectOne struct {
	fakeServer
	bad string
}

func (r *rejectOne) IngestEvents(ctx context.Context, evs []model.Event) (api.EventIngestResult, error) {
	for _, e := range evs {
		if e.Message == r.bad {
			return api.EventIngestResult{}, &client.Error{StatusCode: 413, Status: "413 Request Entity Too Large", Message: "too large"}
		}
	}
	return r.fakeServer.IngestEvents(ctx, evs)
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// policyServer is fakeServer with a policy assigned.
type policyServer struct {
	fakeServer
	name    string
	version int
	doc     string
}

func (p *policyServer) AgentConfig(context.Context) (api.ComponentConfig, error) {
	return api.ComponentConfig{HeartbeatInterval: "1s", Policy: p.name, PolicyVersion: p.version}, nil
}
func (p *policyServer) AgentPolicy(context.Context) (api.ComponentPolicy, error) {
	return api.ComponentPolicy{Name: p.name, Version: p.version, Document: p.doc}, nil
}

// TestServerPolicy: the rulesets come from the policy the server assigns,
// are replaced when its version changes, kept when a new version cannot
// run, and fall back to the default ruleset when none is assigned.
func TestServerPolicy(t *testing.T) {
	srv := &policyServer{fakeServer: fakeServer{ids: map[string]int{}}, name: "prod", version: 1, doc: testPolicy}
	cfg := Defaults()
	cfg.Server.URL = "https://server.invalid"
	cfg.Spool.Dir = t.TempDir()
	a, err := New(cfg, WithServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	var loaded policyVersion
	ctx := context.Background()
	a.syncConfig(ctx, time.Second, &loaded)
	st := a.Runtime().RuntimeStats()
	if st.RulesOrigin != "policy prod v1 (from the server)" || len(st.Rulesets) != 2 {
		t.Fatalf("after v1: %q %v", st.RulesOrigin, st.Rulesets)
	}
	srv.version, srv.doc = 2, "apiVersion: mamori.dev/v1\nkind: Policy\nname: prod\nruntime: [{ruleset: nope}]\n"
	a.syncConfig(ctx, time.Second, &loaded)
	if got := a.Runtime().RuntimeStats().RulesOrigin; got != "policy prod v1 (from the server)" {
		t.Fatalf("a policy naming an unknown ruleset replaced the rules: %q", got)
	}
	srv.name, srv.version = "", 0
	a.syncConfig(ctx, time.Second, &loaded)
	if got := a.Runtime().RuntimeStats(); got.RulesOrigin != "default (the server assigns no policy and the host group no rulesets)" || got.Rulesets[0] != "default" {
		t.Fatalf("no policy: %q %v", got.RulesOrigin, got.Rulesets)
	}
}

// TestHostGroupRulesets: a bare host (its cluster enforces no policy)
// runs its host group's runtime rulesets, each rule with the group's
// action; a cluster policy takes precedence while assigned; a group that
// selects none falls back to the default ruleset; a selection the agent
// cannot run keeps the rules in force.
func TestHostGroupRulesets(t *testing.T) {
	srv := &policyServer{fakeServer: fakeServer{ids: map[string]int{}}}
	cfg := Defaults()
	cfg.Server.URL = "https://server.invalid"
	cfg.Spool.Dir = t.TempDir()
	a, err := New(cfg, WithServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	var loaded policyVersion
	ctx := context.Background()
	a.syncConfig(ctx, time.Second, &loaded)
	if got := a.Runtime().RuntimeStats().RulesOrigin; !strings.HasPrefix(got, "default") {
		t.Fatalf("no policy, no group rulesets: %q", got)
	}
	no := false
	a.SetHostRulesets("bare", 3, []api.RuntimeRulesetRef{{Ruleset: "default", Action: model.ActionLog, Host: &no,
		Rules: map[string]model.Action{"terminal-shell-in-container": model.ActionTerminate}}})
	st := a.Runtime().RuntimeStats()
	if st.RulesOrigin != "host group bare v3 (from the server)" || len(st.Rulesets) != 1 {
		t.Fatalf("group rulesets: %q %v", st.RulesOrigin, st.Rulesets)
	}
	cat, err := rules.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := RulesetsFromPolicy(cat, HostRulesets("bare", 3, []api.RuntimeRulesetRef{{Ruleset: "default", Action: model.ActionLog, Host: &no,
		Rules: map[string]model.Action{"terminal-shell-in-container": model.ActionTerminate}}}).Refs)
	if err != nil {
		t.Fatal(err)
	}
	var shell, other model.Action
	for _, rs := range sets {
		for _, e := range rs.Entries {
			switch e.ID {
			case "terminal-shell-in-container":
				shell = e.Action
			case "package-manager-in-container":
				other = e.Action
			}
		}
		if rs.Host == nil || *rs.Host {
			t.Errorf("ruleset %s covers the host; the group said host: false", rs.Name)
		}
	}
	if shell != model.ActionTerminate || other != model.ActionLog {
		t.Errorf("actions: shell %q, package manager %q; want terminate and log", shell, other)
	}
	// A cluster policy wins while assigned; the group's rulesets come back after.
	srv.name, srv.version, srv.doc = "prod", 1, testPolicy
	a.syncConfig(ctx, time.Second, &loaded)
	if got := a.Runtime().RuntimeStats().RulesOrigin; got != "policy prod v1 (from the server)" {
		t.Fatalf("cluster policy: %q", got)
	}
	a.SetHostRulesets("bare", 4, []api.RuntimeRulesetRef{{Ruleset: "default"}})
	if got := a.Runtime().RuntimeStats().RulesOrigin; got != "policy prod v1 (from the server)" {
		t.Fatalf("a group change replaced the cluster policy: %q", got)
	}
	srv.name, srv.version = "", 0
	a.syncConfig(ctx, time.Second, &loaded)
	if got := a.Runtime().RuntimeStats().RulesOrigin; got != "host group bare v4 (from the server)" {
		t.Fatalf("policy unassigned: %q", got)
	}
	// A selection this agent cannot run (an older agent, a newer server):
	// the rules in force stay.
	a.SetHostRulesets("bare", 5, []api.RuntimeRulesetRef{{Ruleset: "nope"}})
	if got := a.Runtime().RuntimeStats().RulesOrigin; got != "host group bare v4 (from the server)" {
		t.Fatalf("unknown ruleset replaced the rules: %q", got)
	}
	a.SetHostRulesets("bare", 6, nil)
	if got := a.Runtime().RuntimeStats().RulesOrigin; !strings.HasPrefix(got, "default") {
		t.Fatalf("group selects none: %q", got)
	}
}
