package fanotify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrRunning: Run was called on a listener that runs or has run.
	ErrRunning = errors.New("fanotify: listener already running")
	// ErrClosed: the listener is closed.
	ErrClosed = errors.New("fanotify: listener closed")
	// ErrProtocol: the kernel sent an event this package cannot parse
	// (another metadata version).
	ErrProtocol = errors.New("fanotify: unexpected event format")
)

// eventFlags are the flags of the descriptors the kernel opens for each
// event. O_NONBLOCK matters for FIFOs: the kernel opens the event's file in
// the listener's read(2), and a blocking read-only open of a FIFO would
// wait for a writer there.
const eventFlags = unix.O_RDONLY | unix.O_LARGEFILE | unix.O_CLOEXEC | unix.O_NONBLOCK

// Listener is one fanotify group with a bounded, deadline-keeping event
// loop. Create it with New, add marks with Mark, then call Run.
type Listener struct {
	o        *options
	group    *os.File
	selfPID  int32
	selfExe  string
	selfDev  uint64
	selfIno  uint64
	running  atomic.Bool
	closeMu  sync.Once
	closeErr error
	stats    counters
	queue    chan *Event
	baseCtx  context.Context
}

// New creates the fanotify group (fanotify_init(2)); it needs
// CAP_SYS_ADMIN. The group reports descriptor-open errors in the event
// (FAN_REPORT_FD_ERROR, Linux 6.13) where the kernel supports it, so they
// are counted (Stats.FDErrors) instead of failing the read.
func New(opts ...Option) (*Listener, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	flags := uint(o.class) | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK
	fd, err := unix.FanotifyInit(flags|unix.FAN_REPORT_FD_ERROR, eventFlags)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.FanotifyInit(flags, eventFlags)
	}
	if err != nil {
		return nil, fmt.Errorf("fanotify: fanotify_init: %w", err)
	}
	l := &Listener{o: o, group: os.NewFile(uintptr(fd), "fanotify"), selfPID: int32(os.Getpid())}
	if l.selfExe, err = os.Readlink("/proc/self/exe"); err != nil {
		_ = l.group.Close() // nothing marked yet
		return nil, fmt.Errorf("fanotify: own executable: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err == nil {
		l.selfDev, l.selfIno = st.Dev, st.Ino
	}
	return l, nil
}

// MarkKind says what a mark covers.
type MarkKind uint

const (
	// MarkInode marks one file or directory (with EventOnChild, its
	// direct children).
	MarkInode MarkKind = unix.FAN_MARK_INODE
	// MarkMount marks the mount containing the path: only accesses through
	// that mount are seen.
	MarkMount MarkKind = unix.FAN_MARK_MOUNT
	// MarkFilesystem marks the whole file system containing the path,
	// through every mount of it (Linux 4.20).
	MarkFilesystem MarkKind = unix.FAN_MARK_FILESYSTEM
)

// Mark adds mask to the mark of kind on path (fanotify_mark(2),
// FAN_MARK_ADD). Permission masks need ClassContent or ClassPreContent.
func (l *Listener) Mark(kind MarkKind, path string, mask uint64) error {
	if mask&permMask != 0 && l.o.class == ClassNotif {
		return fmt.Errorf("fanotify: mark %s: permission events need ClassContent or ClassPreContent", path)
	}
	if err := unix.FanotifyMark(l.fd(), unix.FAN_MARK_ADD|uint(kind), mask, unix.AT_FDCWD, path); err != nil {
		return fmt.Errorf("fanotify: mark %s (kind %#x, mask %#x): %w", path, uint(kind), mask, err)
	}
	return nil
}

// Unmark removes mask from the mark of kind on path (FAN_MARK_REMOVE).
func (l *Listener) Unmark(kind MarkKind, path string, mask uint64) error {
	if err := unix.FanotifyMark(l.fd(), unix.FAN_MARK_REMOVE|uint(kind), mask, unix.AT_FDCWD, path); err != nil {
		return fmt.Errorf("fanotify: unmark %s: %w", path, err)
	}
	return nil
}

// fd is the group's descriptor for fanotify_mark(2), or -1 once closed.
func (l *Listener) fd() int {
	rc, err := l.group.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1
	}
	return fd
}

// Close closes the group. The kernel answers every pending permission
// event Allow; a running Run returns. Close is idempotent.
func (l *Listener) Close() error {
	l.closeMu.Do(func() {
		if err := l.group.Close(); err != nil {
			l.closeErr = fmt.Errorf("fanotify: close: %w", err)
		}
	})
	return l.closeErr
}

