package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/host/integrity"
	"mamori/internal/hostsettings"
)

// Integrity is the integrity monitoring module: a baseline of the rules'
// paths and of the host's objects (packages, users, services, ports,
// kernel modules), compared in real time and on a schedule, every change
// an event with before and after. The baseline is built at the first start
// (and again when the rules change, or on request) and kept in the
// baseline file; its summary is reported to the server.
type Integrity struct {
	base
	inst atomic.Pointer[fimInstance]
	// changes counts the events of every instance.
	changes atomic.Uint64
}

var _ agent.Module = (*Integrity)(nil)

type fimInstance struct {
	cfg   hostsettings.IntegrityConfig
	mu    sync.Mutex
	mon   *integrity.Monitor // nil while the baseline is built
	base  *integrity.Baseline
	built string // how the baseline came: "loaded", "built", "rebuilt (rules changed)"
}

func (m *Integrity) section(s api.HostSettings) any { return s.Integrity }

// Start implements agent.Module.
func (m *Integrity) Start(ctx context.Context, sink agent.Sink) error {
	return startModule(m, ctx, sink)
}

// Stop implements agent.Module.
func (m *Integrity) Stop(ctx context.Context) error { return stopModule(m, ctx) }

// rulesDigest identifies a rule set (and root): a baseline built with
// other rules is built again rather than compared path by path.
func rulesDigest(cfg hostsettings.IntegrityConfig) (string, error) {
	b, err := yaml.Marshal(cfg.Rules)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(cfg.Root))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (m *Integrity) options(cfg hostsettings.IntegrityConfig) []integrity.Option {
	opts := []integrity.Option{integrity.WithLogger(m.log), integrity.WithProcDir(m.hub.deps.ProcDir)}
	if cfg.Root != "/" {
		opts = append(opts, integrity.WithRoot(cfg.Root))
	}
	return opts
}

func (m *Integrity) start(ctx context.Context, full hostsettings.Config) (func(), error) {
	cfg := full.Integrity
	for _, f := range []string{cfg.BaselineFile, cfg.StateFile} {
		if err := mkdirFor(filepath.Dir(f)); err != nil {
			return nil, err
		}
	}
	digest, err := rulesDigest(cfg)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(cfg.Root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("root %s is not a directory", cfg.Root)
	}
	inst := &fimInstance{cfg: cfg}
	m.inst.Store(inst)
	// The baseline may take minutes to build on a large host: Start does
	// not wait for it.
	return background(ctx, m.log, func(ctx context.Context) {
		defer m.inst.CompareAndSwap(inst, nil)
		base, how, err := m.loadOrBuild(ctx, cfg, digest)
		if err != nil {
			if ctx.Err() == nil {
				m.fail(err)
			}
			return
		}
		mopts := append(m.options(cfg), integrity.WithStateFile(cfg.StateFile), integrity.WithWatch(cfg.Watch),
			integrity.WithCompareInterval(cfg.CompareInterval), integrity.WithPollInterval(cfg.PollInterval))
		mon, err := integrity.NewMonitor(cfg.Rules, base, m.changed, mopts...)
		if err != nil {
			m.fail(err)
			return
		}
		inst.mu.Lock()
		inst.mon, inst.base, inst.built = mon, base, how
		inst.mu.Unlock()
		m.log.Info("integrity baseline ready", "how", how, "files", len(base.Files), "objects", len(base.Objects))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); m.reportLoop(ctx, inst) }()
		if err := mon.Run(ctx); err != nil && ctx.Err() == nil {
			m.fail(err)
		}
		wg.Wait()
	}), nil
}

