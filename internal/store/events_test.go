package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"mamori/internal/model"
)

// ev builds a valid event.
func ev(id string, at time.Time, mut ...func(*model.Event)) EventRecord {
	e := model.Event{ID: id, Time: at, Source: model.SourceRuntime, Module: "sensor", Cluster: "prod", Node: "node-1",
		Namespace: "shop", Pod: "web-1", Workload: &model.WorkloadRef{Kind: "Deployment", Name: "web"},
		Container: &model.ContainerRef{ID: "c0ffee", Name: "nginx", Image: "nginx:1.25", ImageDigest: dg("sha256:e1")},
		Rule:      model.RuleRef{ID: "shell-in-container", Title: "Shell started in a container"}, Tactic: "TA0002", Technique: "T1059.004",
		Severity: model.SeverityHigh, Action: model.ActionLog, Message: "bash started by nginx",
		Process: &model.Process{PID: 42, Exe: "/bin/bash", Args: []string{"bash", "-c", "id"}}}
	for _, m := range mut {
		m(&e)
	}
	return EventRecord{Event: e, ReceivedAt: at.Add(time.Second), ReportedBy: "agent-token"}
}

func ids(p EventPage) []string {
	out := []string{}
	for _, r := range p.Events {
		out = append(out, r.Event.ID)
	}
	return out
}

func TestEventsInsertIdempotent(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		got, err := s.InsertEvents(ctx, []EventRecord{ev("a", t0), ev("b", t0.Add(time.Second)), ev("a", t0)})
		if err != nil || !slices.Equal(got, []bool{true, true, false}) {
			t.Fatalf("first batch: %v %v", got, err)
		}
		// Re-sending stores nothing more.
		got, err = s.InsertEvents(ctx, []EventRecord{ev("b", t0), ev("c", t0)})
		if err != nil || !slices.Equal(got, []bool{false, true}) {
			t.Fatalf("second batch: %v %v", got, err)
		}
		if n, err := s.CountEvents(ctx); err != nil || n != 3 {
			t.Fatalf("count %d %v, want 3", n, err)
		}
		// An invalid event fails the batch and stores nothing of it.
		bad := ev("d", t0, func(e *model.Event) { e.Source = "toaster" })
		if _, err := s.InsertEvents(ctx, []EventRecord{ev("e", t0), bad}); !errors.Is(err, ErrInvalid) || !errors.Is(err, model.ErrInvalid) {
			t.Fatalf("invalid: %v", err)
		}
		if n, _ := s.CountEvents(ctx); n != 3 {
			t.Fatalf("count %d after an invalid batch, want 3", n)
		}
		// The envelope round-trips whole.
		rec, err := s.GetEvent(ctx, "a")
		want := ev("a", t0)
		if err != nil || toJSON(t, rec.Event) != toJSON(t, want.Event) || rec.ReportedBy != "agent-token" || !rec.ReceivedAt.Equal(t0.Add(time.Second)) || rec.Seq == 0 {
			t.Fatalf("get: %+v %v", rec, err)
		}
		if _, err := s.GetEvent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
		// A failure mid-transaction leaves nothing.
		s.failAt = func(step string) error {
			if step == "commit" {
				return errors.New("boom")
			}
			return nil
		}
		_, err = s.InsertEvents(ctx, []EventRecord{ev("f", t0), ev("g", t0)})
		s.failAt = nil
		if err == nil {
			t.Fatal("injected failure not reported")
		}
		if n, _ := s.CountEvents(ctx); n != 3 {
			t.Fatalf("count %d after a failed insert, want 3", n)
		}
	})
}

