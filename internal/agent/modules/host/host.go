// Package host makes the host protection engines modules of mamori agent
// (issue 12): anti-malware (internal/host/antimalware), integrity
// monitoring (internal/host/integrity), log inspection
// (internal/host/loginspect), application control
// (internal/host/appcontrol) and the host firewall
// (internal/host/firewall). Each is an agent.Module: its events go to the
// agent's one sink (model.Event, source host), its counters to the stats
// endpoint.
//
// Settings (api.HostSettings, checked by internal/hostsettings) come from
// the server, per host group, through the sync module (module "hostsync"),
// which polls the agent's host configuration, applies a changed group's
// settings to the modules (a module whose settings changed is restarted
// with them), keeps application control's list in step with the group's,
// and runs the requests an admin makes (restore or delete a quarantined
// file, rebuild the baseline, compare, scan) with their outcome reported.
// Without a server the settings are the configuration file's.
// docs/agent-host.md is the user documentation.
package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/hostsettings"
	"mamori/internal/model"
)

// Server is what the host modules call on mamori server; *client.Client
// implements it.
type Server interface {
	HostConfig(ctx context.Context, node string) (api.HostConfig, error)
	HostAllowList(ctx context.Context, node string) (api.AllowList, error)
	ReportLearned(ctx context.Context, node string, entries []api.AllowListEntry) (api.AllowListChange, error)
	ReportQuarantine(ctx context.Context, node string, rep api.QuarantineReport) error
	ReportBaseline(ctx context.Context, node string, rep api.BaselineReport) error
	HostRequestResult(ctx context.Context, node string, id int64, res api.HostRequestResult) (api.HostRequest, error)
	// CheckConnection reaches the server over a new connection: the
	// firewall's confirmation that a change did not cut the agent off.
	CheckConnection(ctx context.Context) error
}

// Deps is what the modules take from the agent.
type Deps struct {
	// Node names the agent to the server (its registration's node).
	Node string
	// StateDir holds the modules' files by default (baseline, allow-list,
	// firewall state, read positions, quarantine, the last settings from
	// the server): the agent keeps them beside its spool.
	StateDir string
	// Server is nil without a server: the settings are local.
	Server Server
	Logger *slog.Logger
	// ProcDir is the host's /proc ("/proc").
	ProcDir string
	// Containers names the container of a host event's process or file;
	// nil (or one that knows none): the container ID of the process's
	// cgroup only.
	Containers ContainerResolver
	// Runtime takes the runtime rulesets of the host group with each
	// settings version the sync module applies (*agent.Agent implements
	// it); nil: the group's runtimeRulesets are not used.
	Runtime RuntimeRulesets
}

// ContainerResolver attributes a host event's process (by PID) or file (a
// path under /proc/PID/root or a containerd task's rootfs) to its
// container with the runtimes' metadata: ID, name, image, digest, labels,
// pod and namespace (*agent.Runtime implements it: the runtime module's
// resolver).
type ContainerResolver interface {
	ContainerOfPID(pid int) agent.HostAttribution
	ContainerOfPath(path string) agent.HostAttribution
}

// RuntimeRulesets is where the host group's runtime ruleset selection goes:
// the agent, which runs it when the agent's cluster enforces no policy.
type RuntimeRulesets interface {
	SetHostRulesets(group string, version int, refs []api.RuntimeRulesetRef)
}

