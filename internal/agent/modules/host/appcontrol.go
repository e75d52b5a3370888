package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/host/appcontrol"
	"mamori/internal/host/fanotify"
	"mamori/internal/hostsettings"
)

// AppControl is the application control module: execution (and, for
// interpreters, scripts; for every process, shared objects) of anything
// not on the allow-list is logged or denied. The list is the host group's
// on the server (kept in step with its revision), or the allow-list file
// without one; when there is none yet it is learned first (inventory,
// package managers) and, with a server, sent to the group's list. The
// module never enforces block mode with an empty list: it logs instead,
// and says so.
type AppControl struct {
	base
	inst atomic.Pointer[acInstance]
}

var _ agent.Module = (*AppControl)(nil)

type acInstance struct {
	cfg      hostsettings.AppControlConfig
	mu       sync.Mutex
	enf      *appcontrol.Enforcer
	listener *fanotify.Listener
	revision int // the server list's revision in force (-1: local list)
	// reported are the maintenance-learned digests already saved or sent
	// (learnMu serializes saveLearned).
	learnMu  sync.Mutex
	reported map[string]bool
	learn    *appcontrol.LearnSummary
	note     string // why the mode in force differs from the configured one
	resync   chan struct{}
}

func (m *AppControl) section(s api.HostSettings) any { return s.AppControl }

// Start implements agent.Module.
func (m *AppControl) Start(ctx context.Context, sink agent.Sink) error {
	return startModule(m, ctx, sink)
}

// Stop implements agent.Module.
func (m *AppControl) Stop(ctx context.Context) error { return stopModule(m, ctx) }

func (m *AppControl) start(ctx context.Context, full hostsettings.Config) (func(), error) {
	cfg := full.AppControl
	if err := mkdirFor(filepath.Dir(cfg.AllowListFile)); err != nil {
		return nil, err
	}
	inst := &acInstance{cfg: cfg, revision: -1, reported: map[string]bool{}, resync: make(chan struct{}, 1)}
	m.inst.Store(inst)
	// Learning a list can take minutes: Start does not wait for it, and
	// nothing is enforced until there is a list.
	return background(ctx, m.log, func(ctx context.Context) {
		defer m.inst.CompareAndSwap(inst, nil)
		list, rev, err := m.initialList(ctx, inst)
		if err != nil {
			if ctx.Err() == nil {
				m.fail(err)
			}
			return
		}
		mode := cfg.Mode
		if list.Len() == 0 && mode == appcontrol.ModeBlock {
			mode = appcontrol.ModeLog
			inst.note = "the allow-list is empty: logging instead of blocking"
			m.log.Warn("application control: " + inst.note)
		}
		enf, err := appcontrol.NewEnforcer(list, mode, appcontrol.WithReport(func(d appcontrol.Decision) {
			e := d.Event()
			m.hub.attribute(&e, int(d.PID), "")
			m.emit(e)
		}), appcontrol.WithScripts(cfg.Scripts), appcontrol.WithLibraries(cfg.Libraries), appcontrol.WithLogger(m.log))
		if err != nil {
			m.fail(err)
			return
		}
		if d := time.Until(cfg.MaintenanceUntil); d > 0 {
			enf.MaintenanceFor(d)
			m.log.Info("application control: maintenance mode", "until", cfg.MaintenanceUntil)
		}
		lopts := []fanotify.Option{fanotify.WithLogger(m.log)}
		if len(cfg.ExcludeExe) > 0 {
			lopts = append(lopts, fanotify.WithExcludeExe(cfg.ExcludeExe...))
		}
		l, err := enf.Listen(cfg.Marks, lopts...)
		if err != nil {
			m.fail(fmt.Errorf("listener: %w", err))
			return
		}
		inst.learnMu.Lock()
		for _, e := range list.Entries() {
			if e.Source == appcontrol.SourceMaintenance {
				inst.reported[e.SHA256] = true
			}
		}
		inst.learnMu.Unlock()
		inst.mu.Lock()
		inst.enf, inst.listener, inst.revision = enf, l, rev
		inst.mu.Unlock()
		m.log.Info("application control enforcing", "mode", mode, "entries", list.Len(), "digests", list.Digests(), "revision", rev)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); m.keepLearned(ctx, inst) }()
		if err := l.Run(ctx, enf); err != nil && ctx.Err() == nil {
			m.fail(fmt.Errorf("listener: %w", err))
		}
		wg.Wait()
		// What maintenance mode learned last is kept.
		m.saveLearned(context.WithoutCancel(ctx), inst)
	}), nil
}

