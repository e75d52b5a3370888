package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/hostsettings"
	"mamori/internal/model"
)

// sink collects events.
type sink struct {
	mu sync.Mutex
	ev []model.Event
}

func (s *sink) Emit(e model.Event) bool {
	s.mu.Lock()
	s.ev = append(s.ev, e)
	s.mu.Unlock()
	return true
}

func (s *sink) find(pred func(model.Event) bool) *model.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.ev {
		if pred(s.ev[i]) {
			e := s.ev[i]
			return &e
		}
	}
	return nil
}

func (s *sink) wait(t *testing.T, what string, d time.Duration, pred func(model.Event) bool) model.Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if e := s.find(pred); e != nil {
			return *e
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("no event %s within %s; got %d events: %+v", what, d, len(s.ev), s.ev)
	return model.Event{}
}

func names(ms []agent.Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name())
	}
	return out
}

func off() *bool { b := false; return &b }

// TestDefaults: with no settings and no server every module but
// application control is on in log mode (the standalone defaults); with a
// server the modules wait for their group's settings and the sync module
// comes last; local settings with a server, and bad ones, are refused.
func TestDefaults(t *testing.T) {
	ms, err := New(api.HostSettings{}, Deps{Node: "n1", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(ms), ","); got != "firewall,antimalware,integrity,loginspect,appcontrol" {
		t.Errorf("modules %s", got)
	}
	for _, m := range ms {
		p := m.(module).b().pending
		if p == nil {
			t.Fatalf("%s: no local settings", m.Name())
		}
		on, mode := moduleEnabled(m.Name(), p.cfg)
		if want := m.Name() != hostsettings.AppControl; on != want || mode != api.ModeLog {
			t.Errorf("%s: enabled %v mode %s", m.Name(), on, mode)
		}
	}
	withServer, err := New(api.HostSettings{}, Deps{Node: "n1", StateDir: t.TempDir(), Server: nopServer{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(withServer); got[len(got)-1] != "hostsync" || withServer[0].(module).b().pending != nil {
		t.Errorf("with a server: %v", got)
	}
	if _, err := New(api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "block"}}, Deps{Node: "n1", Server: nopServer{}}); !errors.Is(err, hostsettings.ErrInvalid) {
		t.Errorf("local settings with a server: %v", err)
	}
	_, err = New(api.HostSettings{Antimalware: api.AntimalwareSettings{Mode: "kill"}, Integrity: api.IntegritySettings{Watch: "x"}}, Deps{Node: "n1"})
	if err == nil || !strings.Contains(err.Error(), "antimalware.mode") || !strings.Contains(err.Error(), "integrity.watch") {
		t.Errorf("bad settings: %v", err)
	}
	if _, err := New(api.HostSettings{}, Deps{}); err == nil {
		t.Error("no node accepted")
	}
}

// TestIntegrityModule runs the integrity module on a temporary root (no
// privileges: inotify): the baseline is built at start, a changed file is
// an event with before and after, a rebuild on request makes the change
// the baseline, and a restart loads the saved baseline.
func TestIntegrityModule(t *testing.T) {
	root := t.TempDir()
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc", "app.conf")
	if err := os.WriteFile(conf, []byte("a=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := api.HostSettings{
		Antimalware: api.AntimalwareSettings{Enabled: off()}, LogInspect: api.LogInspectSettings{Enabled: off()},
		Firewall: api.FirewallSettings{Enabled: off()},
		Integrity: api.IntegritySettings{DefaultRules: off(), Root: root, Watch: "inotify", PollInterval: "1h",
			Rules: []api.IntegrityRule{{Name: "etc", Severity: "high", Paths: []string{"/etc"}}}},
	}
	ms, err := New(set, Deps{Node: "n1", StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	fim := ms[2].(*Integrity)
	s := &sink{}
	ctx := context.Background()
	if err := fim.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer fim.Stop(ctx)
	waitState(t, func() bool { st := fim.Stats().(IntegrityStats); return st.Monitor != nil && st.Monitor.Compares > 0 })
	if _, err := os.Stat(filepath.Join(state, "integrity.fim")); err != nil {
		t.Fatalf("baseline not saved: %v", err)
	}
	if err := os.WriteFile(conf, []byte("a=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := s.wait(t, "for the changed file", 10*time.Second, func(e model.Event) bool {
		return e.Module == "integrity" && e.File != nil && e.File.Path == "/etc/app.conf"
	})
	if e.Change == nil || e.Change.Before["sha256"] == "" || e.Change.Before["sha256"] == e.Change.After["sha256"] || e.Rule.ID != "integrity.etc" ||
		e.Source != model.SourceHost {
		t.Errorf("event: %+v", e)
	}
	msg, err := fim.handle(ctx, api.HostRequest{Kind: api.RequestBaselineRebuild})
	if err != nil || !strings.Contains(msg, "baseline rebuilt") {
		t.Fatalf("rebuild: %q %v", msg, err)
	}
	if _, err := fim.handle(ctx, api.HostRequest{Kind: api.RequestIntegrityCompare}); err != nil {
		t.Fatal(err)
	}
	if err := fim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A restart with the same rules loads the saved baseline.
	ms, _ = New(set, Deps{Node: "n1", StateDir: state})
	fim2 := ms[2].(*Integrity)
	if err := fim2.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer fim2.Stop(ctx)
	waitState(t, func() bool { st := fim2.Stats().(IntegrityStats); return st.Baseline == "loaded" })
	// Other rules: the baseline is built again.
	set.Integrity.Rules[0].Severity = "critical"
	ms, _ = New(set, Deps{Node: "n1", StateDir: state})
	fim3 := ms[2].(*Integrity)
	if err := fim2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fim3.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer fim3.Stop(ctx)
	waitState(t, func() bool {
		st := fim3.Stats().(IntegrityStats)
		return strings.HasPrefix(st.Baseline, "rebuilt (the rules changed)")
	})
}

// TestLogInspectModule: sshd failures appended to a syslog file are one
// brute-force detection, in the agent's envelope.
func TestLogInspectModule(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	set := api.HostSettings{
		Antimalware: api.AntimalwareSettings{Enabled: off()}, Integrity: api.IntegritySettings{Enabled: off()},
		Firewall:   api.FirewallSettings{Enabled: off()},
		LogInspect: api.LogInspectSettings{Journal: "off", Sources: []api.LogSource{{Name: "auth", Format: "syslog", Paths: []string{logf}}}},
	}
	ms, err := New(set, Deps{Node: "n1", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	li := ms[3].(*LogInspect)
	s := &sink{}
	ctx := context.Background()
	if err := li.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer li.Stop(ctx)
	waitState(t, func() bool { return li.Stats().(LogInspectStats).State == "running" })
	time.Sleep(300 * time.Millisecond) // the follower opens the file at its end
	f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 12 {
		fmt.Fprintf(f, "%s vm sshd[%d]: Failed password for root from 192.0.2.7 port %d ssh2\n", now.Format("2006-01-02T15:04:05.000000-07:00"), 4000+i, 50000+i)
	}
	f.Close()
	e := s.wait(t, "for the SSH brute force", 15*time.Second, func(e model.Event) bool {
		return e.Module == "loginspect" && strings.Contains(strings.ToLower(e.Rule.ID), "brute")
	})
	if e.Source != model.SourceHost || e.Severity < model.SeverityMedium {
		t.Errorf("event: %+v", e)
	}
}

func waitState(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("state not reached within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nopServer stands for a server in the tests of New: it is never called.
type nopServer struct{ Server }

// groupServer answers the host configuration of one group.
type groupServer struct {
	Server
	hc api.HostConfig
}

func (g groupServer) HostConfig(context.Context, string) (api.HostConfig, error) { return g.hc, nil }

type rulesetsRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *rulesetsRecorder) SetHostRulesets(group string, version int, refs []api.RuntimeRulesetRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := fmt.Sprintf("%s v%d:", group, version)
	for _, x := range refs {
		s += " " + x.Ruleset + "/" + string(x.Rules["terminal-shell-in-container"])
	}
	r.calls = append(r.calls, s)
}

func (r *rulesetsRecorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// TestSyncGivesRuntimeRulesets: the host group's runtime rulesets reach
// the agent with the settings version (from the server, then from the
// cache at the next start, before the server answers).
func TestSyncGivesRuntimeRulesets(t *testing.T) {
	dir := t.TempDir()
	set := api.HostSettings{PollInterval: "1s", Antimalware: api.AntimalwareSettings{Enabled: off()},
		Integrity: api.IntegritySettings{Enabled: off()}, LogInspect: api.LogInspectSettings{Enabled: off()},
		Firewall:        api.FirewallSettings{Enabled: off()},
		RuntimeRulesets: []api.RuntimeRulesetRef{{Ruleset: "default", Rules: map[string]model.Action{"terminal-shell-in-container": model.ActionTerminate}}}}
	srv := groupServer{hc: api.HostConfig{Node: "n1", Group: "bare", GroupID: 2, SettingsVersion: 7, Settings: set, PollInterval: "1s"}}
	rec := &rulesetsRecorder{}
	ms, err := New(api.HostSettings{}, Deps{Node: "n1", StateDir: dir, Server: srv, Runtime: rec})
	if err != nil {
		t.Fatal(err)
	}
	sy := ms[len(ms)-1]
	ctx := context.Background()
	if err := sy.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.last()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = sy.Stop(ctx)
	if got := rec.last(); len(got) != 1 || got[0] != "bare v7: default/terminate" {
		t.Fatalf("from the server: %q", got)
	}
	// The next start: the cached settings first, while the server is away.
	rec2 := &rulesetsRecorder{}
	ms, err = New(api.HostSettings{}, Deps{Node: "n1", StateDir: dir, Server: groupServer{hc: api.HostConfig{}}, Runtime: rec2})
	if err != nil {
		t.Fatal(err)
	}
	sy = ms[len(ms)-1]
	if err := sy.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_ = sy.Stop(ctx)
	if got := rec2.last(); len(got) == 0 || got[0] != "bare v7: default/terminate" {
		t.Fatalf("from the cache: %q", got)
	}
}

// fakeContainers names one container by PID and one by path.
type fakeContainers struct{}

func (fakeContainers) ContainerOfPID(pid int) agent.HostAttribution {
	if pid == 42 {
		return agent.HostAttribution{Container: &model.ContainerRef{ID: "c42", Name: "web", Image: "shop/web:1"}, Namespace: "shop", Pod: "web-1"}
	}
	return agent.HostAttribution{}
}

func (fakeContainers) ContainerOfPath(path string) agent.HostAttribution {
	if strings.HasPrefix(path, "/proc/7/root/") {
		return agent.HostAttribution{Container: &model.ContainerRef{ID: "c7", Name: "db", Image: "pg:16"}}
	}
	return agent.HostAttribution{}
}

// TestAttribution: a host event is attributed with the runtime's names
// (by the process, else by the file's path), keeps a container already
// set, and without a resolver falls back to the cgroup's container ID.
func TestAttribution(t *testing.T) {
	h := &hub{deps: Deps{Containers: fakeContainers{}, ProcDir: t.TempDir()}}
	e := model.Event{}
	h.attribute(&e, 42, "/srv/x")
	if e.Container == nil || e.Container.Name != "web" || e.Container.Image != "shop/web:1" || e.Namespace != "shop" || e.Pod != "web-1" {
		t.Errorf("by PID: %+v %q %q", e.Container, e.Namespace, e.Pod)
	}
	e = model.Event{}
	h.attribute(&e, 1000, "/proc/7/root/srv/eicar.com")
	if e.Container == nil || e.Container.ID != "c7" || e.Container.Image != "pg:16" {
		t.Errorf("by path: %+v", e.Container)
	}
	e = model.Event{Container: &model.ContainerRef{ID: "set"}}
	h.attribute(&e, 42, "")
	if e.Container.ID != "set" {
		t.Errorf("a container already set was replaced: %+v", e.Container)
	}
	// No resolver: the cgroup's ID.
	proc := t.TempDir()
	id := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(proc, "5"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "5", "cgroup"), []byte("0::/system.slice/docker-"+id+".scope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h = &hub{deps: Deps{ProcDir: proc}}
	e = model.Event{}
	h.attribute(&e, 5, "")
	if e.Container == nil || e.Container.ID != id || e.Container.Name != "" {
		t.Errorf("cgroup fallback: %+v", e.Container)
	}
	e = model.Event{}
	h.attribute(&e, 6, "/srv/x")
	if e.Container != nil {
		t.Errorf("a host process: %+v", e.Container)
	}
}