// New returns the host modules in their start order. Without a server
// they run settings (the configuration file's, checked here: every problem
// is an error naming its field); with one, they wait for their host
// group's settings, which the sync module (last in the list) fetches.
func New(settings api.HostSettings, d Deps) ([]agent.Module, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.ProcDir == "" {
		d.ProcDir = "/proc"
	}
	if d.StateDir == "" {
		d.StateDir = hostsettings.StateDir
	}
	if d.Node == "" {
		return nil, errors.New("host modules: no node name")
	}
	hub := &hub{deps: d}
	hub.antimalware = &Antimalware{base: newBase(hostsettings.Antimalware, hub)}
	hub.integrity = &Integrity{base: newBase(hostsettings.Integrity, hub)}
	hub.loginspect = &LogInspect{base: newBase(hostsettings.LogInspect, hub)}
	hub.appcontrol = &AppControl{base: newBase(hostsettings.AppControl, hub)}
	hub.firewall = &Firewall{base: newBase(hostsettings.Firewall, hub)}
	mods := []agent.Module{hub.firewall, hub.antimalware, hub.integrity, hub.loginspect, hub.appcontrol}
	if d.Server == nil {
		cfg, err := hostsettings.ResolveAt(settings, d.StateDir)
		if err != nil {
			return nil, err
		}
		hub.setLocal(settings, cfg)
		return mods, nil
	}
	if !hostsettings.Equal(settings, api.HostSettings{}) {
		return nil, fmt.Errorf("%w: the host modules' settings come from the server's host group; with a server the configuration file has none", hostsettings.ErrInvalid)
	}
	hub.sync = &Sync{hub: hub}
	return append(mods, hub.sync), nil
}

// hub ties the modules together: their shared dependencies, the settings
// in force, and the sync module.
type hub struct {
	deps        Deps
	antimalware *Antimalware
	integrity   *Integrity
	loginspect  *LogInspect
	appcontrol  *AppControl
	firewall    *Firewall
	sync        *Sync
}

func (h *hub) modules() []module {
	return []module{h.firewall, h.antimalware, h.integrity, h.loginspect, h.appcontrol}
}

// setLocal gives every module its local settings (before Start).
func (h *hub) setLocal(s api.HostSettings, cfg hostsettings.Config) {
	for _, m := range h.modules() {
		m.b().pending = &pending{set: s, cfg: cfg}
	}
}

// module is one engine module.
type module interface {
	agent.Module
	b() *base
	// section is the module's part of the settings, compared to decide
	// whether to restart it.
	section(s api.HostSettings) any
	// start starts an instance for cfg (the module is enabled); it returns
	// once running or failed, and runs until ctx ends.
	start(ctx context.Context, cfg hostsettings.Config) (stop func(), err error)
}

// disabler is a module that undoes something when it is turned off (the
// firewall removes its table).
type disabler interface {
	disabled(ctx context.Context, cfg hostsettings.Config)
}

// pending are settings waiting for Start.
type pending struct {
	set api.HostSettings
	cfg hostsettings.Config
}

// base is what every engine module shares: the sink, the settings in
// force, the running instance and its state, the counters of what it
// emitted.
type base struct {
	name string
	hub  *hub
	log  *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // the agent's, from Start
	sink    agent.Sink
	started bool
	pending *pending
	applied []byte // JSON of the section in force
	enabled bool
	mode    string
	stop    func()
	state   string
	lastErr string
	since   time.Time

	emitted, dropped atomic.Uint64
}

func newBase(name string, h *hub) base {
	return base{name: name, hub: h, log: h.deps.Logger.With("module", name), state: "waiting for settings"}
}

func (b *base) b() *base { return b }

// Name implements agent.Module.
func (b *base) Name() string { return b.name }

// emit sends an event to the agent, counting it.
func (b *base) emit(e model.Event) {
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	if sink == nil {
		b.dropped.Add(1)
		return
	}
	if sink.Emit(e) {
		b.emitted.Add(1)
	} else {
		b.dropped.Add(1)
	}
}

