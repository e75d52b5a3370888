package host

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
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
// The packets of logging rules (that form's, and rules with log: true) are
// read from an NFLOG group into events (firewall.would-drop in log mode,
// firewall.dropped in block mode ...), bounded per flow and per second.
// The table stays when the agent stops (the host stays protected); turning
// the module off removes it.
type Firewall struct {
	base
	recoverOnce sync.Once
	applies     atomic.Uint64
	rollbacks   atomic.Uint64
	mu2         sync.Mutex
	last        firewallState
	logs        *logStats
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
	m.mu2.Lock()
	prev := m.last
	m.logs = nil // the previous instance's listener is closed
	m.mu2.Unlock()
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
			if prev.Installed && prev.cfg != nil {
				// The previous table is back: its logging rules' packets.
				return m.listenLog(ctx, mgr, *prev.cfg), nil
			}
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
	return m.listenLog(ctx, mgr, cfg), nil
}

// Bounds of the events of logged packets, each with its reason.
const (
	// logFlowWindow: one event per flow (rule, protocol, addresses,
	// destination port; not the source port, so a client's reconnects and
	// a TCP connection's every packet are one flow) per window; the
	// packets in between are counted in the flow's next event's details
	// (packetsSinceLastEvent): a port scan or a chatty client makes a few
	// events, not one per packet.
	logFlowWindow = 10 * time.Second
	// logMaxFlows bounds the flows remembered (memory under a flood of
	// new flows: spoofed sources, a scan): at the bound, flows not seen
	// within the window are forgotten, and all of them when that frees
	// less than a quarter.
	logMaxFlows = 4096
	// logMaxPerSecond bounds the events of all flows together: a flood of
	// new flows makes at most this many events a second (the outputs' queue
	// and the server are not flooded); the rest are counted as suppressed.
	logMaxPerSecond = 50
)

type logFlow struct {
	rule, proto string
	src, dst    netip.Addr
	dport       uint16
}

type flowState struct {
	last       time.Time
	suppressed uint64
}

// logLimiter decides which logged packets become events.
type logLimiter struct {
	window    time.Duration
	maxFlows  int
	perSecond int

	mu       sync.Mutex
	flows    map[logFlow]*flowState
	second   time.Time
	inSecond int
	// Counters (under mu).
	events, byFlow, byRate, forgotten uint64
}

func newLogLimiter(window time.Duration, maxFlows, perSecond int) *logLimiter {
	return &logLimiter{window: window, maxFlows: maxFlows, perSecond: perSecond, flows: map[logFlow]*flowState{}}
}

// allow reports whether the packet of flow k seen at now is an event, and
// how many of the flow's packets were suppressed since its last event.
func (l *logLimiter) allow(k logFlow, now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.flows[k]
	if f == nil {
		if len(l.flows) >= l.maxFlows {
			l.forget(now)
		}
		f = &flowState{}
		l.flows[k] = f
	}
	if !f.last.IsZero() && now.Sub(f.last) < l.window {
		f.suppressed++
		l.byFlow++
		return false, 0
	}
	if now.Sub(l.second) >= time.Second {
		l.second, l.inSecond = now, 0
	}
	if l.inSecond >= l.perSecond {
		f.suppressed++
		l.byRate++
		return false, 0
	}
	l.inSecond++
	l.events++
	f.last = now
	earlier := f.suppressed
	f.suppressed = 0
	return true, earlier
}

// forget makes room: the flows whose window is over (their next packet
// is an event anyway; a count of suppressed packets goes with them), and
// all of them when that frees less than a quarter (a flood of new flows:
// no sweep per packet).
func (l *logLimiter) forget(now time.Time) {
	n := len(l.flows)
	for k, f := range l.flows {
		if now.Sub(f.last) >= l.window {
			delete(l.flows, k)
		}
	}
	if len(l.flows) > l.maxFlows*3/4 {
		clear(l.flows)
	}
	l.forgotten += uint64(n - len(l.flows))
}

func (l *logLimiter) stats(st *logStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st.Events, st.SuppressedByFlow, st.SuppressedByRate, st.Flows, st.FlowsForgotten = l.events, l.byFlow, l.byRate, len(l.flows), l.forgotten
}

