//go:build linux

package sensor

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The privileged tests observe real processes: the test binary re-executes
// itself with MAMORI_SENSOR_HELPER=<action> to make the system calls under
// test in a child process (the sensor never reports its own process).

func TestMain(m *testing.M) {
	if act := os.Getenv("MAMORI_SENSOR_HELPER"); act != "" {
		if err := helper(act, os.Getenv("MAMORI_SENSOR_ARG")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		// the fallback reads /proc after the fact: give it time
		if d, err := time.ParseDuration(os.Getenv("MAMORI_SENSOR_LINGER")); err == nil {
			time.Sleep(d)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper performs one action; errors of the system call under test are
// expected (refused module loads, a missing mount point) and not returned.
func helper(act, arg string) error {
	runtime.LockOSThread() // per-thread calls (ptrace, unshare) stay on this thread
	switch act {
	case "wait-then-exec":
		// blocks until stdin closes (the test moves it into a cgroup first)
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return err
		}
		return syscall.Exec("/bin/true", []string{"true", arg}, os.Environ())
	case "open-two":
		// the unwatched file first, then the watched one: events of one
		// thread arrive in order, so seeing the second proves the first
		// was dropped in the kernel
		for _, p := range filepath.SplitList(arg) {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			f.Close()
		}
	case "write":
		return os.WriteFile(arg, []byte("x"), 0o644)
	case "file-ops":
		dir := arg
		if err := os.WriteFile(filepath.Join(dir, "a"), nil, 0o644); err != nil {
			return err
		}
		if err := unix.Chmod(filepath.Join(dir, "a"), 0o4755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
			return err
		}
		if err := os.Chdir(dir); err != nil {
			return err
		}
		if err := unix.Unlink("b"); err != nil { // relative: the kernel joins the working directory
			return err
		}
	case "dotdot":
		// from an unwatched directory, reach the watched one through ".."
		other, watched := filepath.SplitList(arg)[0], filepath.SplitList(arg)[1]
		if err := os.Chdir(other); err != nil {
			return err
		}
		rel := filepath.Join("..", filepath.Base(watched), "dd")
		if err := os.WriteFile(filepath.Join(watched, "dd"), nil, 0o644); err != nil {
			return err
		}
		return unix.Unlink(rel)
	case "net":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			done <- err
		}()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		c.Close()
		return <-done
	case "ptrace":
		cmd := exec.Command("/bin/sleep", "5")
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		if err := unix.PtraceAttach(cmd.Process.Pid); err != nil {
			return fmt.Errorf("ptrace attach: %w", err)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(cmd.Process.Pid, &ws, 0, nil); err != nil {
			return err
		}
		return unix.PtraceDetach(cmd.Process.Pid)
	case "mount":
		_ = unix.Mount("mamori-test", arg, "tmpfs", unix.MS_NOSUID, "") // arg does not exist: ENOENT
	case "setid":
		const unset = math.MaxUint32
		unix.RawSyscall(unix.SYS_SETRESUID, unset, unset, unset)
		unix.RawSyscall(unix.SYS_SETRESGID, unset, unset, unset)
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		return unix.Capset(&hdr, &data[0])
	case "modules":
		f, err := os.Open(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		_ = unix.FinitModule(int(f.Fd()), "mamori=1", 0)
		_ = unix.InitModule([]byte("\x7fELF not a module"), "mamori=2")
	case "namespaces":
		// leave the UTS namespace for a new one, then go back
		fd, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
	case "sockets":
		for _, s := range [][3]int{{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP}, {unix.AF_PACKET, unix.SOCK_RAW, 0}, {unix.AF_INET, unix.SOCK_STREAM, 0}} {
			fd, err := unix.Socket(s[0], s[1], s[2])
			if err != nil {
				return fmt.Errorf("socket %v: %w", s, err)
			}
			unix.Close(fd)
		}
		// bpf(BPF_MAP_CREATE) with an all-zero attribute: refused (EINVAL), reported
		var attr [72]byte
		unix.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	case "memfd-exec":
		fd, err := unix.MemfdCreate(arg, 0)
		if err != nil {
			return err
		}
		bin, err := os.ReadFile("/bin/true")
		if err != nil {
			return err
		}
		if _, err := unix.Write(fd, bin); err != nil {
			return err
		}
		return syscall.Exec("/proc/self/fd/"+strconv.Itoa(fd), []string{"memfd-payload"}, nil)
	case "open-many":
		deadline := time.Now().Add(10 * time.Second)
		n, _ := strconv.Atoi(os.Getenv("MAMORI_SENSOR_N"))
		for i := 0; i < n && time.Now().Before(deadline); i++ {
			fd, err := unix.Open(arg, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
	default:
		return fmt.Errorf("unknown action %q", act)
	}
	return nil
}

// runHelper runs an action in a child process and returns its PID.
func runHelper(t *testing.T, act, arg string, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "MAMORI_SENSOR_HELPER="+act, "MAMORI_SENSOR_ARG="+arg), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v: %s", act, err, out)
	}
	return cmd.Process.Pid
}