func TestEventsListAndFilters(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		recs := []EventRecord{
			ev("r1", t0),
			ev("r2", t0.Add(time.Minute), func(e *model.Event) {
				e.Cluster, e.Node, e.Namespace, e.Pod = "staging", "node-2", "db", "pg-0"
				e.Container = &model.ContainerRef{ID: "dbc", Name: "postgres", Image: "postgres:16"}
				e.Rule.ID, e.Technique, e.Tactic, e.Severity = "drift", "T1036", "TA0005", model.SeverityCritical
				e.Action, e.Module, e.Message = model.ActionTerminate, "drift", "Unknown binary /tmp/xmrig executed"
				e.Process = &model.Process{PID: 7, Exe: "/tmp/xmrig"}
			}),
			ev("a1", t0.Add(2*time.Minute), func(e *model.Event) {
				e.Source, e.Module, e.Node, e.Pod, e.Container, e.Process = model.SourceAdmission, "webhook", "", "", nil, nil
				e.Rule = model.RuleRef{ID: "no-latest", Policy: "baseline"}
				e.Severity, e.Action, e.Tactic, e.Technique = model.SeverityMedium, model.ActionBlock, "", ""
				e.Message = "image tag latest refused"
			}),
			ev("h1", t0.Add(3*time.Minute), func(e *model.Event) {
				e.Source, e.Module, e.Cluster, e.Namespace, e.Pod, e.Container, e.Workload = model.SourceHost, "antimalware", "", "", "", nil, nil
				e.Node, e.Tactic, e.Technique, e.Process = "", "", "", nil
				e.Host, e.Severity, e.Action = "bastion", model.SeverityLow, model.ActionQuarantine
				e.File = &model.FileRef{Path: "/home/u/EICAR.com"}
				e.Details = map[string]string{"signature": "Eicar-Test-Signature"}
			}),
		}
		if _, err := s.InsertEvents(ctx, recs); err != nil {
			t.Fatal(err)
		}
		high, crit := model.SeverityHigh, model.SeverityCritical
		for _, c := range []struct {
			name string
			f    EventFilter
			want []string
		}{
			{"all newest first", EventFilter{}, []string{"h1", "a1", "r2", "r1"}},
			{"source", EventFilter{Source: "runtime"}, []string{"r2", "r1"}},
			{"module", EventFilter{Module: "antimalware"}, []string{"h1"}},
			{"cluster", EventFilter{Cluster: "staging"}, []string{"r2"}},
			{"node", EventFilter{Node: "node-1"}, []string{"r1"}},
			{"namespace", EventFilter{Namespace: "shop"}, []string{"a1", "r1"}},
			{"pod", EventFilter{Pod: "pg-0"}, []string{"r2"}},
			{"container by name", EventFilter{Container: "nginx"}, []string{"r1"}},
			{"container by ID", EventFilter{Container: "dbc"}, []string{"r2"}},
			{"image", EventFilter{Image: "postgres:16"}, []string{"r2"}},
			{"image digest", EventFilter{Image: dg("sha256:e1")}, []string{"r1"}},
			{"rule", EventFilter{Rule: "no-latest"}, []string{"a1"}},
			{"technique", EventFilter{Technique: "T1059.004"}, []string{"r1"}},
			{"tactic", EventFilter{Tactic: "TA0005"}, []string{"r2"}},
			{"severity at least high", EventFilter{MinSeverity: &high}, []string{"r2", "r1"}},
			{"severity at least critical", EventFilter{MinSeverity: &crit}, []string{"r2"}},
			{"action", EventFilter{Action: "quarantine"}, []string{"h1"}},
			{"since", EventFilter{Since: t0.Add(2 * time.Minute)}, []string{"h1", "a1"}},
			{"until", EventFilter{Until: t0.Add(time.Minute)}, []string{"r1"}},
			{"text in message", EventFilter{Query: "XMRIG"}, []string{"r2"}},
			{"text in file path", EventFilter{Query: "eicar.com"}, []string{"h1"}},
			{"text in details", EventFilter{Query: "eicar-test"}, []string{"h1"}},
			{"text in args", EventFilter{Query: "bash -c id"}, []string{"r1"}},
			{"text with LIKE wildcards", EventFilter{Query: "%"}, []string{}},
			{"combined", EventFilter{Source: "runtime", Namespace: "shop", MinSeverity: &high}, []string{"r1"}},
			{"nothing", EventFilter{Cluster: "nope"}, []string{}},
		} {
			p, err := s.ListEvents(ctx, c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := ids(p); !slices.Equal(got, c.want) || p.Next != nil {
				t.Errorf("%s: %v (next %v), want %v", c.name, got, p.Next, c.want)
			}
		}
	})
}

// TestEventsCursor: pages of a listing cover every event exactly once,
// newest first, also when many events share a time and events arrive
// between pages.
func TestEventsCursor(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		var recs []EventRecord
		for i := range 57 {
			recs = append(recs, ev(fmt.Sprintf("e%02d", i), t0.Add(time.Duration(i/5)*time.Second)))
		}
		if _, err := s.InsertEvents(ctx, recs); err != nil {
			t.Fatal(err)
		}
		var seen []string
		var after *EventCursor
		for page := 0; ; page++ {
			p, err := s.ListEvents(ctx, EventFilter{Limit: 10, After: after})
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(p)...)
			if page == 1 {
				// A newer event arriving meanwhile does not shift the pages.
				if _, err := s.InsertEvents(ctx, []EventRecord{ev("late", t0.Add(time.Hour))}); err != nil {
					t.Fatal(err)
				}
			}
			if p.Next == nil {
				break
			}
			after = p.Next
		}
		if len(seen) != 57 {
			t.Fatalf("%d events over the pages, want 57: %v", len(seen), seen)
		}
		// Newest first; among equal times the later arrival first.
		for i := 1; i < len(seen); i++ {
			if seen[i] >= seen[i-1] {
				t.Fatalf("order broken at %d: %v", i, seen)
			}
		}
	})
}

