package host

import (
	"net/netip"
	"testing"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/host/firewall"
	"mamori/internal/hostsettings"
	"mamori/internal/model"
)

// TestLogLimiter: one event per flow per window, the packets in between
// counted into the flow's next event; at most perSecond events a second
// over all flows; at the flow bound, expired flows are forgotten first.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(10*time.Second, 8, 3)
	t0 := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	flow := func(i int) logFlow {
		return logFlow{rule: "r", proto: "tcp", src: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), dst: netip.MustParseAddr("192.0.2.200"), dport: 22}
	}
	a := flow(1)
	if ok, n := l.allow(a, t0); !ok || n != 0 {
		t.Fatalf("first packet: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := l.allow(a, t0.Add(time.Duration(i+1)*time.Second)); ok {
			t.Fatalf("packet %d within the window is an event", i+2)
		}
	}
	if ok, n := l.allow(a, t0.Add(10*time.Second)); !ok || n != 5 {
		t.Fatalf("after the window: %v, %d earlier packets, want 5", ok, n)
	}
	// Another destination port is another flow.
	b := a
	b.dport = 23
	if ok, _ := l.allow(b, t0.Add(10*time.Second)); !ok {
		t.Fatal("another port of the same source: suppressed")
	}
	// The per-second bound over new flows: 3 events in second t1 (one
	// already spent by b above at t0+10s), the rest suppressed and
	// counted into each flow's first event once the bound allows it.
	t1 := t0.Add(10 * time.Second)
	allowed := 0
	for i := 10; i < 14; i++ {
		if ok, _ := l.allow(flow(i), t1.Add(100*time.Millisecond)); ok {
			allowed++
		}
	}
	if allowed != 1 { // a at t0+10s and b already took 2 of the 3
		t.Errorf("%d of 4 new flows allowed in a second with 1 left", allowed)
	}
	if ok, n := l.allow(flow(13), t1.Add(1100*time.Millisecond)); !ok || n != 1 {
		t.Errorf("a rate-suppressed flow the next second: %v, %d earlier", ok, n)
	}
	var st logStats
	l.stats(&st)
	if st.Events != 5 || st.SuppressedByFlow != 5 || st.SuppressedByRate != 3 || st.Flows != 6 {
		t.Errorf("stats %+v", st)
	}
	// The flow bound (8): 2 more fill it; the next new flow, a window
	// later, forgets the expired ones (all 8) instead of growing.
	l.allow(flow(20), t1.Add(3*time.Second))
	l.allow(flow(21), t1.Add(3*time.Second))
	if ok, _ := l.allow(flow(30), t1.Add(30*time.Second)); !ok {
		t.Error("a new flow at the bound: suppressed")
	}
	l.stats(&st)
	if st.Flows != 1 || st.FlowsForgotten != 8 {
		t.Errorf("at the bound: %d flows, %d forgotten, want 1 and 8", st.Flows, st.FlowsForgotten)
	}
	// A flood of new flows within the window: when forgetting the expired
	// ones frees less than a quarter, all are forgotten (memory bounded).
	l2 := newLogLimiter(10*time.Second, 8, 1000)
	for i := range 100 {
		l2.allow(flow(i), t0.Add(time.Duration(i)*time.Millisecond))
		if len(l2.flows) > 8 {
			t.Fatalf("%d flows remembered, bound 8", len(l2.flows))
		}
	}
}