// Run reads and dispatches events until ctx is done or Close is called,
// then closes the group and waits (bounded) for the handlers still
// running. It returns nil after a requested stop, an error when reading
// the group failed. A listener runs once.
func (l *Listener) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return fmt.Errorf("fanotify: nil handler")
	}
	if !l.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	if err := l.checkFDLimit(); err != nil {
		return err
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.baseCtx = hctx
	l.queue = make(chan *Event, l.o.queue)
	stop := context.AfterFunc(ctx, func() { _ = l.Close() }) // Close's error is reported by the caller's Close
	defer stop()

	var wg sync.WaitGroup
	for i := 0; i < l.o.workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.work(h) }()
	}
	quick, _ := h.(QuickDecider)
	err := l.read(h, quick)
	// Closing the group makes the kernel allow every pending permission
	// event, including those still queued here.
	_ = l.Close() // idempotent; a failure is kept for Close's caller
	cancel()
	close(l.queue)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		l.o.logger.Warn("fanotify: handlers still running after close; leaving them", "grace", closeGrace)
	}
	return err
}

// read is the reading loop; it returns nil when the group is closed.
func (l *Listener) read(h Handler, quick QuickDecider) error {
	buf := make([]byte, readBufSize)
	for {
		n, err := l.group.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("fanotify: read: %w", err)
		}
		if err := l.parse(buf[:n], h, quick); err != nil {
			return err
		}
	}
}

// parse walks one read's events. A malformed buffer (which the kernel
// never sends) ends the loop with ErrProtocol.
func (l *Listener) parse(b []byte, h Handler, quick QuickDecider) error {
	for len(b) > 0 {
		m, rest, err := nextEvent(b)
		if err != nil {
			return err
		}
		b = rest
		l.stats.read.Add(1)
		l.dispatch(m.mask, m.fd, m.pid, h, quick)
	}
	return nil
}

// rawEvent is struct fanotify_event_metadata without its framing.
type rawEvent struct {
	mask    uint64
	fd, pid int32
}

// nextEvent decodes the first event of b and returns the rest.
func nextEvent(b []byte) (rawEvent, []byte, error) {
	if len(b) < metadataBytes {
		return rawEvent{}, nil, fmt.Errorf("%w: %d trailing bytes", ErrProtocol, len(b))
	}
	evLen := binary.NativeEndian.Uint32(b[0:])
	vers := b[4]
	metaLen := binary.NativeEndian.Uint16(b[6:])
	if vers != unix.FANOTIFY_METADATA_VERSION || evLen < metadataBytes || uint64(evLen) > uint64(len(b)) || metaLen < metadataBytes || uint32(metaLen) > evLen {
		return rawEvent{}, nil, fmt.Errorf("%w: version %d, length %d (metadata %d) of %d", ErrProtocol, vers, evLen, metaLen, len(b))
	}
	m := rawEvent{mask: binary.NativeEndian.Uint64(b[8:]),
		fd:  int32(binary.NativeEndian.Uint32(b[16:])),
		pid: int32(binary.NativeEndian.Uint32(b[20:]))}
	return m, b[evLen:], nil
}