// loadOrBuild loads the baseline file, or builds (and saves) a baseline
// when there is none, it is damaged, or it was built with other rules.
func (m *Integrity) loadOrBuild(ctx context.Context, cfg hostsettings.IntegrityConfig, digest string) (*integrity.Baseline, string, error) {
	digestFile := cfg.BaselineFile + ".rules"
	how := "built"
	if b, err := integrity.Load(cfg.BaselineFile); err == nil {
		if d, _ := os.ReadFile(digestFile); string(d) == digest {
			return b, "loaded", nil
		}
		how = "rebuilt (the rules changed)"
		// The old state compares against the old baseline: start afresh.
		_ = os.Remove(cfg.StateFile)
	} else if !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("integrity baseline not usable: building a new one", "file", cfg.BaselineFile, "error", err)
		how = "rebuilt (the file was not usable)"
		_ = os.Remove(cfg.StateFile)
	}
	start := time.Now()
	b, err := integrity.Build(ctx, cfg.Rules, nil, m.options(cfg)...)
	if err != nil {
		return nil, "", fmt.Errorf("integrity baseline: %w", err)
	}
	if err := m.save(b, cfg, digest); err != nil {
		return nil, "", err
	}
	m.log.Info("integrity baseline built", "files", len(b.Files), "objects", len(b.Objects), "hashed", b.Stats.Hashed,
		"bytes", b.Stats.Bytes, "errors", b.Stats.ErrorCount, "took", time.Since(start).Round(time.Millisecond))
	return b, how, nil
}

func (m *Integrity) save(b *integrity.Baseline, cfg hostsettings.IntegrityConfig, digest string) error {
	if err := b.Save(cfg.BaselineFile); err != nil {
		return fmt.Errorf("integrity baseline: %w", err)
	}
	if err := os.WriteFile(cfg.BaselineFile+".rules", []byte(digest), 0o600); err != nil {
		return fmt.Errorf("integrity baseline: %w", err)
	}
	return nil
}

func (m *Integrity) fail(err error) {
	m.log.Error("integrity monitoring stopped", "error", err)
	m.mu.Lock()
	m.state, m.lastErr = "failed", err.Error()
	m.mu.Unlock()
}

// changed forwards changes as events.
func (m *Integrity) changed(_ context.Context, evs []integrity.Event) {
	for _, e := range evs {
		m.changes.Add(1)
		me := e.Model()
		// A changed file inside a container (a path under /proc/PID/root
		// or a containerd task's rootfs) names its container; host files
		// stay unattributed.
		if me.File != nil && m.hub.deps.Containers != nil {
			if a := m.hub.deps.Containers.ContainerOfPath(me.File.Path); a.Container != nil {
				me.Container, me.Namespace, me.Pod = a.Container, a.Namespace, a.Pod
			}
		}
		m.emit(me)
	}
}