// TestLogEvents: what the module makes of the NFLOG records of a resolved
// ruleset, in log mode (the logging form: would-drop, would-reject, the
// drop policy's logging rule as would-drop, an accept rule with log as
// accepted) and in block mode (dropped, rejected): the rule, direction,
// protocol, addresses and ports.
func TestLogEvents(t *testing.T) {
	settings := api.FirewallSettings{Ruleset: api.FirewallRuleset{InputPolicy: "drop", Rules: []api.FirewallRule{
		{Name: "block-9000", Direction: "in", Action: "drop", Protocol: "tcp", DestinationPorts: []string{"9000"}},
		{Name: "no-dns", Direction: "out", Action: "reject", Protocol: "udp", DestinationPorts: []string{"53"}},
		{Name: "ssh", Direction: "in", Action: "accept", Protocol: "tcp", DestinationPorts: []string{"22"}, Log: true},
	}}}
	rec := func(rule string, proto uint8, src, dst string, sport, dport uint16) firewall.LogRecord {
		return firewall.LogRecord{Rule: rule, Time: time.Unix(1700000000, 0), InDev: 2, Protocol: proto,
			Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport, Length: 60}
	}
	type want struct {
		id, title, dir, proto, src, dst string
		sport, dport                    int
		action                          model.Action
	}
	for _, c := range []struct {
		mode string
		r    firewall.LogRecord
		want want
	}{
		{"log", rec("block-9000", 6, "192.0.2.2", "192.0.2.1", 40000, 9000), want{"firewall.would-drop", "block-9000", "inbound", "tcp", "192.0.2.2", "192.0.2.1", 40000, 9000, model.ActionLog}},
		{"log", rec("no-dns", 17, "2001:db8::1", "2001:db8::53", 5555, 53), want{"firewall.would-reject", "no-dns", "outbound", "udp", "2001:db8::1", "2001:db8::53", 5555, 53, model.ActionLog}},
		{"log", rec("policy-in", 1, "192.0.2.9", "192.0.2.1", 0, 0), want{"firewall.would-drop", "policy-in", "inbound", "icmp", "192.0.2.9", "192.0.2.1", 0, 0, model.ActionLog}},
		{"log", rec("ssh", 6, "192.0.2.2", "192.0.2.1", 40001, 22), want{"firewall.accepted", "ssh", "inbound", "tcp", "192.0.2.2", "192.0.2.1", 40001, 22, model.ActionLog}},
		{"block", rec("ssh", 6, "192.0.2.2", "192.0.2.1", 40001, 22), want{"firewall.accepted", "ssh", "inbound", "tcp", "192.0.2.2", "192.0.2.1", 40001, 22, model.ActionLog}},
	} {
		s := settings
		s.Mode = c.mode
		cfg, err := hostsettings.Resolve(api.HostSettings{Firewall: s})
		if err != nil {
			t.Fatal(err)
		}
		got := logEvent(t, cfg.Firewall, c.r)
		n := got.Network
		g := want{got.Rule.ID, got.Rule.Title, got.Details["direction"], n.Protocol, n.SrcAddr, n.DstAddr, n.SrcPort, n.DstPort, got.Action}
		if g != c.want || got.Details["mode"] != c.mode || got.Details["rule"] != c.want.title || got.Module != hostsettings.Firewall ||
			got.Source != model.SourceHost || !got.Time.Equal(c.r.Time) || got.Details["inIfindex"] != "2" {
			t.Errorf("%s %s: %+v\n%+v, want %+v", c.mode, c.r.Rule, got, g, c.want)
		}
	}
	// Block mode: the rules with log: true are drops and rejects.
	s := settings
	s.Mode = "block"
	s.Ruleset.Rules = append([]api.FirewallRule(nil), s.Ruleset.Rules...)
	s.Ruleset.Rules[0].Log, s.Ruleset.Rules[1].Log = true, true
	cfg, err := hostsettings.Resolve(api.HostSettings{Firewall: s})
	if err != nil {
		t.Fatal(err)
	}
	if e := logEvent(t, cfg.Firewall, rec("block-9000", 6, "192.0.2.2", "192.0.2.1", 40000, 9000)); e.Rule.ID != "firewall.dropped" || e.Action != model.ActionBlock ||
		e.Message != "Firewall rule block-9000: dropped inbound tcp packet 192.0.2.2:40000 -> 192.0.2.1:9000" {
		t.Errorf("block mode drop: %+v", e)
	}
	if e := logEvent(t, cfg.Firewall, rec("no-dns", 17, "2001:db8::1", "2001:db8::53", 5555, 53)); e.Rule.ID != "firewall.rejected" || e.Action != model.ActionBlock ||
		e.Message != "Firewall rule no-dns: rejected outbound udp packet [2001:db8::1]:5555 -> [2001:db8::53]:53" {
		t.Errorf("block mode reject: %+v", e)
	}
}

