package firewall

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
)

func ipv4Packet(proto byte, src, dst string, sport, dport uint16, frag uint16) []byte {
	p := make([]byte, 28)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], 60)
	binary.BigEndian.PutUint16(p[6:8], frag)
	p[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], dport)
	return p
}

func ipv6Packet(proto byte, src, dst string, sport, dport uint16) []byte {
	p := make([]byte, 48)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], 20)
	p[6] = proto
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	binary.BigEndian.PutUint16(p[40:42], sport)
	binary.BigEndian.PutUint16(p[42:44], dport)
	return p
}

// TestParseLogPacket: IPv4 and IPv6 headers and the ports after them,
// for TCP and UDP; IPv4 options; a fragment and ICMP have no ports; a
// transport header cut before the ports gives the addresses alone; cut,
// empty, non-IP and garbage payloads are errors, never a panic.
func TestParseLogPacket(t *testing.T) {
	type want struct {
		proto        uint8
		src, dst     string
		sport, dport uint16
		length       int
	}
	for _, c := range []struct {
		name string
		p    []byte
		want want
	}{
		{"IPv4 TCP", ipv4Packet(6, "192.0.2.2", "192.0.2.1", 40000, 22, 0), want{6, "192.0.2.2", "192.0.2.1", 40000, 22, 60}},
		{"IPv4 UDP", ipv4Packet(17, "10.0.0.1", "10.0.0.2", 5353, 53, 0), want{17, "10.0.0.1", "10.0.0.2", 5353, 53, 60}},
		{"IPv4 first fragment (MF set, offset 0)", ipv4Packet(17, "10.0.0.1", "10.0.0.2", 5353, 53, 0x2000), want{17, "10.0.0.1", "10.0.0.2", 5353, 53, 60}},
		{"IPv4 later fragment", ipv4Packet(17, "10.0.0.1", "10.0.0.2", 5353, 53, 0x0010), want{17, "10.0.0.1", "10.0.0.2", 0, 0, 60}},
		{"IPv4 ICMP", ipv4Packet(1, "10.0.0.1", "10.0.0.2", 0x0800, 0, 0), want{1, "10.0.0.1", "10.0.0.2", 0, 0, 60}},
		{"IPv4 SCTP", ipv4Packet(132, "10.0.0.1", "10.0.0.2", 1000, 2000, 0), want{132, "10.0.0.1", "10.0.0.2", 1000, 2000, 60}},
		{"IPv4 TCP cut before the ports", ipv4Packet(6, "1.2.3.4", "1.2.3.5", 1, 2, 0)[:23], want{6, "1.2.3.4", "1.2.3.5", 0, 0, 60}},
		{"IPv4 header alone", ipv4Packet(6, "1.2.3.4", "1.2.3.5", 1, 2, 0)[:20], want{6, "1.2.3.4", "1.2.3.5", 0, 0, 60}},
		{"IPv6 TCP", ipv6Packet(6, "2001:db8::2", "2001:db8::1", 40000, 443), want{6, "2001:db8::2", "2001:db8::1", 40000, 443, 60}},
		{"IPv6 UDP", ipv6Packet(17, "2001:db8::2", "2001:db8::1", 1234, 53), want{17, "2001:db8::2", "2001:db8::1", 1234, 53, 60}},
		{"IPv6 ICMPv6", ipv6Packet(58, "fe80::1", "ff02::1", 0x8700, 0), want{58, "fe80::1", "ff02::1", 0, 0, 60}},
		{"IPv6 UDP cut before the ports", ipv6Packet(17, "2001:db8::2", "2001:db8::1", 1, 2)[:42], want{17, "2001:db8::2", "2001:db8::1", 0, 0, 60}},
		{"IPv6 IPv4-mapped addresses", ipv6Packet(17, "::ffff:192.0.2.9", "::ffff:192.0.2.1", 1, 2), want{17, "192.0.2.9", "192.0.2.1", 1, 2, 60}},
	} {
		r, err := ParseLogPacket("rule-1", c.p)
		got := want{r.Protocol, r.Src.String(), r.Dst.String(), r.SrcPort, r.DstPort, r.Length}
		if err != nil || r.Rule != "rule-1" || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
	// IPv4 with options (IHL 6): the ports come after the 24-byte header.
	opt := make([]byte, 28)
	copy(opt, ipv4Packet(6, "10.0.0.1", "10.0.0.2", 0, 0, 0)[:20])
	opt[0] = 0x46
	binary.BigEndian.PutUint16(opt[24:26], 7)
	binary.BigEndian.PutUint16(opt[26:28], 8)
	if r, err := ParseLogPacket("x", opt); err != nil || r.SrcPort != 7 || r.DstPort != 8 {
		t.Errorf("IPv4 options: %+v %v", r, err)
	}
	// IHL says 60 bytes, the payload has 28: addresses, no ports.
	long := ipv4Packet(6, "10.0.0.1", "10.0.0.2", 1, 2, 0)
	long[0] = 0x4f
	if r, err := ParseLogPacket("x", long); err != nil || r.SrcPort != 0 || r.Src.String() != "10.0.0.1" {
		t.Errorf("IHL beyond the payload: %+v %v", r, err)
	}
	for name, p := range map[string][]byte{
		"empty":     nil,
		"cut IPv4":  ipv4Packet(6, "1.2.3.4", "1.2.3.5", 1, 2, 0)[:12],
		"cut IPv6":  ipv6Packet(17, "2001:db8::2", "2001:db8::1", 1, 2)[:30],
		"version 5": {0x50, 0, 0},
		"version 0": make([]byte, 64),
		"IHL 4":     append([]byte{0x41}, make([]byte, 30)...),
		"text":      []byte("not a packet"),
		"garbage":   {0xff, 0xfe, 0x00, 0x13, 0x37, 0x42},
		"one byte":  {0x45},
	} {
		if r, err := ParseLogPacket("x", p); err == nil {
			t.Errorf("%s: no error (%+v)", name, r)
		} else if !strings.HasPrefix(err.Error(), "firewall: logged packet: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
}

// TestParseLog: records of mamori's rules carry the rule's name from the
// prefix, the kernel's timestamp and interfaces; another prefix (or none)
// is foreign; a bad payload is counted, not delivered.
func TestParseLog(t *testing.T) {
	str := func(s string) *string { return &s }
	u32 := func(v uint32) *uint32 { return &v }
	payload := ipv4Packet(6, "192.0.2.2", "192.0.2.1", 40000, 8080, 0)
	ts := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	r, ok, err := parseLog(nflog.Attribute{Prefix: str("mamori block-8080: "), Payload: &payload, Timestamp: &ts, InDev: u32(3)})
	if err != nil || !ok || r.Rule != "block-8080" || !r.Time.Equal(ts) || r.InDev != 3 || r.OutDev != 0 || r.DstPort != 8080 {
		t.Errorf("mamori record: %+v %v %v", r, ok, err)
	}
	// No timestamp (the kernel sends none on output): the time of reading.
	before := time.Now()
	if r, ok, err := parseLog(nflog.Attribute{Prefix: str("mamori out-1: "), Payload: &payload, OutDev: u32(7)}); err != nil || !ok || r.Time.Before(before) || r.OutDev != 7 {
		t.Errorf("no timestamp: %+v %v %v", r, ok, err)
	}
	for name, a := range map[string]nflog.Attribute{
		"no prefix":       {Payload: &payload},
		"another program": {Prefix: str("ulogd: "), Payload: &payload},
		"mamori, no rule": {Prefix: str("mamorix: "), Payload: &payload},
	} {
		if _, ok, err := parseLog(a); ok || err != nil {
			t.Errorf("%s: ours %v, error %v", name, ok, err)
		}
	}
	if _, ok, err := parseLog(nflog.Attribute{Prefix: str("mamori x: ")}); !ok || err == nil {
		t.Errorf("no payload: ours %v, error %v", ok, err)
	}
	garbage := []byte{0xff, 0xff, 0xff}
	if _, ok, err := parseLog(nflog.Attribute{Prefix: str("mamori x: "), Payload: &garbage}); !ok || err == nil {
		t.Errorf("garbage payload: ours %v, error %v", ok, err)
	}
	// The listener's per-record path counts each kind and delivers only
	// mamori's good records.
	var got []LogRecord
	ctx, cancel := context.WithCancel(context.Background())
	l := &LogListener{ctx: ctx, cancel: cancel, fn: func(r LogRecord) { got = append(got, r) }}
	l.handle(nflog.Attribute{Prefix: str("mamori a: "), Payload: &payload})
	l.handle(nflog.Attribute{Prefix: str("other: "), Payload: &payload})
	l.handle(nflog.Attribute{Prefix: str("mamori b: "), Payload: &garbage})
	if st := l.Stats(); len(got) != 1 || got[0].Rule != "a" || st.Records != 1 || st.Foreign != 1 || st.Bad != 1 {
		t.Errorf("handle: %+v %+v", got, st)
	}
	cancel()
	if l.handle(nflog.Attribute{Prefix: str("mamori a: "), Payload: &payload}) == 0 || len(got) != 1 {
		t.Errorf("a record after the close was delivered")
	}
}

// FuzzParseLogPacket: any payload is an error or a record whose fields
// come from the bytes given, never a panic or a read past them.
func FuzzParseLogPacket(f *testing.F) {
	f.Add(ipv4Packet(6, "192.0.2.2", "192.0.2.1", 40000, 22, 0))
	f.Add(ipv4Packet(17, "192.0.2.2", "192.0.2.1", 1, 53, 0x0010))
	f.Add(ipv6Packet(17, "2001:db8::2", "2001:db8::1", 1234, 53))
	f.Add(ipv6Packet(6, "2001:db8::2", "2001:db8::1", 1, 2)[:41])
	f.Add([]byte{0x60})
	f.Add([]byte{0x4f, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseLogPacket("r", p)
		if err != nil {
			return
		}
		if !r.Src.IsValid() || !r.Dst.IsValid() || r.Rule != "r" {
			t.Fatalf("no error and no addresses: %+v", r)
		}
		switch p[0] >> 4 {
		case 4:
			if !r.Src.Is4() || r.Src.As4() != [4]byte(p[12:16]) || r.Length != int(binary.BigEndian.Uint16(p[2:4])) {
				t.Fatalf("IPv4 record %+v of % x", r, p)
			}
			if (r.SrcPort != 0 || r.DstPort != 0) && len(p) < int(p[0]&0x0f)*4+4 {
				t.Fatalf("ports %d %d read past %d bytes", r.SrcPort, r.DstPort, len(p))
			}
		case 6:
			if len(p) < 40 || r.Length != 40+int(binary.BigEndian.Uint16(p[4:6])) {
				t.Fatalf("IPv6 record %+v of % x", r, p)
			}
			if (r.SrcPort != 0 || r.DstPort != 0) && len(p) < 44 {
				t.Fatalf("ports read past %d bytes", len(p))
			}
		default:
			t.Fatalf("version %d accepted", p[0]>>4)
		}
	})
}

// BenchmarkLogRecord is the listener's per-record path for one of
// mamori's records: prefix check, parse, counters, delivery.
func BenchmarkLogRecord(b *testing.B) {
	prefix := "mamori block-8080: "
	payload := ipv4Packet(6, "192.0.2.2", "192.0.2.1", 40000, 8080, 0)
	ts := time.Now()
	in := uint32(3)
	a := nflog.Attribute{Prefix: &prefix, Payload: &payload, Timestamp: &ts, InDev: &in}
	n := 0
	l := &LogListener{ctx: context.Background(), fn: func(LogRecord) { n++ }}
	b.ReportAllocs()
	for b.Loop() {
		l.handle(a)
	}
	if n != b.N {
		b.Fatalf("%d records delivered of %d", n, b.N)
	}
}

// ifindex reads an interface's index in a namespace of the test.
func ifindex(t *testing.T, ns *netns, dev string) uint32 {
	t.Helper()
	out := run(t, "ip", "-n", ns.name, "-o", "link", "show", dev)
	i, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(out, ":", 2)[0]))
	if err != nil {
		t.Fatalf("ifindex of %s: %q", dev, out)
	}
	return uint32(i)
}

// TestLogModeToNFLOG (privileged): in the network namespaces of the test,
// a log-mode ruleset (what hostsettings.LogOnly makes of a drop rule, an
// output reject rule and a drop input policy: logging accepts) lets the
// traffic through and the packets reach the NFLOG listener with the rule,
// the interface, protocol, addresses and ports, over IPv4 and IPv6, TCP and
// UDP; in block mode a drop and a reject rule with log: true stop the
// traffic and are recorded too. A second reader of the group is refused
// with a clear error; after Close the group can be bound again at once.
func TestLogModeToNFLOG(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host, peer := pair(t)
	const host6, peer6 = "2001:db8::1", "2001:db8::2" // RFC 3849 documentation prefix, on the veth only
	run(t, "ip", "-n", host.name, "addr", "add", host6+"/64", "dev", "vh", "nodad")
	run(t, "ip", "-n", peer.name, "addr", "add", peer6+"/64", "dev", "vp", "nodad")
	vh := ifindex(t, host, "vh")
	m := manager(t, host)
	var mu sync.Mutex
	var recs []LogRecord
	l, err := m.ListenLog(ctx, DefaultLogGroup, func(r LogRecord) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wait := func(what string, f func(LogRecord) bool) LogRecord {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			for _, r := range recs {
				if f(r) {
					mu.Unlock()
					return r
				}
			}
			mu.Unlock()
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no NFLOG record for %s (stats %+v, records %+v)", what, l.Stats(), recs)
		return LogRecord{}
	}
	// sendUDP sends one datagram from the peer namespace.
	sendUDP := func(addr string) {
		t.Helper()
		if err := peer.do(func() error {
			c, err := net.Dial("udp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("ping"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Log mode: the configured ruleset was {block-8080 in drop tcp 8080,
	// out-8443 out reject tcp 8443, inputPolicy drop}.
	logMode := Ruleset{LogGroup: DefaultLogGroup, Rules: []Rule{
		{Name: "block-8080", Direction: In, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"8080"}, Log: true},
		{Name: "out-8443", Direction: Out, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"8443"}, Log: true},
		{Name: "policy-in-lo", Direction: In, Action: Accept, Interface: "lo"},
		{Name: "policy-in", Direction: In, Action: Accept, Log: true},
	}}
	if err := m.Apply(ctx, logMode); err != nil {
		t.Fatal(err)
	}
	if out := host.nft(t, "list", "table", "inet", "mamori"); !strings.Contains(out, `log prefix "mamori block-8080: " group 2704`) {
		t.Errorf("the log statement does not name the group:\n%s", out)
	}
	wantReach(t, peer, hostAddr+":8080", true)
	r := wait("the inbound TCP connection", func(r LogRecord) bool { return r.Rule == "block-8080" })
	if r.Src.String() != peerAddr || r.Dst.String() != hostAddr || r.DstPort != 8080 || r.SrcPort < 1024 || r.Protocol != 6 ||
		r.InDev != vh || r.OutDev != 0 || r.Length < 40 || r.Time.IsZero() {
		t.Errorf("block-8080 record: %+v (vh is %d)", r, vh)
	}
	wantReach(t, host, peerAddr+":8443", true)
	r = wait("the outbound TCP connection", func(r LogRecord) bool { return r.Rule == "out-8443" })
	if r.Src.String() != hostAddr || r.Dst.String() != peerAddr || r.DstPort != 8443 || r.Protocol != 6 || r.OutDev != vh || r.InDev != 0 {
		t.Errorf("out-8443 record: %+v (vh is %d)", r, vh)
	}
	// UDP over IPv6 to a port no rule names: the input policy's logging rule.
	sendUDP("[" + host6 + "]:5353")
	r = wait("the IPv6 UDP datagram", func(r LogRecord) bool { return r.Rule == "policy-in" && r.Protocol == 17 })
	if r.Src.String() != peer6 || r.Dst.String() != host6 || r.DstPort != 5353 || r.SrcPort == 0 || r.InDev != vh || r.Length != 40+8+4 {
		t.Errorf("policy-in IPv6 UDP record: %+v", r)
	}
	// UDP over IPv4 too.
	sendUDP(hostAddr + ":5354")
	r = wait("the IPv4 UDP datagram", func(r LogRecord) bool { return r.Rule == "policy-in" && r.DstPort == 5354 })
	if r.Src.String() != peerAddr || r.Dst.String() != hostAddr || r.Protocol != 17 || r.Length != 20+8+4 {
		t.Errorf("policy-in IPv4 UDP record: %+v", r)
	}
	// Loopback traffic is allowed before the policy's logging rule: not logged.
	mu.Lock()
	for _, r := range recs {
		if r.Src.IsLoopback() || r.Dst.IsLoopback() {
			t.Errorf("loopback packet logged: %+v", r)
		}
	}
	mu.Unlock()

	// Block mode with log: dropped (or rejected) and recorded.
	if err := m.Apply(ctx, Ruleset{LogGroup: DefaultLogGroup, Rules: []Rule{
		{Name: "drop-8080", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"8080"}, Log: true},
		{Name: "reject-udp", Direction: In, Action: Reject, Protocol: "udp", DestinationPorts: []string{"6000-6010"}, Log: true},
	}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", false)
	r = wait("the dropped connection", func(r LogRecord) bool { return r.Rule == "drop-8080" })
	if r.Src.String() != peerAddr || r.Dst.String() != hostAddr || r.DstPort != 8080 || r.Protocol != 6 || r.InDev != vh {
		t.Errorf("drop-8080 record: %+v", r)
	}
	sendUDP(hostAddr + ":6005")
	r = wait("the rejected datagram", func(r LogRecord) bool { return r.Rule == "reject-udp" })
	if r.Src.String() != peerAddr || r.DstPort != 6005 || r.Protocol != 17 {
		t.Errorf("reject-udp record: %+v", r)
	}
	if st := l.Stats(); st.Records < 6 || st.Bad != 0 || st.Foreign != 0 || st.Errors != 0 || st.Stopped {
		t.Errorf("stats %+v", st)
	}
	// A second reader of the same group is refused by the kernel, clearly.
	if l2, err := m.ListenLog(ctx, DefaultLogGroup, func(LogRecord) {}); err == nil {
		l2.Close()
		t.Error("a second listener on the same group: no error")
	} else if !strings.Contains(err.Error(), "NFLOG group 2704 refused: another reader holds it") {
		t.Errorf("second listener: %v", err)
	}
	if _, err := m.ListenLog(ctx, 0, func(LogRecord) {}); err == nil {
		t.Error("group 0: no error")
	}
	// Closed, nothing more is delivered, and the group can be bound again
	// at once (a module restart).
	l.Close()
	mu.Lock()
	n := len(recs)
	mu.Unlock()
	wantReach(t, peer, hostAddr+":8080", false)
	time.Sleep(300 * time.Millisecond) // longer than the kernel's flush (0.1 s)
	mu.Lock()
	if len(recs) != n {
		t.Errorf("%d records delivered after Close", len(recs)-n)
	}
	mu.Unlock()
	got := make(chan LogRecord, 16)
	l2, err := m.ListenLog(ctx, DefaultLogGroup, func(r LogRecord) {
		select {
		case got <- r:
		default:
		}
	})
	if err != nil {
		t.Fatalf("listener after Close: %v", err)
	}
	wantReach(t, peer, hostAddr+":8080", false)
	select {
	case r := <-got:
		if r.Rule != "drop-8080" {
			t.Errorf("record of the new listener: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Error("the new listener received nothing")
	}
	// Ending the listener's context closes it too.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l3, err := m.ListenLog(context.Background(), DefaultLogGroup, func(LogRecord) {})
		if err == nil {
			l3.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group is still taken 5s after the listener's context ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l2.Close()
	if err := m.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestLogFlood (privileged): a flood of logged packets (20,000 UDP
// datagrams sent as fast as the peer namespace can) reaches the listener
// with no silent loss: every record delivered is the flood's, and records
// are missing only when the socket reported overruns (ENOBUFS). The
// numbers (send and read rates, overruns) are in the test's log.
func TestLogFlood(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	m := manager(t, host)
	var mu sync.Mutex
	got, wrong := 0, 0
	l, err := m.ListenLog(ctx, DefaultLogGroup, func(r LogRecord) {
		mu.Lock()
		if r.Rule == "flood" && r.Protocol == 17 && r.DstPort == 7000 && r.Src.String() == peerAddr {
			got++
		} else {
			wrong++
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := m.Apply(ctx, Ruleset{LogGroup: DefaultLogGroup, Rules: []Rule{
		{Name: "flood", Direction: In, Action: Drop, Protocol: "udp", DestinationPorts: []string{"7000"}, Log: true},
	}}); err != nil {
		t.Fatal(err)
	}
	defer m.Remove(ctx)
	const n = 20000
	start := time.Now()
	if err := peer.do(func() error {
		c, err := net.Dial("udp4", hostAddr+":7000")
		if err != nil {
			return err
		}
		defer c.Close()
		for range n {
			if _, err := c.Write([]byte("flood")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	// Until the records stop coming (the kernel's last batch, the reader).
	last, lastChange := -1, time.Now()
	for time.Since(lastChange) < 500*time.Millisecond && time.Since(start) < 20*time.Second {
		mu.Lock()
		if got != last {
			last, lastChange = got, time.Now()
		}
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	read := lastChange.Sub(start)
	st := l.Stats()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("flood: %d datagrams sent in %s (%.0f/s); %d records read in %s (%.0f/s); overruns %d; stats %+v",
		n, sent.Round(time.Millisecond), n/sent.Seconds(), got, read.Round(time.Millisecond), float64(got)/read.Seconds(), st.Overruns, st)
	if wrong != 0 || st.Bad != 0 || st.Errors != 0 || st.Stopped {
		t.Errorf("%d foreign records, stats %+v", wrong, st)
	}
	if got > n || got == 0 {
		t.Errorf("%d records of %d datagrams", got, n)
	}
	if got < n && st.Overruns == 0 {
		t.Errorf("%d of %d records lost without an overrun reported", n-got, n)
	}
}
