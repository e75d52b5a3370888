//go:build linux

package sensor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/event"
)

// The fallback: the netlink proc connector (CN_PROC) for the process life
// cycle and credential changes, fanotify notification marks for files.
// It needs no BPF; it sees fewer kinds and fewer fields (no system calls,
// so no network, mount, module, namespace, memfd_create or bpf events; no
// open flags), and filters in user space.

// CN_PROC constants (linux/cn_proc.h, linux/connector.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2
	procEventFork     = 0x1
	procEventExec     = 0x2
	procEventUID      = 0x4
	procEventGID      = 0x40
	procEventPtrace   = 0x100
	procEventExit     = 0x80000000
	nlmsgHdrLen       = 16
	cnMsgLen          = 20
	procEventHdrLen   = 16
)

// maxLoaded bounds the fallback's load de-duplication set.
const maxLoaded = 65536

type fallbackBackend struct {
	o       *options
	c       *counters
	filter  pathFilter
	pfs     *procfs
	self    int
	cnFD    int
	fanFD   int // -1: no file events
	stopR   int // a pipe: closing stopW wakes the readers
	stopW   int
	stopMu  sync.Mutex
	running sync.WaitGroup // run in progress: close waits for it before closing descriptors
	monoOff time.Duration  // wall - CLOCK_MONOTONIC

	mu       sync.Mutex
	snaps    map[int]snapshot // by PID, dropped at exec and exit
	loaded   map[loadKey]bool
	modified map[modKey]bool
	cgFilter map[uint64]uint8
}

type loadKey struct{ cgid, dev, ino uint64 }
type modKey struct {
	pid      int
	dev, ino uint64
}

var _ backend = (*fallbackBackend)(nil)

func startFallback(o *options, c *counters) (backend, error) {
	b := &fallbackBackend{
		o: o, c: c, filter: newPathFilter(o), pfs: newProcfs("/proc"), self: -1, cnFD: -1, fanFD: -1, stopR: -1, stopW: -1,
		snaps: map[int]snapshot{}, loaded: map[loadKey]bool{}, modified: map[modKey]bool{}, cgFilter: map[uint64]uint8{},
	}
	if o.excludeSelf {
		b.self = os.Getpid()
	}
	for _, id := range o.cgInclude {
		b.cgFilter[id] = cgInclude
	}
	for _, id := range o.cgExclude {
		b.cgFilter[id] = cgExclude
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("sensor: CLOCK_MONOTONIC: %w", err)
	}
	b.monoOff = time.Duration(time.Now().UnixNano() - ts.Nano())
	if err := b.openCNProc(); err != nil {
		b.close()
		return nil, fmt.Errorf("%w: proc connector: %w", ErrNotSupported, err)
	}
	if o.kinds[event.KindOpen] || o.kinds[event.KindWrite] || o.kinds[event.KindLoad] {
		if err := b.openFanotify(); err != nil {
			// Process events still work: say so and go on.
			o.log.Warn("fallback sensor: no file events", "err", err)
			if b.fanFD >= 0 {
				unix.Close(b.fanFD)
				b.fanFD = -1
			}
		}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		b.close()
		return nil, fmt.Errorf("sensor: pipe: %w", err)
	}
	b.stopR, b.stopW = p[0], p[1]
	return b, nil
}

func (b *fallbackBackend) openCNProc() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	b.cnFD = fd
	// A bigger receive buffer rides out bursts; ENOBUFS still reports loss.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return b.cnControl(procCnMcastListen)
}