// logEvent runs one record through the module's mapping (logVerdicts,
// packetEvent) into a sink.
func logEvent(t *testing.T, cfg hostsettings.FirewallConfig, r firewall.LogRecord) model.Event {
	t.Helper()
	fw, s := testFirewall(t)
	logging := map[string]firewall.Rule{}
	for _, x := range cfg.Ruleset.Rules {
		if x.Log {
			logging[x.Name] = x
		}
	}
	v, ok := logVerdicts(cfg, logging)[r.Rule]
	if !ok {
		t.Fatalf("%s is not a logging rule of %+v", r.Rule, cfg.Ruleset.Rules)
	}
	fw.packetEvent(cfg.Mode, v, r, firewall.ProtocolName(r.Protocol), 0)
	if len(s.ev) != 1 || s.ev[0].Network == nil {
		t.Fatalf("events %+v", s.ev)
	}
	return s.ev[0]
}

func testFirewall(t testing.TB) (*Firewall, *sink) {
	ms, err := New(api.HostSettings{}, Deps{Node: "n1", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fw := ms[0].(*Firewall)
	s := &sink{}
	fw.sink = s
	return fw, s
}

// BenchmarkLogPacket is the module's per-record path after the listener's
// (BenchmarkLogRecord in internal/host/firewall): the limiter, and for
// the packets that become events the verdict and the event itself.
func BenchmarkLogPacket(b *testing.B) {
	cfg, err := hostsettings.Resolve(api.HostSettings{Firewall: api.FirewallSettings{Ruleset: api.FirewallRuleset{Rules: []api.FirewallRule{
		{Name: "block-9000", Direction: "in", Action: "drop", Protocol: "tcp", DestinationPorts: []string{"9000"}}}}}})
	if err != nil {
		b.Fatal(err)
	}
	logging := map[string]firewall.Rule{"block-9000": cfg.Firewall.Ruleset.Rules[0]}
	verdicts := logVerdicts(cfg.Firewall, logging)
	r := firewall.LogRecord{Rule: "block-9000", Time: time.Now(), InDev: 2, Protocol: 6, Src: netip.MustParseAddr("192.0.2.2"),
		Dst: netip.MustParseAddr("192.0.2.1"), SrcPort: 40000, DstPort: 9000, Length: 60}
	run := func(b *testing.B, lim *logLimiter, vary bool) {
		fw, _ := testFirewall(b)
		n := 0
		fw.sink = agent.SinkFunc(func(model.Event) bool { n++; return true })
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rec := r
			if vary {
				i++
				rec.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			}
			proto := firewall.ProtocolName(rec.Protocol)
			if ok, earlier := lim.allow(logFlow{rule: rec.Rule, proto: proto, src: rec.Src, dst: rec.Dst, dport: rec.DstPort}, time.Now()); ok {
				fw.packetEvent(cfg.Firewall.Mode, verdicts[rec.Rule], rec, proto, earlier)
			}
		}
		b.ReportMetric(float64(n), "events")
	}
	b.Run("one flow (suppressed)", func(b *testing.B) { run(b, newLogLimiter(logFlowWindow, logMaxFlows, logMaxPerSecond), false) })
	b.Run("new flows (rate bound)", func(b *testing.B) { run(b, newLogLimiter(logFlowWindow, logMaxFlows, logMaxPerSecond), true) })
	b.Run("new flows (every packet an event)", func(b *testing.B) { run(b, newLogLimiter(logFlowWindow, logMaxFlows, 1<<30), true) })
}
