package agent

import (
	"os"
	"strconv"
	"strings"

	"mamori/internal/runtime/container"
)

// stdioKinds reads what a process's descriptors 0 and 1 are
// (/proc/PID/fd/0 and 1): "socket", "pipe", "tty", "null", "file" or ""
// when it cannot tell (the process is gone, or its PID is another
// process's by now: the start time is checked after the reads).
func stdioKinds(procRoot string, pid int, startNS uint64) (stdin, stdout string) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	in, errIn := os.Readlink(dir + "/fd/0")
	out, errOut := os.Readlink(dir + "/fd/1")
	if errIn != nil && errOut != nil {
		return "", ""
	}
	if startNS != 0 {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return "", ""
		}
		ticks, err := container.ParseStatStart(stat)
		if err != nil || !container.SameStart(startNS, ticks) {
			return "", ""
		}
	}
	if errIn == nil {
		stdin = fdKind(in)
	}
	if errOut == nil {
		stdout = fdKind(out)
	}
	return stdin, stdout
}

// fdKind classifies a /proc/PID/fd link target.
func fdKind(target string) string {
	switch {
	case strings.HasPrefix(target, "socket:["):
		return "socket"
	case strings.HasPrefix(target, "pipe:["):
		return "pipe"
	case target == "/dev/null":
		return "null"
	case strings.HasPrefix(target, "/dev/pts/"), strings.HasPrefix(target, "/dev/tty"), target == "/dev/console",
		strings.HasPrefix(target, "/dev/ptmx"):
		return "tty"
	case strings.HasPrefix(target, "anon_inode:"):
		return "file"
	case target == "":
		return ""
	default:
		return "file"
	}
}
