package agent

import (
	"os"
	"strconv"
	"strings"

	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/rules"
)

// procTable is the agent's bounded table of processes, for the ancestry
// rules read (proc.ancestors). A process is identified by (PID, start
// time): an entry is found by PID and used only when its start time is
// the event's, so a reused PID never inherits the ancestry of the process
// that had it before. Entries are made at fork (the child runs its
// parent's image until it execs) and exec, removed at exit, and read from
// /proc for processes older than the agent (or whose fork was dropped).
// When full, the least recently used entry is forgotten (counted).
type procTable struct {
	procs *lru[int, *procEntry]
	proc  string // "/proc"

	procReads uint64 // entries read from /proc
	misses    uint64 // ancestry not found
}

// procEntry is what the table knows of one process.
type procEntry struct {
	start  uint64 // ns since boot (event.Process.StartTime); 0 when read from /proc without a start
	ticks  uint64 // start in USER_HZ ticks when read from /proc
	cgroup uint64 // cgroup v2 id at the last fork or exec; 0 when unknown (read from /proc)
	exe    string
	// ancestors are the ancestors' executables, parent first, at most
	// rules.MaxAncestors. Shared between entries: never modified.
	ancestors []string
}

// DefaultMaxProcs bounds the process table: pid_max is 4M, but a node
// rarely runs more than a few thousand processes at once; a fork bomb
// evicts the oldest.
const DefaultMaxProcs = 65536

func newProcTable(procRoot string, max int) *procTable {
	if max <= 0 {
		max = DefaultMaxProcs
	}
	return &procTable{procs: newLRU[int, *procEntry](max), proc: procRoot}
}

// sameStart says whether an entry is the process of the event.
func (en *procEntry) sameStart(start uint64) bool {
	switch {
	case en.start != 0:
		return start == 0 || en.start == start
	case en.ticks != 0 && start != 0:
		return container.SameStart(start, en.ticks)
	default:
		return true
	}
}

// observe updates the table from a process life-cycle event and returns
// the process's ancestors for the rules. inContainer says the event was
// attributed to a container: a container's ancestry stops at the container
// boundary (the runtime's processes on the host, runc, the shim,
// containerd and whatever started it, are not the workload's ancestors), so
// an entry whose cgroup changed between fork and exec (the runtime moved
// it into the container) starts a new chain, and so does a child whose
// parent is in another cgroup.
func (t *procTable) observe(e *event.Event, inContainer bool) []string {
	p := &e.Process
	switch e.Kind {
	case event.KindFork:
		// e.Process is the child; its parent is forking, so alive.
		parent := t.lookup(p.PPID, 0, p.ParentExe)
		en := &procEntry{start: p.StartTime, exe: p.Exe, cgroup: e.CgroupID}
		switch {
		case parent != nil && inContainer && crossed(parent.cgroup, e.CgroupID):
		case parent != nil:
			if en.exe == "" {
				en.exe = parent.exe
			}
			en.ancestors = prepend(parent.exe, parent.ancestors)
		case p.ParentExe != "" && !inContainer:
			en.ancestors = []string{p.ParentExe}
		}
		t.procs.put(p.PID, en)
		return en.ancestors
	case event.KindExec:
		en, ok := t.procs.get(p.PID)
		if ok && en.sameStart(p.StartTime) {
			// Same process, new image: its parent has not changed.
			// Entries are shared with nobody but this PID: replace to
			// keep readers of the old one (none; one worker) simple.
			n := &procEntry{start: p.StartTime, exe: p.Exe, cgroup: e.CgroupID, ancestors: en.ancestors}
			if inContainer && crossed(en.cgroup, e.CgroupID) {
				n.ancestors = nil // moved into the container since its fork
			} else if len(n.ancestors) == 0 && p.ParentExe != "" && !inContainer {
				n.ancestors = []string{p.ParentExe}
			}
			t.procs.put(p.PID, n)
			return n.ancestors
		}
		parent := t.lookup(p.PPID, 0, p.ParentExe)
		n := &procEntry{start: p.StartTime, exe: p.Exe, cgroup: e.CgroupID}
		switch {
		case parent != nil && inContainer && crossed(parent.cgroup, e.CgroupID):
		case parent != nil:
			n.ancestors = prepend(parent.exe, parent.ancestors)
		case p.ParentExe != "" && !inContainer:
			n.ancestors = []string{p.ParentExe}
		}
		t.procs.put(p.PID, n)
		return n.ancestors
	case event.KindExit:
		if en, ok := t.procs.peek(p.PID); ok && en.sameStart(p.StartTime) {
			t.procs.remove(p.PID)
			return en.ancestors
		}
		return nil
	}
	if en := t.lookup(p.PID, p.StartTime, ""); en != nil {
		return en.ancestors
	}
	t.misses++
	return nil
}

// lookup returns the entry of (pid, start) (start 0: whoever has pid),
// reading /proc when the table has none. parentExe, when known, is used
// for a process /proc no longer shows.
func (t *procTable) lookup(pid int, start uint64, exe string) *procEntry {
	if pid <= 0 {
		return nil
	}
	if en, ok := t.procs.get(pid); ok && en.sameStart(start) {
		return en
	}
	en := t.fromProc(pid, start, 0)
	if en == nil && exe != "" {
		en = &procEntry{start: start, exe: exe}
	}
	if en != nil {
		t.procs.put(pid, en)
	}
	return en
}

// fromProc reads a process and its ancestors from /proc, provided it is
// still the process that started at start (0: unchecked).
func (t *procTable) fromProc(pid int, start uint64, depth int) *procEntry {
	if pid <= 0 || depth > rules.MaxAncestors {
		return nil
	}
	dir := t.proc + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil
	}
	ticks, err := container.ParseStatStart(stat)
	if err != nil || (start != 0 && !container.SameStart(start, ticks)) {
		return nil
	}
	t.procReads++
	exe, _ := os.Readlink(dir + "/exe") // kernel threads have none
	exe = strings.TrimSuffix(exe, " (deleted)")
	en := &procEntry{ticks: ticks, exe: exe}
	if ppid := statPPID(stat); ppid > 0 {
		parent, ok := t.procs.peek(ppid)
		if !ok {
			parent = t.fromProc(ppid, 0, depth+1)
			if parent != nil {
				t.procs.put(ppid, parent)
			}
		}
		if parent != nil {
			en.ancestors = prepend(parent.exe, parent.ancestors)
		}
	}
	return en
}

// crossed says two known cgroup ids differ (0 is unknown: not a crossing).
func crossed(a, b uint64) bool { return a != 0 && b != 0 && a != b }

// statPPID reads field 4 of /proc/PID/stat (after the parenthesised comm,
// which may hold spaces and parentheses).
func statPPID(stat []byte) int {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return n
}

// prepend returns [first, rest...] cut to rules.MaxAncestors; rest is not
// modified.
func prepend(first string, rest []string) []string {
	if first == "" { // a kernel thread (kthreadd) has no executable
		return rest
	}
	n := min(len(rest)+1, rules.MaxAncestors)
	out := make([]string, n)
	out[0] = first
	copy(out[1:], rest)
	return out
}
