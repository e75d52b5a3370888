package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/host/firewall"
	"mamori/internal/hostsettings"
	"mamori/internal/model"
)

// Firewall is the host firewall module: the group's ruleset in mamori's own
// nftables table. With a server every change is a safe apply: it is rolled
// back unless the agent reaches its server again, over a new connection,
// within the confirmation timeout. At the agent's start a change an agent
// died before confirming is undone (Recover). In log mode the ruleset is
// installed in its logging form (drops and rejects become logged accepts).
// The table stays when the agent stops (the host stays protected); turning
// the module off removes it.
type Firewall struct {
	base
	recoverOnce sync.Once
	applies     atomic.Uint64
	rollbacks   atomic.Uint64
	mu2         sync.Mutex
	last        firewallState
}

var _ agent.Module = (*Firewall)(nil)

type firewallState struct {
	cfg       *hostsettings.FirewallConfig
	Installed bool      `json:"installed"`
	Rules     int       `json:"rules"`
	Result    string    `json:"result,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

func (m *Firewall) section(s api.HostSettings) any { return s.Firewall }

// Start implements agent.Module.
func (m *Firewall) Start(ctx context.Context, sink agent.Sink) error {
	return startModule(m, ctx, sink)
}

// Stop implements agent.Module: the table stays.
func (m *Firewall) Stop(ctx context.Context) error { return stopModule(m, ctx) }

func (m *Firewall) manager(cfg hostsettings.FirewallConfig) (*firewall.Manager, error) {
	if err := mkdirFor(filepath.Dir(cfg.StateFile)); err != nil {
		return nil, err
	}
	return firewall.New(firewall.WithStateFile(cfg.StateFile), firewall.WithConfirmTimeout(cfg.ConfirmTimeout), firewall.WithLogger(m.log))
}

// recoverAtStart undoes, once per agent process, a change a previous agent
// left unconfirmed.
func (m *Firewall) recoverAtStart(ctx context.Context, mgr *firewall.Manager) {
	m.recoverOnce.Do(func() {
		undone, err := mgr.Recover(ctx)
		switch {
		case err != nil:
			m.log.Error("firewall: recovery at start failed", "error", err)
		case undone:
			m.log.Warn("firewall: a change left unconfirmed by the previous agent was undone")
			m.event("firewall.recovered", model.SeverityMedium, "A firewall change the previous agent did not confirm was undone at start",
				map[string]string{"table": mgr.Table()})
		}
	})
}

// empty reports whether a ruleset installs nothing of use.
func empty(rs firewall.Ruleset) bool {
	return len(rs.Rules) == 0 && rs.InputPolicy != firewall.Drop && rs.OutputPolicy != firewall.Drop && !rs.Established && !rs.BlockLoopback
}

func (m *Firewall) start(ctx context.Context, full hostsettings.Config) (func(), error) {
	cfg := full.Firewall
	mgr, err := m.manager(cfg)
	if err != nil {
		return nil, err
	}
	m.recoverAtStart(ctx, mgr)
	st := firewallState{cfg: &cfg, At: time.Now(), Rules: len(cfg.Ruleset.Rules)}
	defer func() {
		m.mu2.Lock()
		m.last = st
		m.mu2.Unlock()
	}()
	if empty(cfg.Configured) {
		if err := mgr.Remove(ctx); err != nil {
			return nil, err
		}
		st.Result = "no rules: nothing installed"
		return func() {}, nil
	}
	m.applies.Add(1)
	srv := m.hub.deps.Server
	if srv == nil {
		if err := mgr.Apply(ctx, cfg.Ruleset); err != nil {
			return nil, err
		}
		st.Installed, st.Result = true, "applied"
	} else {
		err := mgr.SafeApply(ctx, cfg.Ruleset, srv.CheckConnection)
		if errors.Is(err, firewall.ErrRolledBack) {
			// Not retried: the same ruleset would cut the agent off again.
			// The event reaches the server once the connection is back.
			m.rollbacks.Add(1)
			st.Result = "rolled back: " + err.Error()
			m.log.Error("firewall: change rolled back", "error", err)
			m.event("firewall.rolled-back", model.SeverityHigh,
				"A firewall change was rolled back: the agent could not reach its server after applying it",
				map[string]string{"cause": err.Error(), "rules": fmt.Sprint(len(cfg.Ruleset.Rules)), "mode": cfg.Mode})
			return func() {}, nil
		}
		if err != nil {
			return nil, err
		}
		st.Installed, st.Result = true, "applied and confirmed"
	}
	m.log.Info("firewall: ruleset installed", "rules", len(cfg.Ruleset.Rules), "mode", cfg.Mode, "confirmed", srv != nil)
	m.event("firewall.applied", model.SeverityLow, fmt.Sprintf("Firewall ruleset installed (%d rules, %s mode)", len(cfg.Ruleset.Rules), cfg.Mode),
		map[string]string{"rules": fmt.Sprint(len(cfg.Ruleset.Rules)), "mode": cfg.Mode, "inputPolicy": string(cfg.Configured.InputPolicy),
			"outputPolicy": string(cfg.Configured.OutputPolicy)})
	return func() {}, nil
}

// disabled removes mamori's table when the module is turned off.
func (m *Firewall) disabled(ctx context.Context, full hostsettings.Config) {
	mgr, err := m.manager(full.Firewall)
	if err == nil {
		m.recoverAtStart(ctx, mgr)
		err = mgr.Remove(ctx)
	}
	if err != nil {
		m.log.Error("firewall: table not removed", "error", err)
		return
	}
	m.mu2.Lock()
	m.last = firewallState{At: time.Now(), Result: "off: table removed"}
	m.mu2.Unlock()
}

func (m *Firewall) event(rule string, sev model.Severity, msg string, details map[string]string) {
	m.emit(model.Event{Time: time.Now(), Source: model.SourceHost, Module: hostsettings.Firewall,
		Rule: model.RuleRef{ID: rule}, Severity: sev, Action: model.ActionLog, Message: msg, Details: details})
}

// FirewallStats are the module's counters.
type FirewallStats struct {
	Status
	Applies   uint64        `json:"applies"`
	Rollbacks uint64        `json:"rollbacks"`
	Last      firewallState `json:"last"`
}

// Stats implements agent.Module.
func (m *Firewall) Stats() any {
	m.mu2.Lock()
	last := m.last
	m.mu2.Unlock()
	return FirewallStats{Status: m.status(), Applies: m.applies.Load(), Rollbacks: m.rollbacks.Load(), Last: last}
}

// Config implements agent.Module.
func (m *Firewall) Config() any {
	m.mu2.Lock()
	defer m.mu2.Unlock()
	if m.last.cfg == nil {
		return nil
	}
	return map[string]any{"mode": m.last.cfg.Mode, "ruleset": m.last.cfg.Configured, "installed": m.last.cfg.Ruleset,
		"confirmTimeout": m.last.cfg.ConfirmTimeout.String(), "stateFile": m.last.cfg.StateFile}
}