func (b *fallbackBackend) cnControl(op uint32) error {
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	le := binary.LittleEndian
	le.PutUint32(msg[0:], uint32(len(msg)))
	le.PutUint16(msg[4:], unix.NLMSG_DONE)
	le.PutUint32(msg[12:], uint32(os.Getpid()))
	le.PutUint32(msg[16:], cnIdxProc)
	le.PutUint32(msg[20:], cnValProc)
	le.PutUint16(msg[32:], 4)
	le.PutUint32(msg[36:], op)
	if err := unix.Sendto(b.cnFD, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// maxDirMarks bounds the directories the fallback marks one by one.
const maxDirMarks = 8192

// openFanotify marks what the file events need. Load events (every file
// opened) and WithFallbackMarks need file-system marks: every open on the
// file system, filtered here. Otherwise each watched prefix's directory
// tree gets directory marks (events for the files directly inside a
// marked directory), so other files cost nothing; directories created
// later are not marked.
func (b *fallbackBackend) openFanotify() error {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fanotify_init: %w", err)
	}
	b.fanFD = fd
	mask := uint64(unix.FAN_OPEN | unix.FAN_MODIFY | unix.FAN_CLOSE_WRITE)
	if b.o.kinds[event.KindLoad] || b.o.allPaths || b.o.fallbackMarks != nil {
		return b.markFilesystems(mask)
	}
	return b.markDirectories(mask | unix.FAN_EVENT_ON_CHILD)
}

func (b *fallbackBackend) markFilesystems(mask uint64) error {
	marks := b.o.fallbackMarks
	if marks == nil {
		marks = append([]string{"/"}, b.o.include...)
	}
	seen := map[uint64]bool{}
	var errs []error
	for _, p := range marks {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue // a watched prefix that does not exist here
		}
		if seen[st.Dev] {
			continue
		}
		if err := unix.FanotifyMark(b.fanFD, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, mask, unix.AT_FDCWD, p); err != nil {
			errs = append(errs, fmt.Errorf("mark %s: %w", event.Quote(p, 128), err))
			continue
		}
		seen[st.Dev] = true
	}
	if len(seen) == 0 {
		return fmt.Errorf("no file system could be marked: %w", errors.Join(errs...))
	}
	if len(errs) > 0 {
		b.o.log.Warn("fallback sensor: some file systems are not watched", "err", errors.Join(errs...))
	}
	return nil
}

func (b *fallbackBackend) markDirectories(mask uint64) error {
	n := 0
	var errs []error
	mark := func(dir string) {
		if n >= maxDirMarks {
			return
		}
		if err := unix.FanotifyMark(b.fanFD, unix.FAN_MARK_ADD|unix.FAN_MARK_DONT_FOLLOW, mask, unix.AT_FDCWD, dir); err != nil {
			errs = append(errs, fmt.Errorf("mark %s: %w", event.Quote(dir, 128), err))
			return
		}
		n++
	}
	for _, p := range b.o.include {
		root := p
		if !strings.HasSuffix(p, "/") {
			root = filepath.Dir(p) // a file prefix: its directory
		}
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable or gone: skip
			}
			if !d.IsDir() {
				return nil
			}
			if n >= maxDirMarks {
				return filepath.SkipAll
			}
			mark(path)
			return nil
		})
	}
	if n == 0 {
		return fmt.Errorf("no watched directory could be marked: %w", errors.Join(errs...))
	}
	if n >= maxDirMarks {
		b.o.log.Warn("fallback sensor: directory mark limit reached, deeper directories are not watched", "limit", maxDirMarks)
	}
	return nil
}

func (b *fallbackBackend) run(ctx context.Context, emit func(*event.Event, recordInfo)) error {
	b.stopMu.Lock()
	if b.stopW < 0 {
		b.stopMu.Unlock()
		return nil // closed
	}
	b.running.Add(1)
	b.stopMu.Unlock()
	defer b.running.Done()
	stop := context.AfterFunc(ctx, func() { b.wake() })
	defer stop()
	var mu sync.Mutex // one emit at a time: Run's callback is not concurrent
	out := func(e *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		emit(e, recordInfo{})
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- b.readCNProc(ctx, out) }()
	if b.fanFD >= 0 {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- b.readFanotify(ctx, out) }()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *fallbackBackend) wake() {
	b.stopMu.Lock()
	defer b.stopMu.Unlock()
	if b.stopW >= 0 {
		unix.Close(b.stopW)
		b.stopW = -1
	}
}

