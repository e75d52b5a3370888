package testnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestDoOwnNamespace switches into the namespace the test already runs in
// (no privilege needed): f runs, its error comes back, and a missing
// namespace is an error naming it.
func TestDoOwnNamespace(t *testing.T) {
	want := netnsInode(t, "/proc/self/ns/net")
	var got uint64
	err := Do("/proc/self/ns/net", func() error {
		got = netnsInode(t, "/proc/thread-self/ns/net")
		return nil
	})
	if errors.Is(err, unix.EPERM) {
		t.Skip("setns refused without CAP_SYS_ADMIN")
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("f ran in namespace %d, want %d", got, want)
	}
	boom := errors.New("boom")
	if err := Do("/proc/self/ns/net", func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("f's error: %v", err)
	}
	if err := Do("/nonexistent/ns", func() error { return nil }); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing namespace: %v", err)
	}
}

// TestDoNewNamespace: with root, a namespace made for the test (ip netns)
// is entered, and the caller's thread is back in its own afterwards.
func TestDoNewNamespace(t *testing.T) {
	if os.Getenv("MAMORI_TEST_HOST") != "1" || os.Geteuid() != 0 {
		t.Skip("MAMORI_TEST_HOST=1 and root needed")
	}
	name := fmt.Sprintf("mamori-testnet-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	path := "/run/netns/" + name
	mine := netnsInode(t, "/proc/self/ns/net")
	var inside uint64
	if err := Do(path, func() error { inside = netnsInode(t, "/proc/thread-self/ns/net"); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := netnsInode(t, path); inside != want || inside == mine {
		t.Errorf("f ran in namespace %d, want %d (the caller's is %d)", inside, want, mine)
	}
}