// logStats count the logging rules' packets.
type logStats struct {
	Group     uint16 `json:"group"`
	Listening bool   `json:"listening"`
	Error     string `json:"error,omitempty"`
	// Events emitted; packets suppressed by the flow window and by the
	// per-second bound; flows remembered and forgotten at the bound.
	Events           uint64            `json:"events"`
	SuppressedByFlow uint64            `json:"suppressedByFlow"`
	SuppressedByRate uint64            `json:"suppressedByRate"`
	Flows            int               `json:"flows"`
	FlowsForgotten   uint64            `json:"flowsForgotten"`
	Listener         firewall.LogStats `json:"listener"`
	limiter          *logLimiter
	listener         *firewall.LogListener
}

// listenLog reads the packets of the installed ruleset's logging rules
// (log mode: what block mode would drop or reject; rules with log: true)
// from the NFLOG group and emits them as events, bounded per flow and per
// second (logLimiter). It returns the listener's stop function (a no-op
// when there is nothing to listen to or the kernel refuses: said in the
// log and the stats, the ruleset stays installed).
func (m *Firewall) listenLog(ctx context.Context, mgr *firewall.Manager, cfg hostsettings.FirewallConfig) func() {
	logging := map[string]firewall.Rule{}
	for _, r := range cfg.Ruleset.Rules {
		if r.Log {
			logging[r.Name] = r
		}
	}
	st := &logStats{Group: cfg.LogGroup}
	m.mu2.Lock()
	m.logs = st
	m.mu2.Unlock()
	if len(logging) == 0 || cfg.LogGroup == 0 {
		return func() {}
	}
	lim := newLogLimiter(logFlowWindow, logMaxFlows, logMaxPerSecond)
	verdicts := logVerdicts(cfg, logging)
	lctx, cancel := context.WithCancel(ctx)
	lis, err := mgr.ListenLog(lctx, cfg.LogGroup, func(r firewall.LogRecord) {
		proto := firewall.ProtocolName(r.Protocol)
		ok, earlier := lim.allow(logFlow{rule: r.Rule, proto: proto, src: r.Src, dst: r.Dst, dport: r.DstPort}, time.Now())
		if !ok {
			return
		}
		v, known := verdicts[r.Rule]
		if !known {
			// Not a rule of this ruleset (a table another agent left):
			// reported as what it says, accepted.
			v = firewall.Rule{Name: r.Rule, Action: firewall.Accept}
		}
		m.packetEvent(cfg.Mode, v, r, proto, earlier)
	})
	if err != nil {
		cancel()
		m.log.Error("firewall: logged packets not read: no events for them", "group", cfg.LogGroup, "error", err)
		m.mu2.Lock()
		st.Error = err.Error()
		m.mu2.Unlock()
		return func() {}
	}
	m.log.Info("firewall: reading logged packets", "group", cfg.LogGroup, "rules", len(logging))
	m.mu2.Lock()
	st.Listening, st.limiter, st.listener = true, lim, lis
	m.mu2.Unlock()
	return func() {
		lis.Close() // synchronous: the next instance binds the group again
		cancel()
		m.mu2.Lock()
		st.Listening = false
		m.mu2.Unlock()
	}
}

// logVerdicts maps each logging rule of the installed ruleset to the
// configured rule it stands for: its action is what block mode does with
// the packet (the logging form of a drop rule is an accept; the policy's
// logging rules, hostsettings.LogOnly, stand for the drop policy).
func logVerdicts(cfg hostsettings.FirewallConfig, logging map[string]firewall.Rule) map[string]firewall.Rule {
	configured := map[string]firewall.Rule{}
	for _, r := range cfg.Configured.Rules {
		configured[r.Name] = r
	}
	out := make(map[string]firewall.Rule, len(logging))
	for name, r := range logging {
		switch c, ok := configured[name]; {
		case ok:
			out[name] = c
		case r.Direction == firewall.In && cfg.Configured.InputPolicy == firewall.Drop && r.Action == firewall.Accept:
			out[name] = firewall.Rule{Name: name, Direction: firewall.In, Action: firewall.Drop}
		case r.Direction == firewall.Out && cfg.Configured.OutputPolicy == firewall.Drop && r.Action == firewall.Accept:
			out[name] = firewall.Rule{Name: name, Direction: firewall.Out, Action: firewall.Drop}
		default:
			out[name] = r
		}
	}
	return out
}

