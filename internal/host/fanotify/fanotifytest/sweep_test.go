package fanotifytest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSweepStale: a kit mount whose test process is gone is removed.
func TestSweepStale(t *testing.T) {
	Privileged(t)
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := cmd.Process.Pid // reaped: its PID is free
	if err := unix.Mount(sourcePrefix+strconv.Itoa(dead), dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }) // if the sweep failed
	if m := staleMounts(); len(m) != 1 || m[0] != dir {
		t.Fatalf("stale mounts %v, want [%s]", m, dir)
	}
	sweepOnce = syncOnceReset()
	own := Tmpfs(t, 1) // sweeps first
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), " "+dir+" ") {
		t.Error("stale mount not swept")
	}
	if !strings.Contains(string(b), " "+own+" ") {
		t.Error("the live process's own mount was swept")
	}
	if unescape(`/a\040b`) != "/a b" {
		t.Error("mountinfo escapes")
	}
}