func (m *AppControl) fail(err error) {
	m.log.Error("application control stopped", "error", err)
	m.mu.Lock()
	m.state, m.lastErr = "failed", err.Error()
	m.mu.Unlock()
}

// initialList is the list to enforce: the group's (learned first when it
// is empty), or the allow-list file (learned and saved when missing).
func (m *AppControl) initialList(ctx context.Context, inst *acInstance) (*appcontrol.List, int, error) {
	srv := m.hub.deps.Server
	if srv == nil {
		l, err := appcontrol.Load(inst.cfg.AllowListFile)
		if err == nil {
			return l, -1, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("allow-list %s: %w", inst.cfg.AllowListFile, err)
		}
		l, err = m.learn(ctx, inst)
		if err != nil {
			return nil, 0, err
		}
		host, _ := os.Hostname()
		if err := l.Save(inst.cfg.AllowListFile, host); err != nil {
			return nil, 0, err
		}
		return l, -1, nil
	}
	l, rev, err := m.fetch(ctx)
	if err != nil {
		return nil, 0, err
	}
	if l.Len() > 0 {
		return l, rev, nil
	}
	learned, err := m.learn(ctx, inst)
	if err != nil {
		return nil, 0, err
	}
	if learned.Len() > 0 {
		ch, err := srv.ReportLearned(ctx, m.hub.deps.Node, toAPIEntries(learned.Entries()))
		if err != nil {
			return nil, 0, fmt.Errorf("allow-list: sending what was learned: %w", err)
		}
		m.log.Info("application control: learned entries sent to the group's list", "added", ch.Added, "entries", ch.Entries, "revision", ch.Revision)
		return m.fetch(ctx)
	}
	return l, rev, nil
}

