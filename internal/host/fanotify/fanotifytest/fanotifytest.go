// Package fanotifytest is the test kit of the host protection engines:
// the gate of their privileged tests and file systems the tests own, so
// that fanotify marks never cover anything the test runner itself needs.
package fanotifytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Env is the switch of the privileged host tests (set by scripts/test.sh
// in its serial privileged step).
const Env = "MAMORI_TEST_HOST"

// Privileged skips the test unless MAMORI_TEST_HOST=1, and fails it when
// the switch is on but the process is not root.
func Privileged(t testing.TB) {
	t.Helper()
	if os.Getenv(Env) != "1" {
		t.Skipf("privileged host test: set %s=1 (as root) to run it", Env)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but not root: fanotify permission events need CAP_SYS_ADMIN", Env)
	}
}

// Tmpfs mounts a new tmpfs of sizeMiB on a new directory under the test's
// temp dir, private (no propagation), and unmounts it when the test ends.
// Mounts the kit left behind by a test process that died are removed
// first.
// Marks on it (MarkMount or MarkFilesystem) see only the test's files.
func Tmpfs(t testing.TB, sizeMiB int) string {
	t.Helper()
	sweepStale(t)
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(source(), dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%dm,mode=0755", sizeMiB)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make %s private: %v", dir, err)
	}
	return dir
}

// Ext4 makes an ext4 file system of sizeMiB in a file, mounts it through a
// loop device on a new directory, and unmounts it when the test ends. It
// skips when mkfs.ext4 or loop devices are missing.
func Ext4(t testing.TB, sizeMiB int) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	base := t.TempDir()
	img := filepath.Join(base, "fs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dir := filepath.Join(base, "ext4")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("loop mount of ext4 not available here: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// Procfs mounts a new instance of procfs on a new directory and unmounts
// it when the test ends: a mount mark on it sees only opens through it.
func Procfs(t testing.TB) string {
	t.Helper()
	sweepStale(t)
	dir := filepath.Join(t.TempDir(), "proc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(source(), dir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mount proc on %s: %v", dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

func unmount(t testing.TB, dir string) {
	// MNT_DETACH: a process the test left behind must not keep the mount.
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		t.Errorf("unmount %s: %v", dir, err)
	}
}

// Result is the outcome of a command run by Run.
type Result struct {
	Err      error
	Output   string
	Duration time.Duration
}

// Denied reports whether the command failed with "Operation not
// permitted" (EPERM from a fanotify Deny).
func (r Result) Denied() bool {
	return r.Err != nil && strings.Contains(r.Output, "Operation not permitted")
}

// Run runs a command (an external program, so that its events are not the
// test process's own, which a listener always allows) with a timeout.
func Run(timeout time.Duration, name string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	r := Result{Err: err, Output: string(out), Duration: time.Since(start)}
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("%s timed out after %v: %w", name, timeout, ctx.Err())
	}
	return r
}

// Eicar builds the EICAR anti-virus test file at run time from pieces, so
// that neither the repository nor a compiled binary holds the literal
// string (scanners of either would flag them).
func Eicar() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}
	return []byte(strings.Join(parts, ""))
}
