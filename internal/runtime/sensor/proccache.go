package sensor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"mamori/internal/runtime/event"
)

// procCache remembers what exec events (and /proc, for processes older
// than the sensor) said about each process, to complete the process part
// of later events: the kernel sends the executable, argv and parent only
// at exec. Entries are keyed by PID and checked against the start time, so
// a reused PID never inherits another process's data.
type procCache struct {
	mu       sync.Mutex
	root     string // "/proc"
	m        map[int]*procInfo
	exited   []exitedProc
	maxProcs int
}

type procInfo struct {
	start                 uint64
	exe                   string
	args                  []string
	argsTrunc             bool
	parentExe, parentComm string
	memfd, unlinked       bool
	uid                   int // real uid at the process's latest event (-1: unknown)
}

type exitedProc struct {
	pid   int
	start uint64
	at    time.Time
}

// exitLinger: an exited process's entry outlives it this long, for its
// events still queued on other CPUs' paths.
const exitLinger = 5 * time.Second

// defaultMaxProcs bounds the cache (pid_max is 4M; a node rarely runs more
// than a few thousand processes).
const defaultMaxProcs = 65536

func newProcCache(root string) *procCache {
	return &procCache{root: root, m: map[int]*procInfo{}, maxProcs: defaultMaxProcs}
}

// observe updates the cache from e and completes e's process part.
func (c *procCache) observe(e *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &e.Process
	switch e.Kind {
	case event.KindExec:
		c.put(p.PID, &procInfo{start: p.StartTime, exe: p.Exe, args: p.Args, argsTrunc: p.ArgsTruncated,
			parentExe: p.ParentExe, parentComm: p.ParentComm, memfd: p.ExeFromMemfd, unlinked: p.ExeUnlinked, uid: p.UID})
		return
	case event.KindFork:
		// The child runs its parent's image until it execs.
		if parent := c.get(p.PPID, 0); parent != nil {
			c.put(p.PID, &procInfo{start: p.StartTime, exe: parent.exe, args: parent.args, argsTrunc: parent.argsTrunc,
				parentExe: parent.exe, parentComm: p.Comm, memfd: parent.memfd, unlinked: parent.unlinked, uid: p.UID})
		}
	case event.KindExit:
		c.exited = append(c.exited, exitedProc{pid: p.PID, start: p.StartTime, at: time.Now()})
		c.sweep()
	}
	info := c.get(p.PID, p.StartTime)
	if info == nil {
		info = c.fromProc(p.PID, p.StartTime)
		if info == nil {
			return
		}
		info.uid = -1 // /proc shows the credentials after this event's call
		c.put(p.PID, info)
	}
	// The uid before a credential change: what the process's previous event said.
	switch e.Kind {
	case event.KindSetuid, event.KindSetgid, event.KindCapset:
		e.SetID.PrevUID = info.uid
	}
	info.uid = p.UID
	if p.Exe == "" {
		p.Exe = info.exe
	}
	if p.Args == nil {
		p.Args, p.ArgsTruncated = info.args, info.argsTrunc
	}
	if p.ParentExe == "" {
		p.ParentExe = info.parentExe
	}
	if p.ParentComm == "" {
		p.ParentComm = info.parentComm
	}
	p.ExeFromMemfd = p.ExeFromMemfd || info.memfd
	p.ExeUnlinked = p.ExeUnlinked || info.unlinked
}

// get returns the entry of pid when its start time matches (start 0: any).
func (c *procCache) get(pid int, start uint64) *procInfo {
	info := c.m[pid]
	if info == nil || (start != 0 && info.start != start) {
		return nil
	}
	return info
}

func (c *procCache) put(pid int, info *procInfo) {
	if len(c.m) >= c.maxProcs {
		c.sweep()
		if len(c.m) >= c.maxProcs {
			// Full of live processes: forget an arbitrary one (map order);
			// /proc restores it on its next event.
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
	}
	c.m[pid] = info
}

func (c *procCache) sweep() {
	now := time.Now()
	i := 0
	for ; i < len(c.exited) && now.Sub(c.exited[i].at) > exitLinger; i++ {
		x := c.exited[i]
		if info := c.m[x.pid]; info != nil && info.start == x.start {
			delete(c.m, x.pid)
		}
	}
	c.exited = c.exited[i:]
}

// fromProc reads a running process's exe, argv and parent from /proc,
// provided it is still the process that started at start (ns since boot;
// /proc has it in clock ticks).
func (c *procCache) fromProc(pid int, start uint64) *procInfo {
	dir := c.root + "/" + strconv.Itoa(pid)
	st, err := readStat(dir)
	if err != nil || (start != 0 && st.startTicks != start/nsPerTick) {
		return nil
	}
	info := &procInfo{start: start}
	if start == 0 {
		info.start = st.startTicks * nsPerTick
	}
	info.exe, _ = os.Readlink(dir + "/exe") // empty for kernel threads and zombies
	if raw, err := os.ReadFile(dir + "/cmdline"); err == nil {
		if len(raw) > event.MaxArgsBytes {
			raw, info.argsTrunc = raw[:event.MaxArgsBytes], true
		}
		var trunc bool
		info.args, trunc = splitArgs(raw)
		info.argsTrunc = info.argsTrunc || trunc
	}
	info.unlinked = strings.HasSuffix(info.exe, " (deleted)")
	info.memfd = strings.HasPrefix(info.exe, "/memfd:")
	pdir := c.root + "/" + strconv.Itoa(st.ppid)
	info.parentExe, _ = os.Readlink(pdir + "/exe")
	if comm, err := os.ReadFile(pdir + "/comm"); err == nil {
		info.parentComm = string(bytes.TrimSuffix(comm, []byte("\n")))
	}
	return info
}

// nsPerTick: /proc times are in USER_HZ (100) ticks on every Linux
// architecture the agent supports.
const nsPerTick = 10_000_000

type procStat struct {
	comm       string
	state      byte
	ppid       int
	ttyNr      int
	startTicks uint64
}

// readStat parses /proc/PID/stat. The comm field is parenthesised and may
// itself hold ") " (a hostile process name), so fields are counted from
// the last ')'.
func readStat(dir string) (procStat, error) {
	raw, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(raw)
}

func parseStat(raw []byte) (procStat, error) {
	open, close := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || close < open {
		return procStat{}, errStat
	}
	st := procStat{comm: string(raw[open+1 : close])}
	f := strings.Fields(string(raw[close+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return procStat{}, errStat
	}
	st.state = f[0][0]
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, errStat
	}
	if st.ttyNr, err = strconv.Atoi(f[4]); err != nil {
		return procStat{}, errStat
	}
	if st.startTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procStat{}, errStat
	}
	return st, nil
}

var errStat = errorString("sensor: malformed /proc/PID/stat")

type errorString string

func (e errorString) Error() string { return string(e) }