// dispatch answers what can be answered at once and queues the rest.
func (l *Listener) dispatch(mask uint64, fd, pid int32, h Handler, quick QuickDecider) {
	perm := mask&permMask != 0
	if mask&unix.FAN_Q_OVERFLOW != 0 {
		l.stats.kernelOverflow.Add(1)
		if l.o.onOverflow != nil {
			l.o.onOverflow()
		}
	}
	if fd < 0 {
		// FAN_NOFD (overflow), or -errno with FAN_REPORT_FD_ERROR: the
		// kernel could not open the file for us (EMFILE, ENFILE, a file
		// that cannot be opened read-only). The kernel has already denied
		// a permission event in that case (measured on 6.18; see
		// TestFDErrorNeverHangs), so there is nothing to answer: Run keeps
		// the descriptors it holds far below RLIMIT_NOFILE so that this
		// stays an accident.
		if fd != unix.FAN_NOFD {
			l.stats.fdErrors.Add(1)
		}
		return
	}
	if !perm {
		l.stats.notify.Add(1)
	} else {
		l.stats.perm.Add(1)
	}
	fast := func(counter *atomic.Uint64) {
		counter.Add(1)
		if perm {
			l.respond(int(fd), Allow)
		}
		_ = unix.Close(int(fd)) // read-only descriptor
	}
	if pid == l.selfPID {
		fast(&l.stats.allowedSelf)
		return
	}
	ev := &Event{Mask: mask, PID: pid, fd: int(fd), l: l, received: time.Now()}
	if err := unix.Fstat(int(fd), &ev.Stat); err != nil {
		fast(&l.stats.allowedStatError)
		return
	}
	if ev.Stat.Mode&unix.S_IFMT != unix.S_IFREG {
		fast(&l.stats.allowedNonRegular)
		return
	}
	if ev.Stat.Ino == l.selfIno && ev.Stat.Dev == l.selfDev {
		fast(&l.stats.allowedSelfExe)
		return
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	if err == nil {
		ev.Exe = exe
		if exe == l.selfExe || l.o.excludeExe[exe] {
			fast(&l.stats.allowedExcluded)
			return
		}
	}
	if perm && quick != nil {
		if v, ok := quick.QuickDecide(ev); ok {
			l.stats.quick.Add(1)
			ev.answer(v)
			l.count(v)
			ev.close()
			return
		}
	}
	ev.deadline = ev.received.Add(l.o.budget)
	if perm {
		ev.timer = time.AfterFunc(l.o.budget, func() {
			if ev.answer(l.o.timeoutVerdict) {
				l.stats.timeouts.Add(1)
				l.count(l.o.timeoutVerdict)
			}
		})
	}
	select {
	case l.queue <- ev:
	default:
		if perm {
			if ev.answer(l.o.overflowVerdict) {
				l.stats.queueFull.Add(1)
				l.count(l.o.overflowVerdict)
			}
		} else {
			l.stats.droppedNotify.Add(1)
		}
		ev.close()
	}
}

// work runs handlers for queued events until the queue is closed.
func (l *Listener) work(h Handler) {
	for ev := range l.queue {
		l.handle(h, ev)
	}
}

func (l *Listener) handle(h Handler, ev *Event) {
	defer ev.close()
	if ev.Answered() {
		return // answered at the deadline while it waited in the queue
	}
	if l.baseCtx.Err() != nil {
		return // stopping: the kernel allowed it when the group closed
	}
	ctx, cancel := context.WithDeadline(l.baseCtx, ev.deadline)
	defer cancel()
	v := l.call(ctx, h, ev)
	if !ev.Perm() || ev.early.Load() {
		return
	}
	if ev.answer(v) {
		l.stats.handled.Add(1)
		l.count(v)
	} else {
		l.stats.late.Add(1)
	}
}

// call runs the handler; a panic is logged and treated as the timeout
// verdict, so one bad file cannot stop the listener.
func (l *Listener) call(ctx context.Context, h Handler, ev *Event) (v Verdict) {
	defer func() {
		if r := recover(); r != nil {
			l.stats.panics.Add(1)
			l.o.logger.Error("fanotify: handler panicked; answering the timeout verdict", "panic", fmt.Sprint(r), "pid", ev.PID)
			v = l.o.timeoutVerdict
		}
	}()
	v = h.Decide(ctx, ev)
	if v != Allow && v != Deny {
		l.o.logger.Warn("fanotify: handler returned no verdict; answering the timeout verdict", "verdict", int(v))
		v = l.o.timeoutVerdict
	}
	return v
}

func (l *Listener) count(v Verdict) {
	if v == Deny {
		l.stats.denied.Add(1)
	} else {
		l.stats.allowed.Add(1)
	}
}

// respond writes a verdict for the event whose descriptor is fd.
func (l *Listener) respond(fd int, v Verdict) {
	resp := uint32(unix.FAN_ALLOW)
	if v == Deny {
		resp = unix.FAN_DENY
	}
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(int32(fd)))
	binary.NativeEndian.PutUint32(b[4:], resp)
	if _, err := l.group.Write(b[:]); err != nil {
		// After Close the kernel has answered everything: not an error.
		if !errors.Is(err, os.ErrClosed) {
			l.stats.respondErrors.Add(1)
			l.o.logger.Warn("fanotify: write response", "err", err, "verdict", v.String())
		}
	}
}

// Logger returns the listener's logger.
func (l *Listener) Logger() *slog.Logger { return l.o.logger }

// fdHeadroom is what Run leaves free for everything else in the process.
const fdHeadroom = 256

// checkFDLimit makes sure the descriptors the listener may hold at once
// (a read batch, the queue, the workers) fit well under RLIMIT_NOFILE: the
// kernel denies an open whose event it cannot give the listener a
// descriptor for. It raises the soft limit toward the hard one if needed.
func (l *Listener) checkFDLimit() error {
	need := uint64(readBufSize/metadataBytes + l.o.queue + l.o.workers + fdHeadroom)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("fanotify: getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("fanotify: RLIMIT_NOFILE hard limit %d is below the %d descriptors a queue of %d needs; lower the queue or raise the limit", lim.Max, need, l.o.queue)
	}
	lim.Cur = need
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("fanotify: raise RLIMIT_NOFILE to %d: %w", need, err)
	}
	return nil
}