func TestEventsPrune(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		var recs []EventRecord
		for i := range 30 {
			recs = append(recs, ev(fmt.Sprintf("e%02d", i), t0.Add(time.Duration(i)*time.Hour)))
		}
		if _, err := s.InsertEvents(ctx, recs); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneEvents(ctx, t0.Add(10*time.Hour), 0)
		if err != nil || n != 10 {
			t.Fatalf("prune by age: %d %v, want 10", n, err)
		}
		n, err = s.PruneEvents(ctx, time.Time{}, 15)
		if err != nil || n != 5 {
			t.Fatalf("prune by count: %d %v, want 5", n, err)
		}
		p, _ := s.ListEvents(ctx, EventFilter{Limit: 100})
		if got := ids(p); len(got) != 15 || got[0] != "e29" || got[14] != "e15" {
			t.Fatalf("kept %v", got)
		}
		if n, err := s.PruneEvents(ctx, time.Time{}, 100); err != nil || n != 0 {
			t.Errorf("nothing to prune: %d %v", n, err)
		}
		// A pruned event's ID is free again (a late re-delivery stores it anew).
		if got, err := s.InsertEvents(ctx, []EventRecord{ev("e00", t0)}); err != nil || !got[0] {
			t.Errorf("re-insert pruned: %v %v", got, err)
		}
	})
}

func TestEventsPruneInBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		total := pruneBatch*2 + 17
		for start := 0; start < total; start += 1000 {
			var recs []EventRecord
			for i := start; i < min(start+1000, total); i++ {
				recs = append(recs, ev(fmt.Sprintf("e%06d", i), t0.Add(time.Duration(i)*time.Millisecond)))
			}
			if _, err := s.InsertEvents(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PruneEvents(ctx, time.Time{}, 10)
		if err != nil || n != int64(total-10) {
			t.Fatalf("pruned %d %v, want %d", n, err, total-10)
		}
		if c, _ := s.CountEvents(ctx); c != 10 {
			t.Fatalf("%d left, want 10", c)
		}
	})
}