// packetEvent emits one logged packet: in log mode what block mode would
// have done (firewall.would-drop, would-reject); in block mode the rule's
// verdict (firewall.dropped, rejected, accepted).
func (m *Firewall) packetEvent(mode string, rule firewall.Rule, r firewall.LogRecord, proto string, earlier uint64) {
	id, act, sev := "firewall.accepted", model.ActionLog, model.SeverityNegligible
	switch action := rule.Action; {
	case mode == api.ModeLog && action == firewall.Drop:
		id, sev = "firewall.would-drop", model.SeverityLow
	case mode == api.ModeLog && action == firewall.Reject:
		id, sev = "firewall.would-reject", model.SeverityLow
	case action == firewall.Drop:
		id, act, sev = "firewall.dropped", model.ActionBlock, model.SeverityLow
	case action == firewall.Reject:
		id, act, sev = "firewall.rejected", model.ActionBlock, model.SeverityLow
	}
	dir := "inbound"
	if rule.Direction == firewall.Out {
		dir = "outbound"
	}
	what := strings.TrimPrefix(id, "firewall.")
	msg := fmt.Sprintf("Firewall rule %s: %s %s %s packet %s", rule.Name, strings.ReplaceAll(what, "-", " "), dir, proto, flowText(r))
	details := map[string]string{"rule": rule.Name, "mode": mode, "direction": dir, "length": fmt.Sprint(r.Length)}
	if r.InDev != 0 {
		details["inIfindex"] = fmt.Sprint(r.InDev)
	}
	if r.OutDev != 0 {
		details["outIfindex"] = fmt.Sprint(r.OutDev)
	}
	if earlier > 0 {
		details["packetsSinceLastEvent"] = fmt.Sprint(earlier)
	}
	e := model.Event{Time: r.Time, Source: model.SourceHost, Module: hostsettings.Firewall,
		Rule: model.RuleRef{ID: id, Title: rule.Name}, Severity: sev, Action: act, Message: msg, Details: details,
		Network: &model.NetworkRef{Protocol: proto, SrcAddr: r.Src.String(), SrcPort: int(r.SrcPort), DstAddr: r.Dst.String(), DstPort: int(r.DstPort)}}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m.emit(e)
}

func flowText(r firewall.LogRecord) string {
	if r.SrcPort != 0 || r.DstPort != 0 {
		return netip.AddrPortFrom(r.Src, r.SrcPort).String() + " -> " + netip.AddrPortFrom(r.Dst, r.DstPort).String()
	}
	return fmt.Sprintf("%s -> %s", r.Src, r.Dst)
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
	m.logs = nil
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
	// Logged are the logging rules' packets read from the NFLOG group.
	Logged *logStats `json:"logged,omitempty"`
}

// Stats implements agent.Module.
func (m *Firewall) Stats() any {
	m.mu2.Lock()
	last := m.last
	var logs *logStats
	if m.logs != nil {
		l := *m.logs
		logs = &l
	}
	m.mu2.Unlock()
	if logs != nil {
		if logs.limiter != nil {
			logs.limiter.stats(logs)
		}
		if logs.listener != nil {
			logs.Listener = logs.listener.Stats()
		}
	}
	return FirewallStats{Status: m.status(), Applies: m.applies.Load(), Rollbacks: m.rollbacks.Load(), Last: last, Logged: logs}
}

// Config implements agent.Module.
func (m *Firewall) Config() any {
	m.mu2.Lock()
	defer m.mu2.Unlock()
	if m.last.cfg == nil {
		return nil
	}
	return map[string]any{"mode": m.last.cfg.Mode, "ruleset": m.last.cfg.Configured, "installed": m.last.cfg.Ruleset,
		"confirmTimeout": m.last.cfg.ConfirmTimeout.String(), "stateFile": m.last.cfg.StateFile, "logGroup": m.last.cfg.LogGroup}
}
