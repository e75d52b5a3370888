package agent

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/container"
)

// stdioKinds reads what a process's descriptors 0 and 1 are
// (/proc/PID/fd/0 and 1): "socket", "pipe", "tty", "null", "file" or ""
// when it cannot tell (the process is gone, or its PID is another
// process's by now: the start time is checked after the reads).
//
// Cost: two readlinks and a read of /proc/PID/stat per exec, about 10 µs of
// kernel time (bench_test.go, BenchmarkStdioKinds); no allocation but the
// result strings' constants.
func stdioKinds(procRoot string, pid int, startNS uint64) (stdin, stdout string) {
	var pathBuf [64]byte
	dir := append(append(append(pathBuf[:0], procRoot...), '/'), strconv.Itoa(pid)...)
	var link [128]byte
	in, errIn := readlink(append(dir, "/fd/0"...), link[:])
	if errIn == nil {
		stdin = fdKind(in)
	}
	out, errOut := readlink(append(dir, "/fd/1"...), link[:])
	if errOut == nil {
		stdout = fdKind(out)
	}
	if errIn != nil && errOut != nil {
		return "", ""
	}
	if startNS != 0 {
		var stat [1024]byte
		fd, err := unix.Open(string(append(dir, "/stat"...)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", ""
		}
		n, err := unix.Read(fd, stat[:])
		unix.Close(fd)
		if err != nil || n <= 0 {
			return "", ""
		}
		ticks, err := container.ParseStatStart(stat[:n])
		if err != nil || !container.SameStart(startNS, ticks) {
			return "", ""
		}
	}
	return stdin, stdout
}

// readlink reads a link into buf and returns it (valid until buf is reused).
func readlink(path []byte, buf []byte) ([]byte, error) {
	n, err := unix.Readlink(string(path), buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// fdKind classifies a /proc/PID/fd link target.
func fdKind(target []byte) string {
	t := string(target) // the compiler does not allocate for these comparisons
	switch {
	case strings.HasPrefix(t, "socket:["):
		return "socket"
	case strings.HasPrefix(t, "pipe:["):
		return "pipe"
	case t == "/dev/null":
		return "null"
	case strings.HasPrefix(t, "/dev/pts/"), strings.HasPrefix(t, "/dev/tty"), t == "/dev/console",
		strings.HasPrefix(t, "/dev/ptmx"):
		return "tty"
	case t == "":
		return ""
	default:
		return "file"
	}
}