// wait blocks until fd is readable (true) or the sensor stops (false).
func (b *fallbackBackend) wait(ctx context.Context, fd int) (bool, error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(b.stopR), Events: unix.POLLIN}}
	for {
		if ctx.Err() != nil {
			return false, nil
		}
		_, err := unix.Poll(pfd, 1000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll: %w", err)
		}
		if pfd[1].Revents != 0 {
			return false, nil
		}
		if pfd[0].Revents != 0 {
			return true, nil
		}
	}
}

func (b *fallbackBackend) readCNProc(ctx context.Context, out func(*event.Event)) error {
	buf := make([]byte, 64<<10)
	for {
		ok, err := b.wait(ctx, b.cnFD)
		if !ok || err != nil {
			return err
		}
		for {
			n, _, err := unix.Recvfrom(b.cnFD, buf, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			if err == unix.ENOBUFS {
				b.c.overflows.Add(1) // the socket buffer overflowed: events lost
				continue
			}
			if err != nil {
				return fmt.Errorf("sensor: proc connector: %w", err)
			}
			for _, msg := range splitNetlink(buf[:n]) {
				if e := b.cnEvent(msg); e != nil {
					out(e)
				}
			}
		}
	}
}

// splitNetlink returns the payloads of the netlink messages in b.
func splitNetlink(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= nlmsgHdrLen {
		l := int(binary.LittleEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			break
		}
		out = append(out, b[nlmsgHdrLen:l])
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

// cnEvent turns one proc connector message into an event (nil: not one).
func (b *fallbackBackend) cnEvent(msg []byte) *event.Event {
	if len(msg) < cnMsgLen+procEventHdrLen {
		return nil
	}
	le := binary.LittleEndian
	if le.Uint32(msg[0:]) != cnIdxProc || le.Uint32(msg[4:]) != cnValProc {
		return nil
	}
	ev := msg[cnMsgLen:]
	what := le.Uint32(ev[0:])
	ts := le.Uint64(ev[8:])
	d := ev[procEventHdrLen:]
	u := func(i int) uint32 {
		if len(d) < 4*(i+1) {
			return 0
		}
		return le.Uint32(d[4*i:])
	}
	at := time.Unix(0, int64(ts)).Add(b.monoOff)
	var e *event.Event
	switch what {
	case procEventExec:
		pid, tgid := int(u(0)), int(u(1))
		if pid != tgid {
			return nil // a thread execs as its group leader's pid: the leader reports
		}
		b.forget(tgid)
		if e = b.procEvent(event.KindExec, tgid); e == nil {
			return nil
		}
		e.File.Path = e.Process.Exe
	case procEventFork:
		ptgid, cpid, ctgid := int(u(1)), int(u(2)), int(u(3))
		if cpid != ctgid {
			return nil // a new thread
		}
		if e = b.procEvent(event.KindFork, ctgid); e == nil {
			return nil
		}
		e.Process.PPID = ptgid
	case procEventExit:
		pid, tgid, code, sig := int(u(0)), int(u(1)), u(2), u(3)
		if pid != tgid {
			return nil
		}
		_ = sig
		if !b.o.kinds[event.KindExit] {
			b.forget(tgid)
			return nil
		}
		b.mu.Lock()
		s, known := b.snaps[tgid]
		delete(b.snaps, tgid)
		b.mu.Unlock()
		if !known {
			s.proc = event.Process{PID: tgid, TID: tgid, LoginUID: -1}
		}
		s.proc.PPID = int(u(5))
		if b.skip(tgid, s.cgid) {
			return nil
		}
		e = &event.Event{Kind: event.KindExit, Process: s.proc, CgroupID: s.cgid, Namespaces: s.ns}
		e.Ret = exitStatus(uint64(code), 0, 0)
	case procEventUID, procEventGID:
		tgid := int(u(1))
		r, eff := idOrUnset(u(2)), idOrUnset(u(3))
		kind := event.KindSetuid
		if what == procEventGID {
			kind = event.KindSetgid
		}
		b.forget(tgid) // credentials changed
		if e = b.procEvent(kind, tgid); e == nil {
			return nil
		}
		if kind == event.KindSetuid {
			e.SetID = event.SetID{UID: r, EUID: eff, SUID: -1, GID: -1, EGID: -1, SGID: -1, PrevUID: -1}
		} else {
			e.SetID = event.SetID{GID: r, EGID: eff, SGID: -1, UID: -1, EUID: -1, SUID: -1, PrevUID: -1}
		}
	case procEventPtrace:
		target, tracer := int(u(1)), int(u(3))
		req := event.PtraceAttach
		if tracer == 0 {
			return nil // a detach: the tracer is not named
		}
		if e = b.procEvent(event.KindPtrace, tracer); e == nil {
			return nil
		}
		e.Ptrace = event.Ptrace{Request: req, RequestName: event.PtraceRequestName(req), TargetPID: target}
	default:
		return nil
	}
	e.Time = at
	return e
}

// procEvent builds an event of kind for process pid from /proc, or nil
// when the kind is off, the process is filtered out or already gone.
func (b *fallbackBackend) procEvent(kind event.Kind, pid int) *event.Event {
	if !b.o.kinds[kind] || pid == b.self {
		return nil
	}
	s, ok := b.snap(pid)
	if !ok {
		// Gone before /proc could be read (a short-lived process while
		// the reader was behind): report what is known, the PID.
		s.proc = event.Process{PID: pid, TID: pid, LoginUID: -1}
	}
	if b.skip(pid, s.cgid) {
		return nil
	}
	e := &event.Event{Time: time.Now(), Kind: kind, Process: s.proc, CgroupID: s.cgid, Namespaces: s.ns}
	if kind != event.KindExec {
		e.Process.Cwd = ""
	}
	return e
}

func (b *fallbackBackend) snap(pid int) (snapshot, bool) {
	b.mu.Lock()
	s, ok := b.snaps[pid]
	b.mu.Unlock()
	if ok {
		return s, true
	}
	s, ok = b.pfs.read(pid)
	if !ok {
		return s, false
	}
	b.mu.Lock()
	if len(b.snaps) >= defaultMaxProcs {
		for k := range b.snaps {
			delete(b.snaps, k)
			break
		}
	}
	b.snaps[pid] = s
	b.mu.Unlock()
	return s, true
}

func (b *fallbackBackend) forget(pid int) {
	b.mu.Lock()
	delete(b.snaps, pid)
	b.mu.Unlock()
}

// skip applies the self and cgroup filters.
func (b *fallbackBackend) skip(pid int, cgid uint64) bool {
	if pid == b.self {
		return true
	}
	v := b.cgFilter[cgid]
	if len(b.o.cgInclude) > 0 {
		return v != cgInclude
	}
	return v == cgExclude
}

// fanotify event metadata (linux/fanotify.h).
const fanMetaLen = 24

func (b *fallbackBackend) readFanotify(ctx context.Context, out func(*event.Event)) error {
	buf := make([]byte, 64<<10)
	for {
		ok, err := b.wait(ctx, b.fanFD)
		if !ok || err != nil {
			return err
		}
		for {
			n, err := unix.Read(b.fanFD, buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			if err != nil {
				return fmt.Errorf("sensor: fanotify: %w", err)
			}
			for off := 0; off+fanMetaLen <= n; {
				le := binary.LittleEndian
				evLen := int(le.Uint32(buf[off:]))
				if evLen < fanMetaLen || off+evLen > n {
					b.c.decode.Add(1)
					break
				}
				mask := le.Uint64(buf[off+8:])
				fd := int32(le.Uint32(buf[off+16:]))
				pid := int(int32(le.Uint32(buf[off+20:])))
				off += evLen
				if mask&unix.FAN_Q_OVERFLOW != 0 {
					b.c.overflows.Add(1)
				}
				if fd < 0 {
					continue
				}
				for _, e := range b.fanEvents(int(fd), mask, pid) {
					out(e)
				}
				unix.Close(int(fd))
			}
		}
	}
}

// fanEvents turns one fanotify event (an open file descriptor) into events.
func (b *fallbackBackend) fanEvents(fd int, mask uint64, pid int) []*event.Event {
	if pid == b.self {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil
	}
	mk := modKey{pid: pid, dev: st.Dev, ino: st.Ino}
	if mask&unix.FAN_CLOSE_WRITE != 0 {
		b.mu.Lock()
		delete(b.modified, mk)
		b.mu.Unlock()
		if mask&(unix.FAN_OPEN|unix.FAN_MODIFY) == 0 {
			return nil
		}
	}
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return nil
	}
	var kinds []event.Kind
	if mask&unix.FAN_MODIFY != 0 && b.o.kinds[event.KindWrite] {
		b.mu.Lock()
		first := !b.modified[mk]
		if first {
			if len(b.modified) >= maxLoaded {
				clear(b.modified)
			}
			b.modified[mk] = true
		}
		b.mu.Unlock()
		if first && b.filter.match(path) {
			kinds = append(kinds, event.KindWrite)
		}
	}
	if mask&unix.FAN_OPEN != 0 && b.o.kinds[event.KindOpen] && b.filter.match(path) {
		kinds = append(kinds, event.KindOpen)
	}
	wantLoad := mask&unix.FAN_OPEN != 0 && b.o.kinds[event.KindLoad] && st.Mode&unix.S_IFMT == unix.S_IFREG
	if len(kinds) == 0 && !wantLoad {
		return nil
	}
	s, ok := b.snap(pid)
	if !ok {
		s.proc = event.Process{PID: pid, TID: pid, LoginUID: -1}
	}
	if b.skip(pid, s.cgid) {
		return nil
	}
	if wantLoad {
		lk := loadKey{cgid: s.cgid, dev: st.Dev, ino: st.Ino}
		b.mu.Lock()
		if !b.loaded[lk] {
			if len(b.loaded) >= maxLoaded {
				clear(b.loaded) // forget all: files are then reported once more
			}
			b.loaded[lk] = true
			kinds = append(kinds, event.KindLoad)
		}
		b.mu.Unlock()
	}
	now := time.Now()
	evs := make([]*event.Event, 0, len(kinds))
	for _, k := range kinds {
		e := &event.Event{Time: now, Kind: k, Process: s.proc, CgroupID: s.cgid, Namespaces: s.ns,
			File: event.File{Path: path, Resolved: true, Inode: st.Ino, Dev: st.Dev}}
		e.Process.Cwd = ""
		evs = append(evs, e)
	}
	return evs
}

func (b *fallbackBackend) kernelStats() (emitted, lost map[event.Kind]uint64, pathTrunc uint64, err error) {
	return nil, nil, 0, nil
}

func (b *fallbackBackend) close() error {
	b.wake()
	b.running.Wait() // the readers have left poll: their descriptors can go
	if b.cnFD >= 0 {
		_ = b.cnControl(procCnMcastIgnore)
		unix.Close(b.cnFD)
		b.cnFD = -1
	}
	if b.fanFD >= 0 {
		unix.Close(b.fanFD)
		b.fanFD = -1
	}
	if b.stopR >= 0 {
		unix.Close(b.stopR)
		b.stopR = -1
	}
	return nil
}

// inodeOf is the inode number of path (0 when it cannot be read).
func inodeOf(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}