// fetch reads the group's list from the server, retrying while the server
// is away (until ctx ends).
func (m *AppControl) fetch(ctx context.Context) (*appcontrol.List, int, error) {
	wait := time.Second
	for {
		al, err := m.hub.deps.Server.HostAllowList(ctx, m.hub.deps.Node)
		if err == nil {
			b, err := json.Marshal(al.List)
			if err != nil {
				return nil, 0, err
			}
			l, err := appcontrol.Import(bytes.NewReader(b))
			if err != nil {
				return nil, 0, fmt.Errorf("the server's allow-list: %w", err)
			}
			return l, al.Revision, nil
		}
		m.log.Warn("allow-list not fetched; retrying", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// learn runs the configured learners into a new list.
func (m *AppControl) learn(ctx context.Context, inst *acInstance) (*appcontrol.List, error) {
	l := appcontrol.NewList()
	total := appcontrol.LearnSummary{}
	for _, how := range inst.cfg.Learn {
		start := time.Now()
		var sum appcontrol.LearnSummary
		var err error
		switch how {
		case hostsettings.LearnInventory:
			sum, err = appcontrol.Inventory(ctx, l, appcontrol.InventoryOptions{})
		case hostsettings.LearnDpkg:
			sum, err = appcontrol.LearnDpkg(ctx, l, appcontrol.LearnOptions{})
		case hostsettings.LearnRPM:
			sum, err = appcontrol.LearnRPM(ctx, l, appcontrol.LearnOptions{}, appcontrol.RPMOptions{})
		}
		if err != nil && (errors.Is(err, appcontrol.ErrNoRPM) || errors.Is(err, os.ErrNotExist)) {
			m.log.Info("application control: learner not available here", "learner", how, "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("learn (%s): %w", how, err)
		}
		m.log.Info("application control: learned", "learner", how, "files", sum.Files, "added", sum.Added, "mismatched", sum.Mismatched,
			"took", time.Since(start).Round(time.Millisecond))
		total.Files += sum.Files
		total.Added += sum.Added
		total.Mismatched += sum.Mismatched
	}
	inst.learn = &total
	return l, nil
}

// keepLearned saves or sends what maintenance mode learns, every 30s.
func (m *AppControl) keepLearned(ctx context.Context, inst *acInstance) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.saveLearned(ctx, inst)
		case <-inst.resync:
			m.saveLearned(ctx, inst)
		}
	}
}

// saveLearned sends the maintenance-learned entries not sent yet to the
// group's list, or saves the list file without a server.
func (m *AppControl) saveLearned(ctx context.Context, inst *acInstance) {
	inst.learnMu.Lock()
	defer inst.learnMu.Unlock()
	inst.mu.Lock()
	enf := inst.enf
	inst.mu.Unlock()
	if enf == nil {
		return
	}
	var fresh []appcontrol.Entry
	for _, e := range enf.List().Entries() {
		if e.Source == appcontrol.SourceMaintenance && !inst.reported[e.SHA256] {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return
	}
	if srv := m.hub.deps.Server; srv != nil {
		if _, err := srv.ReportLearned(ctx, m.hub.deps.Node, toAPIEntries(fresh)); err != nil {
			m.log.Warn("maintenance-learned entries not sent; retrying", "entries", len(fresh), "error", err)
			return
		}
	} else {
		host, _ := os.Hostname()
		if err := enf.List().Save(inst.cfg.AllowListFile, host); err != nil {
			m.log.Error("allow-list not saved", "error", err)
			return
		}
	}
	for _, e := range fresh {
		inst.reported[e.SHA256] = true
	}
	m.log.Info("application control: maintenance-learned entries kept", "entries", len(fresh))
}

// allowListChanged takes the group's list when its revision is not the
// one in force (the maintenance-learned entries are sent first, so that
// the new list has them).
func (m *AppControl) allowListChanged(ctx context.Context, rev int) {
	inst := m.inst.Load()
	if inst == nil || m.hub.deps.Server == nil {
		return
	}
	inst.mu.Lock()
	enf, cur := inst.enf, inst.revision
	inst.mu.Unlock()
	if enf == nil || cur == rev {
		return
	}
	m.saveLearned(ctx, inst)
	l, got, err := m.fetch(ctx)
	if err != nil {
		m.log.Warn("allow-list not updated", "error", err)
		return
	}
	if l.Len() == 0 && inst.cfg.Mode == appcontrol.ModeBlock {
		m.log.Warn("the group's allow-list is empty: keeping the list in force")
		return
	}
	enf.SetList(l)
	inst.mu.Lock()
	inst.revision = got
	inst.mu.Unlock()
	m.log.Info("application control: allow-list updated", "revision", got, "entries", l.Len())
}

func toAPIEntries(es []appcontrol.Entry) []api.AllowListEntry {
	out := make([]api.AllowListEntry, 0, len(es))
	for _, e := range es {
		out = append(out, api.AllowListEntry{SHA256: e.SHA256, Path: e.Path, Kind: string(e.Kind), Source: string(e.Source), Package: e.Package, Added: e.Added})
	}
	return out
}

// AppControlStats are the module's counters.
type AppControlStats struct {
	Status
	Note        string                    `json:"note,omitempty"`
	Maintenance bool                      `json:"maintenance"`
	Entries     int                       `json:"entries"`
	Revision    int                       `json:"revision"`
	Learned     *appcontrol.LearnSummary  `json:"learned,omitempty"`
	Enforcer    *appcontrol.EnforcerStats `json:"enforcer,omitempty"`
	Listener    *fanotify.Stats           `json:"listener,omitempty"`
}

// Stats implements agent.Module.
func (m *AppControl) Stats() any {
	s := AppControlStats{Status: m.status()}
	if inst := m.inst.Load(); inst != nil {
		inst.mu.Lock()
		enf, l := inst.enf, inst.listener
		s.Revision, s.Note, s.Learned = inst.revision, inst.note, inst.learn
		inst.mu.Unlock()
		if enf != nil {
			st := enf.Stats()
			s.Enforcer, s.Maintenance, s.Entries = &st, enf.Maintenance(), enf.List().Len()
			ls := l.Stats()
			s.Listener = &ls
		} else {
			s.State = "learning the allow-list"
		}
	}
	return s
}

// Config implements agent.Module.
func (m *AppControl) Config() any {
	if inst := m.inst.Load(); inst != nil {
		return inst.cfg
	}
	return nil
}