// reportLoop reports the baseline summary to the server at start and
// every few minutes while the monitor's status changes.
func (m *Integrity) reportLoop(ctx context.Context, inst *fimInstance) {
	if m.hub.deps.Server == nil {
		return
	}
	var last api.BaselineReport
	sent := false
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		rep, ok := m.baselineReport(inst)
		if ok && (!sent || rep.Compares != last.Compares || rep.Events != last.Events || rep.Created != last.Created ||
			rep.Overflows != last.Overflows) {
			if err := m.hub.deps.Server.ReportBaseline(ctx, m.hub.deps.Node, rep); err != nil {
				m.log.Warn("baseline report failed", "error", err)
			} else {
				last, sent = rep, true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// baselineReport summarises the baseline and the monitor.
func (m *Integrity) baselineReport(inst *fimInstance) (api.BaselineReport, bool) {
	inst.mu.Lock()
	mon, b := inst.mon, inst.base
	inst.mu.Unlock()
	if mon == nil || b == nil {
		return api.BaselineReport{}, false
	}
	rep := api.BaselineReport{Created: b.Created, Host: b.Host, Root: inst.cfg.Root, Files: len(b.Files), Objects: len(b.Objects),
		Rules: make([]api.BaselineRule, 0, len(b.Rules)), ObjectKinds: map[string]int{}}
	counts := make([]int, len(b.Rules))
	for _, f := range b.Files {
		if int(f.Rule) < len(counts) {
			counts[f.Rule]++
		}
	}
	for i, r := range b.Rules {
		rep.Rules = append(rep.Rules, api.BaselineRule{Name: r.Name, Severity: string(r.Severity), Files: counts[i]})
	}
	for _, o := range b.Objects {
		rep.ObjectKinds[string(o.Kind)]++
	}
	st := mon.Status()
	rep.Backends, rep.Overflows, rep.Compares, rep.Events, rep.LastCompare = st.Backends, st.Overflows, st.Compares, st.Events, st.LastCompare
	if len(rep.Backends) > 4096 {
		rep.Backends = nil
	}
	return rep, true
}

// handle runs a request: rebuild the baseline, or compare now.
func (m *Integrity) handle(ctx context.Context, r api.HostRequest) (string, error) {
	inst := m.inst.Load()
	if inst == nil {
		return "", fmt.Errorf("integrity: %w", errNotRunning)
	}
	inst.mu.Lock()
	mon := inst.mon
	inst.mu.Unlock()
	if mon == nil {
		return "", errors.New("integrity: the baseline is still being built")
	}
	switch r.Kind {
	case api.RequestBaselineRebuild:
		start := time.Now()
		b, err := mon.Rebuild(ctx)
		if err != nil {
			return "", err
		}
		digest, err := rulesDigest(inst.cfg)
		if err != nil {
			return "", err
		}
		if err := m.save(b, inst.cfg, digest); err != nil {
			return "", err
		}
		inst.mu.Lock()
		inst.base, inst.built = b, "rebuilt on request"
		inst.mu.Unlock()
		if m.hub.deps.Server != nil {
			if rep, ok := m.baselineReport(inst); ok {
				if err := m.hub.deps.Server.ReportBaseline(ctx, m.hub.deps.Node, rep); err != nil {
					m.log.Warn("baseline report failed", "error", err)
				}
			}
		}
		return fmt.Sprintf("baseline rebuilt: %d files, %d objects in %s", len(b.Files), len(b.Objects), time.Since(start).Round(time.Millisecond)), nil
	case api.RequestIntegrityCompare:
		before := mon.Status().Events
		if err := mon.CompareNow(ctx); err != nil {
			return "", err
		}
		return fmt.Sprintf("compared: %d changes reported", mon.Status().Events-before), nil
	}
	return "", fmt.Errorf("integrity: no request %q", r.Kind)
}

// IntegrityStats are the module's counters.
type IntegrityStats struct {
	Status
	Changes  uint64            `json:"changes"`
	Baseline string            `json:"baseline,omitempty"`
	Files    int               `json:"files"`
	Objects  int               `json:"objects"`
	Monitor  *integrity.Status `json:"monitor,omitempty"`
}

// Stats implements agent.Module.
func (m *Integrity) Stats() any {
	s := IntegrityStats{Status: m.status(), Changes: m.changes.Load()}
	if inst := m.inst.Load(); inst != nil {
		inst.mu.Lock()
		mon, b := inst.mon, inst.base
		s.Baseline = inst.built
		inst.mu.Unlock()
		if b != nil {
			s.Files, s.Objects = len(b.Files), len(b.Objects)
		}
		if mon != nil {
			st := mon.Status()
			s.Monitor = &st
		} else {
			s.Baseline = "building"
		}
	}
	return s
}

// Config implements agent.Module.
func (m *Integrity) Config() any {
	inst := m.inst.Load()
	if inst == nil {
		return nil
	}
	names := make([]string, 0, len(inst.cfg.Rules.Rules))
	for _, r := range inst.cfg.Rules.Rules {
		names = append(names, r.Name)
	}
	return map[string]any{"rules": names, "watch": inst.cfg.Watch, "compareInterval": inst.cfg.CompareInterval.String(),
		"root": inst.cfg.Root, "baselineFile": inst.cfg.BaselineFile}
}
