package firewall

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestValidateErrors(t *testing.T) {
	ok := Rule{Name: "ok", Direction: In, Action: Accept}
	with := func(f func(r *Rule)) Ruleset {
		r := ok
		f(&r)
		return Ruleset{Rules: []Rule{r}}
	}
	cases := []struct {
		name string
		rs   Ruleset
		want string // substring of the error
	}{
		{"bad CIDR", with(func(r *Rule) { r.Sources = []string{"10.0.0.0/33"} }), `sources[0] "10.0.0.0/33": not a CIDR prefix`},
		{"host bits", with(func(r *Rule) { r.Destinations = []string{"10.1.2.3/8"} }), "host bits set (network is 10.0.0.0/8)"},
		{"not an address", with(func(r *Rule) { r.Sources = []string{"example.com"} }), "not an IP address or CIDR prefix"},
		{"zone", with(func(r *Rule) { r.Sources = []string{"fe80::1%eth0"} }), "zoned addresses"},
		{"mapped prefix", with(func(r *Rule) { r.Sources = []string{"::ffff:10.0.0.0/104"} }), "IPv4-mapped"},
		{"port range reversed", with(func(r *Rule) { r.Protocol = "tcp"; r.DestinationPorts = []string{"90-80"} }), "range start 90 is above its end 80"},
		{"port too big", with(func(r *Rule) { r.Protocol = "tcp"; r.DestinationPorts = []string{"70000"} }), "port 70000 out of range 1-65535"},
		{"port zero", with(func(r *Rule) { r.Protocol = "udp"; r.SourcePorts = []string{"0"} }), "port 0 out of range"},
		{"port garbage", with(func(r *Rule) { r.Protocol = "tcp"; r.DestinationPorts = []string{"ssh"} }), "not a port number or range"},
		{"ports without protocol", with(func(r *Rule) { r.DestinationPorts = []string{"22"} }), "ports need protocol tcp, udp, sctp or udplite"},
		{"ports with icmp", with(func(r *Rule) { r.Protocol = "icmp"; r.DestinationPorts = []string{"22"} }), "ports need protocol"},
		{"unknown protocol", with(func(r *Rule) { r.Protocol = "tcpp" }), `unknown protocol "tcpp"`},
		{"protocol number out of range", with(func(r *Rule) { r.Protocol = "256" }), `unknown protocol "256"`},
		{"no direction", with(func(r *Rule) { r.Direction = "" }), "direction is missing"},
		{"bad direction", with(func(r *Rule) { r.Direction = "both" }), `direction "both" is not in or out`},
		{"no action", with(func(r *Rule) { r.Action = "" }), "action is missing"},
		{"bad action", with(func(r *Rule) { r.Action = "allow" }), `action "allow" is not accept, drop or reject`},
		{"bad name", with(func(r *Rule) { r.Name = "a b" }), "name must be"},
		{"empty name", with(func(r *Rule) { r.Name = "" }), "name must be"},
		{"bad MAC", with(func(r *Rule) { r.SourceMAC = "zz:00:00:00:00:00" }), "not a MAC address"},
		{"long MAC", with(func(r *Rule) { r.SourceMAC = "00:00:00:00:fe:80:00:00:00:00:00:00:00:00:00:01:00:00:00:00" }), "only 6-byte"},
		{"MAC out", with(func(r *Rule) { r.Direction = Out; r.SourceMAC = "02:00:00:00:00:01" }), `only "in" rules can match a source MAC`},
		{"interface star", with(func(r *Rule) { r.Interface = "*" }), "leave the field empty"},
		{"interface long", with(func(r *Rule) { r.Interface = "abcdefghijklmnop" }), "longer than 15 bytes"},
		{"interface slash", with(func(r *Rule) { r.Interface = "eth/0" }), "not allowed in an interface name"},
		{"bad state", with(func(r *Rule) { r.State = []string{"open"} }), `state[0] "open"`},
		{"families disjoint", with(func(r *Rule) { r.Sources = []string{"10.0.0.1"}; r.Destinations = []string{"2001:db8::1"} }), "can never match"},
		{"icmp v6 only", with(func(r *Rule) { r.Protocol = "icmp"; r.Sources = []string{"2001:db8::/32"} }), "use icmpv6"},
		{"icmpv6 v4 only", with(func(r *Rule) { r.Protocol = "icmpv6"; r.Sources = []string{"10.0.0.0/8"} }), "use icmp)"},
		{"reject policy", Ruleset{InputPolicy: Reject}, "inputPolicy \"reject\": a chain policy is accept or drop"},
		{"duplicate name", Ruleset{Rules: []Rule{ok, ok}}, "name already used by rule 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.rs)
			if err == nil {
				t.Fatalf("Validate accepted %+v", c.rs)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Validate(Ruleset{Rules: []Rule{
		{Name: "a", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"99999"}},
		{Name: "b", Direction: "sideways", Action: Drop, Sources: []string{"300.1.1.1"}},
	}})
	for _, want := range []string{`rule 0 "a": destinationPorts[0]`, `rule 1 "b": direction "sideways"`, `rule 1 "b": sources[0] "300.1.1.1"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestValidateLimits(t *testing.T) {
	many := make([]string, MaxListLen+1)
	for i := range many {
		many[i] = "10.0.0.1"
	}
	if err := Validate(Ruleset{Rules: []Rule{{Name: "x", Direction: In, Action: Drop, Sources: many}}}); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("long list: %v", err)
	}
	var srcs, ports []string
	for i := range 20 {
		srcs = append(srcs, "10.0.0."+itoa(i+1))
		ports = append(ports, itoa(1000+i))
	}
	err := Validate(Ruleset{Rules: []Rule{{Name: "x", Direction: In, Action: Drop, Protocol: "tcp", Sources: srcs, DestinationPorts: ports}}})
	if err == nil || !strings.Contains(err.Error(), "expands to 400 nftables rules") {
		t.Errorf("expansion: %v", err)
	}
	rs := Ruleset{Rules: make([]Rule, MaxRules+1)}
	if err := Validate(rs); err == nil || !strings.Contains(err.Error(), "at most 1024") {
		t.Errorf("too many rules: %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestValidateAccepts(t *testing.T) {
	rs := Ruleset{
		InputPolicy: Drop, OutputPolicy: Accept, Established: true,
		Rules: []Rule{
			{Name: "ssh", Direction: In, Action: Accept, Protocol: "TCP", DestinationPorts: []string{"22"}, Sources: []string{"10.0.0.0/8", "2001:db8::/32"}},
			{Name: "web", Direction: In, Action: Reject, Protocol: "tcp", Interface: "veth*", DestinationPorts: []string{"8000-8080", "443"}, Log: true},
			{Name: "dns", Direction: Out, Action: Accept, Protocol: "udp", Destinations: []string{"192.0.2.53"}, DestinationPorts: []string{"53"}},
			{Name: "mac", Direction: In, Action: Drop, SourceMAC: "02:00:00:00:00:01"},
			{Name: "ping", Direction: In, Action: Accept, Protocol: "icmp", State: []string{"new", "established"}},
			{Name: "gre", Direction: In, Action: Drop, Protocol: "47"},
			{Name: "v4mapped-host", Direction: In, Action: Drop, Sources: []string{"::ffff:192.0.2.9"}},
		},
	}
	if err := Validate(rs); err != nil {
		t.Fatal(err)
	}
}

func TestCompile(t *testing.T) {
	rs := Ruleset{
		InputPolicy: Drop, Established: true,
		Rules: []Rule{
			// 2 families: v4 (1 source × 2 ports) + v6 (1 source × 2 ports) = 4 rules
			{Name: "ssh", Direction: In, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"22", "2222"}, Sources: []string{"10.0.0.0/8", "2001:db8::/32"}},
			{Name: "web", Direction: Out, Action: Reject, Protocol: "tcp", DestinationPorts: []string{"8000-8080"}, Log: true},
			{Name: "any", Direction: Out, Action: Reject},
		},
	}
	rules, err := parse(rs)
	if err != nil {
		t.Fatal(err)
	}
	plan := compile(rs, rules)
	if len(plan) != 3 || plan[0].name != MarkerChain || plan[0].hook != nil || len(plan[0].rules) != 0 {
		t.Fatalf("marker chain: %+v", plan[0])
	}
	in, out := plan[1], plan[2]
	// established + invalid + 4 ssh + loopback
	if len(in.rules) != 7 || len(out.rules) != 5 {
		t.Fatalf("input %d rules, output %d rules", len(in.rules), len(out.rules))
	}
	if in.policy != 0 { // ChainPolicyDrop
		t.Errorf("input policy %v", in.policy)
	}
	count := func(rp rulePlan, f func(expr.Any) bool) int {
		n := 0
		for _, e := range rp.exprs {
			if f(e) {
				n++
			}
		}
		return n
	}
	// The v4 ssh rule masks the /8 and compares the network.
	ssh := in.rules[2]
	if n := count(ssh, func(e expr.Any) bool { _, ok := e.(*expr.Bitwise); return ok }); n != 1 {
		t.Errorf("ssh v4 rule has %d bitwise expressions", n)
	}
	if got := string(ssh.userData[2:]); !strings.HasPrefix(got, "mamori:ssh") {
		t.Errorf("comment %q", got)
	}
	web := out.rules[2]
	var rej *expr.Reject
	var log *expr.Log
	ranges := 0
	for _, e := range web.exprs {
		switch x := e.(type) {
		case *expr.Reject:
			rej = x
		case *expr.Log:
			log = x
		case *expr.Cmp:
			if x.Op == expr.CmpOpGte || x.Op == expr.CmpOpLte {
				ranges++
			}
		}
	}
	if rej == nil || rej.Type != unix.NFT_REJECT_TCP_RST {
		t.Errorf("tcp reject: %+v", rej)
	}
	if log == nil || string(log.Data) != "mamori web: " || log.Key&(1<<unix.NFTA_LOG_GROUP) != 0 {
		t.Errorf("log (kernel log, no group): %+v", log)
	}
	// With a LogGroup the log statement sends to that NFLOG group.
	rs.LogGroup = 2704
	for _, e := range compile(rs, rules)[2].rules[2].exprs {
		if x, ok := e.(*expr.Log); ok && (x.Group != 2704 || x.Key&(1<<unix.NFTA_LOG_GROUP) == 0 || string(x.Data) != "mamori web: ") {
			t.Errorf("log with group: %+v", x)
		}
	}
	rs.LogGroup = 0
	if ranges != 2 {
		t.Errorf("port range compiled to %d comparisons", ranges)
	}
	anyRule := out.rules[3]
	if x, ok := anyRule.exprs[len(anyRule.exprs)-1].(*expr.Reject); !ok || x.Type != unix.NFT_REJECT_ICMPX_UNREACH {
		t.Errorf("non-tcp reject: %#v", anyRule.exprs[len(anyRule.exprs)-1])
	}
	// No loopback allowance when blocked.
	rs.BlockLoopback = true
	if plan := compile(rs, rules); len(plan[1].rules) != 6 {
		t.Errorf("BlockLoopback: %d input rules", len(plan[1].rules))
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(WithTable("bad name")); err == nil {
		t.Error("bad table name accepted")
	}
	if _, err := New(WithConfirmTimeout(0)); err == nil {
		t.Error("zero timeout accepted")
	}
	if _, err := New(WithNetNS(-2)); err == nil {
		t.Error("negative fd accepted")
	}
	m, err := New(WithTable("mamori_test"))
	if err != nil || m.Table() != "mamori_test" {
		t.Fatalf("%v %v", m, err)
	}
}

func TestProtocolName(t *testing.T) {
	for p, want := range map[uint8]string{6: "tcp", 17: "udp", 132: "sctp", 136: "udplite", 1: "icmp", 58: "icmpv6", 47: "47"} {
		if got := ProtocolName(p); got != want {
			t.Errorf("ProtocolName(%d) = %q, want %q", p, got, want)
		}
		if n, ok := parseProtocol(ProtocolName(p)); !ok || n != int(p) {
			t.Errorf("parseProtocol(ProtocolName(%d)) = %d, %v", p, n, ok)
		}
	}
}
