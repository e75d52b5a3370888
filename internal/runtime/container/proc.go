package container

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// clockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat times: 100
// on every Linux architecture (the kernel converts from its own HZ).
const clockTicksPerSecond = 100

// nsPerTick converts USER_HZ ticks to nanoseconds.
const nsPerTick = 1e9 / clockTicksPerSecond

// Proc reads a /proc file system (the host's: the agent runs in the host
// PID namespace).
type Proc struct {
	Root string // "/proc"
}

// StartTicks returns field 22 of /proc/PID/stat: the process's start,
// in USER_HZ ticks since boot (the kernel's start_boottime / 10 ms).
func (p Proc) StartTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return ParseStatStart(b)
}

// ParseStatStart reads the start time (field 22) of a /proc/PID/stat.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses: fields are counted from the last ')'.
func ParseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: /proc/PID/stat without a command", ErrMalformed)
	}
	f := bytes.Fields(b[i+1:])
	// After ')' come fields 3 (state) ... ; start time is field 22.
	const idx = 22 - 3
	if len(f) <= idx {
		return 0, fmt.Errorf("%w: /proc/PID/stat with %d fields", ErrMalformed, len(f)+2)
	}
	v, err := strconv.ParseUint(string(f[idx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: /proc/PID/stat start time %q", ErrMalformed, truncate(f[idx], 32))
	}
	return v, nil
}

// SameStart says whether a process start time from the kernel (start_boottime,
// ns, as event.Process.StartTime) and one from /proc/PID/stat (ticks) are
// the same process start: /proc shows the nanoseconds divided down.
func SameStart(startNS, ticks uint64) bool {
	return startNS/nsPerTick == ticks
}

// Cgroup reads and parses /proc/PID/cgroup.
func (p Proc) Cgroup(pid int) (ProcCgroup, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ProcCgroup{}, fmt.Errorf("read cgroup of %d: %w", pid, err)
	}
	return ParseProcCgroup(b)
}

// NS returns the inode number of one of the process's namespaces ("mnt",
// "net", "pid"...).
func (p Proc) NS(pid int, kind string) (uint32, error) {
	var st unix.Stat_t
	path := filepath.Join(p.Root, strconv.Itoa(pid), "ns", kind)
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}
