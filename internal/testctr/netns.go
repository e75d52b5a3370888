package testctr

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"mamori/internal/testnet"
)

// NetNS is a network namespace the test created (`ip netns add`), removed
// when the test ends. Containers join it with RunSpec.NetNS = Path; the
// test reaches into it with Do. Packets a test sends stay in namespaces
// like this one or on loopback.
type NetNS struct {
	Name string
	Path string // /run/netns/<Name>
}

// NewNetNS creates a network namespace named mamori-<random> with its
// loopback up.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	n := &NetNS{Name: "mamori-" + RandomTag()}
	n.Path = "/run/netns/" + n.Name
	IP(t, "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", n.Name, err, out)
		}
	})
	IP(t, "-n", n.Name, "link", "set", "lo", "up")
	return n
}

// IP runs the ip command (iproute2) and fails the test on error.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Veth links a and b with a veth pair and gives each end an address
// (CIDR form: "10.200.0.1/24"). Removing either namespace removes the pair.
func Veth(t testing.TB, a, b *NetNS, addrA, addrB string) {
	t.Helper()
	tag := RandomTag()[:6]
	ea, eb := "mva"+tag, "mvb"+tag // IFNAMSIZ: 15 bytes
	IP(t, "link", "add", ea, "netns", a.Name, "type", "veth", "peer", "name", eb, "netns", b.Name)
	IP(t, "-n", a.Name, "addr", "add", addrA, "dev", ea)
	IP(t, "-n", b.Name, "addr", "add", addrB, "dev", eb)
	IP(t, "-n", a.Name, "link", "set", ea, "up")
	IP(t, "-n", b.Name, "link", "set", eb, "up")
}

// Do runs f on an OS thread that is in the namespace, and puts the thread
// back in the caller's namespace afterwards (if that fails the thread is
// left locked, so the Go runtime retires it instead of reusing it).
// Sockets f opens stay in the namespace after Do returns.
func (n *NetNS) Do(f func() error) error { return testnet.Do(n.Path, f) }

// Listen opens a TCP listener in the namespace.
func (n *NetNS) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Inode returns the namespace's inode number (what /proc/PID/ns/net links
// name and event.Namespaces.Net holds).
func (n *NetNS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(n.Path, &st); err != nil {
		return 0, fmt.Errorf("testctr: stat %s: %w", n.Path, err)
	}
	return st.Ino, nil
}