func TestClustersAndAgents(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		c, err := s.CreateCluster(ctx, "prod", t0)
		if err != nil || c.ID == 0 || c.Name != "prod" || !c.CreatedAt.Equal(t0) || !c.RegisteredAt.IsZero() {
			t.Fatalf("create: %+v %v", c, err)
		}
		if _, err := s.CreateCluster(ctx, "prod", t0); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate: %v", err)
		}
		if _, err := s.CreateCluster(ctx, " ", t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty name: %v", err)
		}
		c, err = s.RecordClusterContact(ctx, "prod", ClusterContact{At: t0.Add(time.Minute), Register: true, Version: "1.0", KubernetesVersion: "v1.31.2", Nodes: 3})
		if err != nil || !c.RegisteredAt.Equal(t0.Add(time.Minute)) || c.Version != "1.0" || c.Nodes != 3 {
			t.Fatalf("register: %+v %v", c, err)
		}
		c, err = s.RecordClusterContact(ctx, "prod", ClusterContact{At: t0.Add(2 * time.Minute)})
		if err != nil || !c.RegisteredAt.Equal(t0.Add(time.Minute)) || !c.LastContact.Equal(t0.Add(2*time.Minute)) || c.KubernetesVersion != "v1.31.2" || c.Nodes != 3 {
			t.Fatalf("heartbeat: %+v %v", c, err)
		}
		if _, err := s.RecordClusterContact(ctx, "nope", ClusterContact{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown cluster: %v", err)
		}

		a, err := s.RegisterAgent(ctx, Agent{Cluster: "prod", Node: "node-1", Hostname: "n1", Version: "1.0", Kernel: "6.18", TokenID: 7, LastContact: t0})
		if err != nil || a.ID == 0 || !a.FirstSeen.Equal(t0) || a.TokenID != 7 {
			t.Fatalf("register agent: %+v %v", a, err)
		}
		a2, err := s.RegisterAgent(ctx, Agent{Cluster: "prod", Node: "node-1", Version: "1.1", LastContact: t0.Add(time.Hour)})
		if err != nil || a2.ID != a.ID || !a2.FirstSeen.Equal(t0) || !a2.LastContact.Equal(t0.Add(time.Hour)) || a2.Version != "1.1" {
			t.Fatalf("re-register: %+v %v", a2, err)
		}
		// The same node name on a bare host is another agent.
		bare, err := s.RegisterAgent(ctx, Agent{Node: "node-1", LastContact: t0})
		if err != nil || bare.ID == a.ID {
			t.Fatalf("bare host agent: %+v %v", bare, err)
		}
		hb, err := s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-1"}, t0.Add(2*time.Hour))
		if err != nil || !hb.LastContact.Equal(t0.Add(2*time.Hour)) || hb.Version != "1.1" || hb.Sensor.Mode != "" {
			t.Fatalf("heartbeat: %+v %v", hb, err)
		}
		// The sensor a heartbeat reports is kept; one that says none keeps it.
		sensor := AgentSensor{Mode: "fallback", Hooks: "cn_proc+fanotify", Missing: []string{"connect", "mount"}}
		hb, err = s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-1", Sensor: sensor}, t0.Add(3*time.Hour))
		if err != nil || hb.Sensor.Mode != "fallback" || hb.Sensor.Hooks != "cn_proc+fanotify" || !slices.Equal(hb.Sensor.Missing, sensor.Missing) {
			t.Fatalf("heartbeat with sensor: %+v %v", hb, err)
		}
		hb, err = s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-1", Version: "1.2"}, t0.Add(3*time.Hour))
		if err != nil || hb.Sensor.Mode != "fallback" || len(hb.Sensor.Missing) != 2 || hb.Version != "1.2" {
			t.Fatalf("heartbeat without sensor: %+v %v", hb, err)
		}
		hb, err = s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-1", Sensor: AgentSensor{Mode: "ebpf", Hooks: "tp_btf"}}, t0.Add(3*time.Hour))
		if err != nil || hb.Sensor.Mode != "ebpf" || hb.Sensor.Hooks != "tp_btf" || len(hb.Sensor.Missing) != 0 {
			t.Fatalf("heartbeat, sensor changed: %+v %v", hb, err)
		}
		if ag, err := s.GetAgent(ctx, a.ID); err != nil || ag.Sensor.Mode != "ebpf" {
			t.Fatalf("get agent: %+v %v", ag, err)
		}
		if _, err := s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-1", Sensor: AgentSensor{Mode: "ebpf\x00"}}, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("heartbeat with a NUL in the mode: %v", err)
		}
		if _, err := s.AgentHeartbeat(ctx, Agent{Cluster: "prod", Node: "node-9"}, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("heartbeat of unregistered: %v", err)
		}
		if _, err := s.RegisterAgent(ctx, Agent{Cluster: "prod"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("agent without node: %v", err)
		}

		// Deleting the cluster revokes its tokens and removes its agents, not others.
		bound, _ := s.CreateToken(ctx, Token{Name: "prod-agents", Role: "agent", Cluster: "prod", Hash: []byte("hp")})
		other, _ := s.CreateToken(ctx, Token{Name: "ci", Role: "operator", Hash: []byte("ho")})
		if err := s.DeleteCluster(ctx, c.ID, t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTokenByHash(ctx, []byte("hp")); !errors.Is(err, ErrNotFound) {
			t.Errorf("bound token still active: %v", err)
		}
		if tk, err := s.GetToken(ctx, bound.ID); err != nil || tk.Cluster != "prod" || tk.RevokedAt.IsZero() {
			t.Errorf("bound token: %+v %v", tk, err)
		}
		if _, err := s.GetTokenByHash(ctx, []byte("ho")); err != nil {
			t.Errorf("other token revoked: %v (%d)", err, other.ID)
		}
		as, err := s.ListAgents(ctx)
		if err != nil || len(as) != 1 || as[0].ID != bare.ID {
			t.Errorf("agents after delete: %+v %v", as, err)
		}
		if err := s.DeleteCluster(ctx, c.ID, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete again: %v", err)
		}
		if err := s.DeleteAgent(ctx, bare.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAgent(ctx, bare.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted agent: %v", err)
		}
	})
}

func BenchmarkInsertEvents(b *testing.B) {
	s := openTest(b, EngineSQLite)
	ctx := context.Background()
	const batch = 500
	b.ResetTimer()
	for i := range b.N {
		recs := make([]EventRecord, batch)
		for j := range recs {
			recs[j] = ev(fmt.Sprintf("b%d-%d", i, j), t0.Add(time.Duration(i*batch+j)*time.Millisecond))
		}
		if _, err := s.InsertEvents(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkListEvents(b *testing.B) {
	s := openTest(b, EngineSQLite)
	ctx := context.Background()
	const total = 50000
	for start := 0; start < total; start += 1000 {
		recs := make([]EventRecord, 0, 1000)
		for i := start; i < start+1000; i++ {
			ns := fmt.Sprintf("ns-%d", i%50)
			recs = append(recs, ev(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second), func(e *model.Event) { e.Namespace = ns }))
		}
		if _, err := s.InsertEvents(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	high := model.SeverityHigh
	for _, c := range []struct {
		name string
		f    EventFilter
	}{
		{"newest", EventFilter{}},
		{"namespace", EventFilter{Namespace: "ns-7"}},
		{"severity", EventFilter{MinSeverity: &high, Source: "runtime"}},
		{"text", EventFilter{Query: "e49999"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				if _, err := s.ListEvents(ctx, c.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
