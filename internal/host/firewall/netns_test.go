package firewall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mamori/internal/testnet"
)

// The privileged tests run only inside network namespaces they create (two
// namespaces joined by a veth pair, addresses from TEST-NET-1, RFC 5737):
// no packet leaves them and the host's own ruleset is never read or
// changed. MAMORI_TEST_HOST=1 turns them on (scripts/test.sh, serial
// privileged step).

const (
	hostAddr = "192.0.2.1" // namespace "host": the firewall under test
	peerAddr = "192.0.2.2" // namespace "peer": a client, and the agent's "server"
)

type netns struct {
	name string
	f    *os.File
}

func requireHost(t *testing.T) {
	t.Helper()
	if os.Getenv("MAMORI_TEST_HOST") != "1" {
		t.Skip("MAMORI_TEST_HOST=1 not set (privileged network namespace test)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNetns(t *testing.T, role string) *netns {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "mamori-fw-" + role + "-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatal(err)
	}
	n := &netns{name: name, f: f}
	t.Cleanup(func() {
		f.Close()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return n
}

// do runs f on an OS thread switched into the namespace; sockets f creates
// belong to it and can be used from any goroutine afterwards.
func (n *netns) do(f func() error) error { return testnet.DoFile(n.f, f) }

func (n *netns) nft(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", n.name, "nft"}, args...)...)
}

// listen opens a TCP listener in the namespace that writes "hi" to every
// connection.
func (n *netns) listen(t *testing.T, addr string) {
	t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
}

// dial connects from the namespace and reads the greeting.
func (n *netns) dial(ctx context.Context, addr string) error {
	return n.do(func() error {
		d := net.Dialer{Timeout: 400 * time.Millisecond}
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(b) != "hi" {
			return fmt.Errorf("greeting %q", b)
		}
		return nil
	})
}

// pair makes the two namespaces and the veth between them.
func pair(t *testing.T) (host, peer *netns) {
	t.Helper()
	host, peer = newNetns(t, "host"), newNetns(t, "peer")
	run(t, "ip", "link", "add", "vh", "netns", host.name, "type", "veth", "peer", "name", "vp", "netns", peer.name)
	run(t, "ip", "-n", host.name, "addr", "add", hostAddr+"/24", "dev", "vh")
	run(t, "ip", "-n", peer.name, "addr", "add", peerAddr+"/24", "dev", "vp")
	run(t, "ip", "-n", host.name, "link", "set", "vh", "up")
	run(t, "ip", "-n", peer.name, "link", "set", "vp", "up")
	host.listen(t, hostAddr+":8080")
	peer.listen(t, peerAddr+":8443")
	// The veth link takes a moment to come up: wait until both ways work.
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := errors.Join(peer.dial(context.Background(), hostAddr+":8080"), host.dial(context.Background(), peerAddr+":8443"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("link between the namespaces did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return host, peer
}

func manager(t *testing.T, ns *netns, opts ...Option) *Manager {
	t.Helper()
	m, err := New(append([]Option{WithNetNS(int(ns.f.Fd()))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantReach(t *testing.T, from *netns, addr string, want bool) {
	t.Helper()
	err := from.dial(context.Background(), addr)
	if want && err != nil {
		t.Fatalf("%s from %s: %v, want reachable", addr, from.name, err)
	}
	if !want && err == nil {
		t.Fatalf("%s from %s reachable, want blocked", addr, from.name)
	}
}

func TestBlockPort(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	m := manager(t, host)
	wantReach(t, peer, hostAddr+":8080", true)

	if err := m.Apply(ctx, Ruleset{Rules: []Rule{
		{Name: "block-8080", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"8080"}, Sources: []string{"192.0.2.0/24"}},
	}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", false)
	if err := peer.dial(ctx, hostAddr+":8080"); !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(fmt.Sprint(err), "timeout") {
		t.Errorf("drop: dial error %v, want a timeout", err)
	}
	out := host.nft(t, "list", "table", "inet", "mamori")
	for _, want := range []string{`ip saddr 192.0.2.0/24 tcp dport 8080 counter packets`, `drop comment "mamori:block-8080"`, "chain managed_by_mamori", "hook input priority filter; policy accept;"} {
		if !strings.Contains(out, want) {
			t.Errorf("nft list lacks %q:\n%s", want, out)
		}
	}

	// reject answers at once with a reset: connection refused.
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{
		{Name: "reject-8080", Direction: In, Action: Reject, Protocol: "tcp", DestinationPorts: []string{"8000-8090"}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := peer.dial(ctx, hostAddr+":8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("reject: dial error %v, want connection refused", err)
	}
	// Another port is not affected.
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{
		{Name: "block-other", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"9090"}},
		{Name: "block-udp", Direction: In, Action: Drop, Protocol: "udp", DestinationPorts: []string{"8080"}},
	}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", true)

	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "block-8080", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"8080"}}}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", false)
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", true)
	if out := host.nft(t, "list", "tables"); strings.Contains(out, "mamori") {
		t.Errorf("table left after Remove:\n%s", out)
	}
	if err := m.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestOutputAndAddressRules(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	m := manager(t, host)
	// Out rule by destination address: the host cannot reach the peer.
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "no-peer", Direction: Out, Action: Reject, Destinations: []string{peerAddr}}}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, host, peerAddr+":8443", false)
	// A source address that is not the peer's does not match.
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "other", Direction: In, Action: Drop, Sources: []string{"198.51.100.0/24"}, Interface: "vh"}}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", true)
	// Interface prefix and the peer's MAC address.
	mac := strings.Fields(run(t, "ip", "-n", peer.name, "-br", "link", "show", "vp"))[2]
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "mac", Direction: In, Action: Drop, Interface: "v*", SourceMAC: mac, Protocol: "tcp"}}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", false)
	if out := host.nft(t, "list", "table", "inet", "mamori"); !strings.Contains(out, `iifname "v*"`) || !strings.Contains(out, "ether saddr "+mac) {
		t.Errorf("nft list:\n%s", out)
	}
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStateful(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	m := manager(t, host)

	// Drop policy without state: the replies to the host's own connection
	// are dropped too.
	if err := m.Apply(ctx, Ruleset{InputPolicy: Drop}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, host, peerAddr+":8443", false)
	wantReach(t, peer, hostAddr+":8080", false)
	// Loopback stays open under the drop policy.
	host.listen(t, "127.0.0.1:8081")
	wantReach(t, host, "127.0.0.1:8081", true)

	// Stateful: established/related replies come in, new inbound does not.
	if err := m.Apply(ctx, Ruleset{InputPolicy: Drop, Established: true}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, host, peerAddr+":8443", true)
	wantReach(t, peer, hostAddr+":8080", false)

	// A rule opens one port to one source, for new connections.
	if err := m.Apply(ctx, Ruleset{InputPolicy: Drop, Established: true, Rules: []Rule{
		{Name: "svc", Direction: In, Action: Accept, Protocol: "tcp", Sources: []string{peerAddr}, DestinationPorts: []string{"8080"}, State: []string{"new"}, Log: true},
	}}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, peer, hostAddr+":8080", true)
	if out := host.nft(t, "list", "chain", "inet", "mamori", "input"); !strings.Contains(out, "ct state established,related accept") || !strings.Contains(out, `log prefix "mamori svc: "`) {
		t.Errorf("nft list:\n%s", out)
	}
	// BlockLoopback removes the loopback allowance.
	if err := m.Apply(ctx, Ruleset{InputPolicy: Drop, BlockLoopback: true}); err != nil {
		t.Fatal(err)
	}
	wantReach(t, host, "127.0.0.1:8081", false)
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

var counters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

func listTable(t *testing.T, ns *netns) string {
	t.Helper()
	return counters.ReplaceAllString(ns.nft(t, "list", "table", "inet", "mamori"), "counter")
}

func TestSafeApplyRollback(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	m := manager(t, host, WithConfirmTimeout(1500*time.Millisecond))
	// The agent's confirmation: a new connection to its server.
	confirm := func(ctx context.Context) error { return host.dial(ctx, peerAddr+":8443") }

	before := Ruleset{InputPolicy: Drop, Established: true, Rules: []Rule{
		{Name: "svc", Direction: In, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"8080"}},
	}}
	if err := m.SafeApply(ctx, before, confirm); err != nil {
		t.Fatalf("a ruleset that keeps the server reachable was not kept: %v", err)
	}
	want := listTable(t, host)

	// A change that cuts the host from its server: rolled back.
	lockout := Ruleset{InputPolicy: Drop, Rules: []Rule{
		{Name: "lockout", Direction: Out, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"8443"}},
	}}
	start := time.Now()
	err := m.SafeApply(ctx, lockout, confirm)
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("SafeApply = %v, want ErrRolledBack", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("rollback took %v", d)
	}
	if got := listTable(t, host); got != want {
		t.Errorf("table after rollback:\n%s\nwant:\n%s", got, want)
	}
	wantReach(t, host, peerAddr+":8443", true)
	wantReach(t, peer, hostAddr+":8080", true)

	// A confirm function that ignores its context cannot hold the rollback.
	stuck := func(context.Context) error { time.Sleep(10 * time.Second); return nil }
	start = time.Now()
	if err := m.SafeApply(ctx, lockout, stuck); !errors.Is(err, ErrRolledBack) || time.Since(start) > 5*time.Second {
		t.Errorf("stuck confirm: %v after %v", err, time.Since(start))
	}
	if got := listTable(t, host); got != want {
		t.Errorf("table after stuck confirm:\n%s", got)
	}

	// With no table before, the rollback leaves none.
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.SafeApply(ctx, lockout, confirm); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("SafeApply = %v", err)
	}
	if out := host.nft(t, "list", "tables"); strings.Contains(out, "mamori") {
		t.Errorf("rollback to no table left:\n%s", out)
	}
	wantReach(t, host, peerAddr+":8443", true)

	// Snapshot and Restore round trip exactly.
	if err := m.Apply(ctx, before); err != nil {
		t.Fatal(err)
	}
	snap, err := m.Snapshot(ctx)
	if err != nil || !snap.Exists || snap.Rules() == 0 {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	if err := m.Apply(ctx, lockout); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if got := listTable(t, host); got != want {
		t.Errorf("restored:\n%s\nwant:\n%s", got, want)
	}
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestForeignTablesUntouched(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	// Somebody else's tables: one of another name, one of mamori's name in
	// another family.
	script := `table inet foreign {
	chain c {
		type filter hook input priority 10; policy accept;
		tcp dport 9999 drop
	}
}
table ip mamori {
	chain c {
		type filter hook output priority 5; policy accept;
		udp dport 9998 drop
	}
}
`
	f := t.TempDir() + "/foreign.nft"
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	host.nft(t, "-f", f)
	foreign := func() string {
		return host.nft(t, "list", "table", "inet", "foreign") + host.nft(t, "list", "table", "ip", "mamori")
	}
	want := foreign()

	m := manager(t, host, WithConfirmTimeout(time.Second))
	confirm := func(ctx context.Context) error { return host.dial(ctx, peerAddr+":8443") }
	if err := m.Apply(ctx, Ruleset{InputPolicy: Drop, Established: true}); err != nil {
		t.Fatal(err)
	}
	if err := m.SafeApply(ctx, Ruleset{Rules: []Rule{{Name: "x", Direction: Out, Action: Drop}}}, confirm); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("SafeApply = %v", err)
	}
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := foreign(); got != want {
		t.Errorf("foreign tables changed:\n%s\nwant:\n%s", got, want)
	}
	wantReach(t, peer, hostAddr+":8080", true)

	// A table of mamori's name that mamori did not create is refused, and
	// kept as it was.
	other := manager(t, host, WithTable("foreign"))
	for name, err := range map[string]error{
		"Apply":  other.Apply(ctx, Ruleset{}),
		"Remove": other.Remove(ctx),
		"SafeApply": other.SafeApply(ctx, Ruleset{}, func(context.Context) error {
			return nil
		}),
	} {
		if !errors.Is(err, ErrForeignTable) {
			t.Errorf("%s on a foreign table: %v, want ErrForeignTable", name, err)
		}
	}
	if _, err := other.Snapshot(ctx); !errors.Is(err, ErrForeignTable) {
		t.Errorf("Snapshot of a foreign table: %v", err)
	}
	if got := foreign(); got != want {
		t.Errorf("foreign tables changed:\n%s", got)
	}
}

func TestKernelRefusalKeepsTable(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, _ := pair(t)
	m := manager(t, host)
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "keep", Direction: In, Action: Drop, Protocol: "tcp", DestinationPorts: []string{"1"}}}}); err != nil {
		t.Fatal(err)
	}
	want := listTable(t, host)
	// Validation refuses before the kernel is asked.
	if err := m.Apply(ctx, Ruleset{Rules: []Rule{{Name: "bad", Direction: In, Action: Drop, Sources: []string{"10.0.0.1/40"}}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply = %v", err)
	}
	if got := listTable(t, host); got != want {
		t.Errorf("table changed by a refused apply:\n%s", got)
	}
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEveryMatchListsInNft(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, _ := pair(t)
	m := manager(t, host)
	rs := Ruleset{
		InputPolicy: Drop, OutputPolicy: Accept, Established: true,
		Rules: []Rule{
			{Name: "ssh", Direction: In, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"22"}, Sources: []string{"10.0.0.0/8", "2001:db8::/32"}},
			{Name: "web", Direction: In, Action: Reject, Protocol: "tcp", Interface: "veth*", DestinationPorts: []string{"8000-8080", "443"}, Log: true},
			{Name: "dns", Direction: Out, Action: Accept, Protocol: "udp", Destinations: []string{"192.0.2.53"}, SourcePorts: []string{"1024-65535"}, DestinationPorts: []string{"53"}},
			{Name: "mac", Direction: In, Action: Drop, SourceMAC: "02:00:00:00:00:01"},
			{Name: "ping", Direction: In, Action: Accept, Protocol: "icmp", State: []string{"new", "established"}},
			{Name: "ping6", Direction: In, Action: Reject, Protocol: "icmpv6", Sources: []string{"2001:db8::1"}},
			{Name: "gre", Direction: In, Action: Drop, Protocol: "47", Interface: "vh"},
		},
	}
	if err := m.Apply(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got := listTable(t, host)
	for _, want := range []string{
		`ip saddr 10.0.0.0/8 tcp dport 22 counter accept comment "mamori:ssh"`,
		`ip6 saddr 2001:db8::/32 tcp dport 22 counter accept comment "mamori:ssh"`,
		`iifname "veth*" tcp dport 8000-8080 counter log prefix "mamori web: " reject with tcp reset comment "mamori:web"`,
		`iifname "veth*" tcp dport 443 counter log prefix "mamori web: " reject with tcp reset comment "mamori:web"`,
		`ip daddr 192.0.2.53 udp sport 1024-65535 udp dport 53 counter accept comment "mamori:dns"`,
		`ether saddr 02:00:00:00:00:01 counter drop comment "mamori:mac"`,
		`meta l4proto icmp ct state established,new counter accept comment "mamori:ping"`,
		`ip6 saddr 2001:db8::1 meta l4proto ipv6-icmp counter reject comment "mamori:ping6"`,
		`iifname "vh" meta l4proto gre counter drop comment "mamori:gre"`,
		`iifname "lo" accept comment "mamori:loopback"`,
		`ct state invalid drop comment "mamori:invalid"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("nft list lacks\n\t%s", want)
		}
	}
	if t.Failed() {
		t.Logf("nft list:\n%s", got)
	}
	if err := m.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverAfterCrash: the agent applied a change and died before
// confirming it; the restarted agent's Recover puts the last confirmed
// ruleset back (or removes the table when none was ever confirmed).
func TestRecoverAfterCrash(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	host, peer := pair(t)
	state := t.TempDir() + "/firewall.json"
	m1 := manager(t, host, WithStateFile(state))
	before := Ruleset{InputPolicy: Drop, Established: true, Rules: []Rule{
		{Name: "svc", Direction: In, Action: Accept, Protocol: "tcp", DestinationPorts: []string{"8080"}},
	}}
	if err := m1.Apply(ctx, before); err != nil {
		t.Fatal(err)
	}
	want := listTable(t, host)
	lockout := Ruleset{Rules: []Rule{{Name: "lockout", Direction: Out, Action: Drop}}}
	// What SafeApply does up to the confirmation, then the process "dies".
	crash := func(m *Manager) {
		t.Helper()
		st, err := m.loadState()
		if err != nil {
			t.Fatal(err)
		}
		st.Pending = &lockout
		if err := m.saveState(st); err != nil {
			t.Fatal(err)
		}
		c, err := m.conn()
		if err != nil {
			t.Fatal(err)
		}
		rules, _ := parse(lockout)
		if err := m.replace(c, compile(lockout, rules)); err != nil {
			t.Fatal(err)
		}
	}
	crash(m1)
	wantReach(t, host, peerAddr+":8443", false)

	m2 := manager(t, host, WithStateFile(state))
	done, err := m2.Recover(ctx)
	if err != nil || !done {
		t.Fatalf("Recover = %v, %v", done, err)
	}
	if got := listTable(t, host); got != want {
		t.Errorf("recovered table:\n%s\nwant:\n%s", got, want)
	}
	wantReach(t, host, peerAddr+":8443", true)
	wantReach(t, peer, hostAddr+":8080", true)
	if done, err := m2.Recover(ctx); done || err != nil {
		t.Errorf("second Recover = %v, %v", done, err)
	}
	// A confirmed SafeApply leaves nothing pending.
	if err := m2.SafeApply(ctx, before, func(ctx context.Context) error { return host.dial(ctx, peerAddr+":8443") }); err != nil {
		t.Fatal(err)
	}
	if done, _ := m2.Recover(ctx); done {
		t.Error("Recover after a confirmed change undid it")
	}

	// Nothing ever confirmed: recovery removes mamori's table.
	if err := m2.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	crash(m2)
	m3 := manager(t, host, WithStateFile(state))
	if done, err := m3.Recover(ctx); err != nil || !done {
		t.Fatalf("Recover = %v, %v", done, err)
	}
	if out := host.nft(t, "list", "tables"); strings.Contains(out, "mamori") {
		t.Errorf("table left:\n%s", out)
	}
	wantReach(t, host, peerAddr+":8443", true)

	// A damaged state file is an error, not a guess.
	if err := os.WriteFile(state, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m3.Recover(ctx); err == nil {
		t.Error("damaged state accepted")
	}
}
