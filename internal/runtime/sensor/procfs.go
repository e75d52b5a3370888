//go:build linux

package sensor

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"mamori/internal/runtime/event"
)

// procfs reads process state from /proc: the fallback's only source, and
// how the eBPF mode completes processes older than the sensor.
type procfs struct {
	root       string // "/proc"
	cgroup2Dir string // where the cgroup v2 hierarchy is mounted ("" when absent)
}

func newProcfs(root string) *procfs {
	return &procfs{root: root, cgroup2Dir: findCgroup2(root)}
}

// findCgroup2 finds the cgroup2 mount (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid hosts) in /proc/self/mountinfo.
func findCgroup2(root string) string {
	f, err := os.Open(root + "/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint options ... - fstype source super
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		pre := strings.Fields(line[:sep])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) >= 5 {
			return unescapeMountinfo(pre[4])
		}
	}
	return ""
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// snapshot is a process as /proc shows it now.
type snapshot struct {
	proc event.Process
	cgid uint64
	ns   event.Namespaces
}

// read returns the snapshot of pid, or false when the process is gone.
func (p *procfs) read(pid int) (snapshot, bool) {
	dir := p.root + "/" + strconv.Itoa(pid)
	st, err := readStat(dir)
	if err != nil {
		return snapshot{}, false
	}
	var s snapshot
	pr := &s.proc
	pr.PID, pr.TID, pr.PPID = pid, pid, st.ppid
	pr.Comm = st.comm
	pr.TTY = st.ttyNr != 0
	pr.StartTime = st.startTicks * nsPerTick
	pr.LoginUID = -1
	if raw, err := os.ReadFile(dir + "/status"); err == nil {
		parseStatus(raw, pr)
	}
	if raw, err := os.ReadFile(dir + "/loginuid"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 32); err == nil {
			pr.LoginUID = idOrUnset(uint32(v))
		}
	}
	pr.Exe, _ = os.Readlink(dir + "/exe") // empty for kernel threads and zombies
	if strings.HasSuffix(pr.Exe, " (deleted)") {
		pr.Exe = strings.TrimSuffix(pr.Exe, " (deleted)")
		pr.ExeUnlinked = true
		pr.ExeFromMemfd = strings.HasPrefix(pr.Exe, "/memfd:")
	}
	pr.Cwd, _ = os.Readlink(dir + "/cwd")
	if raw, err := os.ReadFile(dir + "/cmdline"); err == nil {
		if len(raw) > event.MaxArgsBytes {
			raw, pr.ArgsTruncated = raw[:event.MaxArgsBytes], true
		}
		var trunc bool
		pr.Args, trunc = splitArgs(raw)
		pr.ArgsTruncated = pr.ArgsTruncated || trunc
	}
	pdir := p.root + "/" + strconv.Itoa(st.ppid)
	pr.ParentExe, _ = os.Readlink(pdir + "/exe")
	pr.ParentExe = strings.TrimSuffix(pr.ParentExe, " (deleted)")
	if comm, err := os.ReadFile(pdir + "/comm"); err == nil {
		pr.ParentComm = string(bytes.TrimSuffix(comm, []byte("\n")))
	}
	s.ns = event.Namespaces{
		Mnt: nsInum(dir, "mnt"), PID: nsInum(dir, "pid"), Net: nsInum(dir, "net"),
		User: nsInum(dir, "user"), UTS: nsInum(dir, "uts"), IPC: nsInum(dir, "ipc"),
	}
	s.cgid = p.cgroupID(dir)
	return s, true
}

// parseStatus reads the ids and capability sets of /proc/PID/status.
func parseStatus(raw []byte, pr *event.Process) {
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		switch string(k) {
		case "Uid":
			if len(f) >= 2 {
				pr.UID, pr.EUID = atoi(f[0]), atoi(f[1])
			}
		case "Gid":
			if len(f) >= 2 {
				pr.GID, pr.EGID = atoi(f[0]), atoi(f[1])
			}
		case "CapEff":
			if len(f) == 1 {
				pr.CapEffective, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "CapPrm":
			if len(f) == 1 {
				pr.CapPermitted, _ = strconv.ParseUint(f[0], 16, 64)
			}
		}
	}
}

func atoi(s string) int {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return -1
	}
	return int(v)
}

// nsInum reads /proc/PID/ns/NAME ("mnt:[4026531840]").
func nsInum(dir, name string) uint32 {
	l, err := os.Readlink(dir + "/ns/" + name)
	if err != nil {
		return 0
	}
	i, j := strings.IndexByte(l, '['), strings.IndexByte(l, ']')
	if i < 0 || j < i {
		return 0
	}
	v, err := strconv.ParseUint(l[i+1:j], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

// cgroupID is the inode of the process's cgroup v2 directory: the id
// bpf_get_current_cgroup_id() returns.
func (p *procfs) cgroupID(dir string) uint64 {
	if p.cgroup2Dir == "" {
		return 0
	}
	raw, err := os.ReadFile(dir + "/cgroup")
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			rel := string(rest)
			if strings.Contains(rel, "..") {
				return 0
			}
			return inodeOf(p.cgroup2Dir + rel)
		}
	}
	return 0
}
