package fanotifytest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Container is a process with its own root file system and mount and PID
// namespaces (a minimal container: /bin/sh and its libraries copied into
// root), so that /proc/PID/root is that root.
type Container struct {
	Root string
	PID  int
	cmd  *exec.Cmd
	in   io.WriteCloser
}

// StartContainer copies /bin/sh and the libraries ldd names for it into
// root (which must exist) and starts "sh -c 'read x'" chrooted there in new
// mount and PID namespaces. It is stopped when the test ends.
func StartContainer(t testing.TB, root string) *Container {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{sh}
	out, err := exec.Command("ldd", sh).Output()
	if err != nil {
		t.Skipf("ldd %s: %v", sh, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if sh != "/bin/sh" {
		if err := os.Symlink(sh, filepath.Join(root, "bin", "sh")); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	c := &Container{Root: root}
	c.cmd = exec.Command("/bin/sh", "-c", "read x")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID}
	c.cmd.Dir = "/"
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start container process: %v", err)
	}
	c.PID = c.cmd.Process.Pid
	t.Cleanup(func() {
		_ = c.in.Close()         // ends "read x"
		_ = c.cmd.Process.Kill() // in case it did not
		_ = c.cmd.Wait()         // reaped
	})
	return c
}

// Exec runs a command inside the container's root (chrooted, as a new
// process) with a timeout.
func (c *Container) Exec(timeout time.Duration, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: c.Root}
	cmd.Dir = "/"
	start := time.Now()
	out, err := cmd.CombinedOutput()
	return Result{Err: err, Output: string(out), Duration: time.Since(start)}
}