// Status is a module's state, in its stats.
type Status struct {
	State   string    `json:"state"`
	Mode    string    `json:"mode,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Error   string    `json:"error,omitempty"`
	Emitted uint64    `json:"emitted"`
	Dropped uint64    `json:"dropped"`
}

func (b *base) status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Status{State: b.state, Mode: b.mode, Since: b.since, Error: b.lastErr, Emitted: b.emitted.Load(), Dropped: b.dropped.Load()}
}

// startModule implements agent.Module's Start for every engine module:
// the sink is kept and pending (local) settings applied. A module that
// cannot start with local settings fails the agent's start, with why.
func startModule(m module, ctx context.Context, sink agent.Sink) error {
	b := m.b()
	b.mu.Lock()
	b.ctx, b.sink, b.started = ctx, sink, true
	p := b.pending
	b.pending = nil
	b.mu.Unlock()
	if p == nil {
		return nil
	}
	return apply(m, p.set, p.cfg)
}

// stopModule implements agent.Module's Stop.
func stopModule(m module, _ context.Context) error {
	b := m.b()
	b.mu.Lock()
	stop := b.stop
	b.stop, b.started = nil, false
	b.state = "stopped"
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// apply gives a module new settings: nothing happens when its section is
// unchanged; otherwise the running instance stops and, when the module is
// enabled, a new one starts.
func apply(m module, s api.HostSettings, cfg hostsettings.Config) error {
	b := m.b()
	sec, err := json.Marshal(m.section(s))
	if err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	b.mu.Lock()
	if !b.started {
		b.pending = &pending{set: s, cfg: cfg}
		b.mu.Unlock()
		return nil
	}
	if b.applied != nil && bytes.Equal(b.applied, sec) && b.state != "failed" {
		b.mu.Unlock()
		return nil
	}
	stop, ctx := b.stop, b.ctx
	b.stop = nil
	b.applied = sec
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	enabled, mode := moduleEnabled(b.name, cfg)
	b.mu.Lock()
	b.enabled, b.mode, b.since = enabled, mode, time.Now()
	if !enabled {
		b.state, b.lastErr = "off", ""
		b.mu.Unlock()
		if d, ok := m.(disabler); ok {
			d.disabled(ctx, cfg)
		}
		b.log.Info("host module off")
		return nil
	}
	b.state = "starting"
	b.mu.Unlock()
	stop, err = m.start(ctx, cfg)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.state, b.lastErr = "failed", err.Error()
		b.log.Error("host module failed to start", "error", err)
		return fmt.Errorf("%s: %w", b.name, err)
	}
	b.stop, b.state, b.lastErr = stop, "running", ""
	b.log.Info("host module running", "mode", mode)
	return nil
}

// moduleEnabled reads a module's switch and mode from resolved settings.
func moduleEnabled(name string, c hostsettings.Config) (bool, string) {
	switch name {
	case hostsettings.Antimalware:
		return c.Antimalware.Enabled, string(c.Antimalware.Mode)
	case hostsettings.Integrity:
		return c.Integrity.Enabled, api.ModeLog
	case hostsettings.LogInspect:
		return c.LogInspect.Enabled, api.ModeLog
	case hostsettings.AppControl:
		return c.AppControl.Enabled, string(c.AppControl.Mode)
	case hostsettings.Firewall:
		return c.Firewall.Enabled, c.Firewall.Mode
	}
	return false, ""
}

// background runs fn in a goroutine with a context that stop cancels;
// stop waits for fn to return (bounded).
func background(parent context.Context, log *slog.Logger, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			log.Error("host module did not stop within 30s")
		}
	}
}

// mkdirFor makes the directory of a state file (0700).
func mkdirFor(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// attribute sets the container a host event concerns: the process's
// (pid > 0), else the file's (path), through the runtime module's
// resolver when there is one, else the container ID of the process's
// cgroup. A container already set is kept.
func (h *hub) attribute(e *model.Event, pid int, path string) {
	if e.Container != nil {
		return
	}
	if r := h.deps.Containers; r != nil {
		var a agent.HostAttribution
		if pid > 0 {
			a = r.ContainerOfPID(pid)
		}
		if a.Container == nil && path != "" {
			a = r.ContainerOfPath(path)
		}
		if a.Container != nil {
			e.Container = a.Container
			if e.Namespace == "" {
				e.Namespace = a.Namespace
			}
			if e.Pod == "" {
				e.Pod = a.Pod
			}
			return
		}
	}
	e.Container = containerOf(h.deps.ProcDir, pid)
}
