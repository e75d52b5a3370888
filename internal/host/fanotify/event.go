package fanotify

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Class is a fanotify group's class (fanotify_init(2)).
type Class uint

const (
	// ClassNotif receives notification events only.
	ClassNotif Class = unix.FAN_CLASS_NOTIF
	// ClassContent receives permission events once the content is final
	// (anti-malware, application control).
	ClassContent Class = unix.FAN_CLASS_CONTENT
	// ClassPreContent receives permission events before content is
	// available (hierarchical storage managers).
	ClassPreContent Class = unix.FAN_CLASS_PRE_CONTENT
)

// Event masks, as fanotify_mark(2) names them.
const (
	Open          = unix.FAN_OPEN
	OpenExec      = unix.FAN_OPEN_EXEC
	CloseWrite    = unix.FAN_CLOSE_WRITE
	Modify        = unix.FAN_MODIFY
	OpenPerm      = unix.FAN_OPEN_PERM
	OpenExecPerm  = unix.FAN_OPEN_EXEC_PERM
	AccessPerm    = unix.FAN_ACCESS_PERM
	OnDir         = unix.FAN_ONDIR
	EventOnChild  = unix.FAN_EVENT_ON_CHILD
	permMask      = unix.FAN_OPEN_PERM | unix.FAN_OPEN_EXEC_PERM | unix.FAN_ACCESS_PERM | unix.FAN_PRE_ACCESS
	execMask      = unix.FAN_OPEN_EXEC | unix.FAN_OPEN_EXEC_PERM
	metadataBytes = 24 // sizeof(struct fanotify_event_metadata)
)

// Verdict is the answer to a permission event.
type Verdict uint8

const (
	// Allow lets the open or exec proceed.
	Allow Verdict = iota + 1
	// Deny makes the open or exec fail with EPERM.
	Deny
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Event is one fanotify event handed to a Handler. Its file descriptor is
// valid until the handler returns; the listener closes it.
type Event struct {
	// Mask is the event's mask (OpenPerm, OpenExecPerm, CloseWrite, …).
	Mask uint64
	// PID is the thread group ID of the process that caused the event.
	PID int32
	// Exe is /proc/PID/exe read when the event arrived ("" when the process
	// is gone or unreadable; " (deleted)" suffixed when its file was
	// replaced).
	Exe string
	// Stat is fstat(2) of the event's file.
	Stat unix.Stat_t

	fd       int
	file     *os.File
	received time.Time
	deadline time.Time
	state    atomic.Uint32 // 0 pending, 1 answered
	early    atomic.Bool   // answered by the handler through Respond
	verdict  atomic.Uint32
	timer    *time.Timer
	l        *Listener
}

// Perm reports whether the event is a permission event that needs a verdict.
func (e *Event) Perm() bool { return e.Mask&permMask != 0 }

// Exec reports whether the file is being opened for execution (execve(2),
// uselib(2)), as opposed to a plain open.
func (e *Event) Exec() bool { return e.Mask&execMask != 0 }

// Received is when the listener read the event.
func (e *Event) Received() time.Time { return e.received }

// Deadline is when the listener answers a permission event itself.
func (e *Event) Deadline() time.Time { return e.deadline }

// Answered reports whether a verdict has been sent (by the handler or by
// the listener at the deadline).
func (e *Event) Answered() bool { return e.state.Load() == 1 }

// Verdict is the verdict sent, or 0 when none yet.
func (e *Event) Verdict() Verdict { return Verdict(e.verdict.Load()) }

// Fd is the event's file descriptor, opened by the kernel read-only for the
// listener (reads through it cause no fanotify events).
func (e *Event) Fd() int { return e.fd }

// File returns the event's file as an *os.File. The listener closes it
// after the handler returns: the handler must not close it or keep it.
func (e *Event) File() *os.File {
	if e.file == nil {
		e.file = os.NewFile(uintptr(e.fd), "fanotify-event")
	}
	return e.file
}

// ReadAt implements io.ReaderAt with pread(2) on the event's descriptor.
func (e *Event) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(e.fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Path is the file's path as the kernel names the event's descriptor
// (/proc/self/fd/N): the path the opener used, resolved, in the listener's
// mount namespace; " (deleted)" suffixed when the file was unlinked.
func (e *Event) Path() (string, error) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(e.fd))
	if err != nil {
		return "", fmt.Errorf("fanotify: path of event fd: %w", err)
	}
	return p, nil
}

// Respond sends the verdict for a permission event now, before Decide
// returns, so a handler can deny at once and then do slow work with the
// file still open (quarantining it). It returns false when the event is
// not a permission event or was already answered (at the deadline);
// Decide's return value is then ignored.
func (e *Event) Respond(v Verdict) bool {
	if !e.Perm() || (v != Allow && v != Deny) {
		return false
	}
	if !e.answer(v) {
		return false
	}
	e.early.Store(true)
	e.l.stats.handled.Add(1)
	e.l.count(v)
	return true
}

// answer sends v for a permission event once; later calls do nothing and
// return false.
func (e *Event) answer(v Verdict) bool {
	if !e.state.CompareAndSwap(0, 1) {
		return false
	}
	e.verdict.Store(uint32(v))
	e.l.respond(e.fd, v)
	return true
}

// close releases the event's descriptor.
func (e *Event) close() {
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.file != nil {
		_ = e.file.Close() // read-only descriptor: nothing to flush
		return
	}
	_ = unix.Close(e.fd) // read-only descriptor: nothing to flush
}

// Handler decides permission events and observes notification events.
//
// Decide is called from the listener's workers, concurrently. ctx ends at
// the event's deadline (or when the listener stops): a handler should stop
// work then, but the listener answers at the deadline whether it does or
// not. For notification events the returned verdict is ignored.
type Handler interface {
	Decide(ctx context.Context, ev *Event) Verdict
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, ev *Event) Verdict

// Decide implements Handler.
func (f HandlerFunc) Decide(ctx context.Context, ev *Event) Verdict { return f(ctx, ev) }

// QuickDecider is an optional Handler extension for answers from memory (a
// verdict cache keyed by ev.Stat): QuickDecide is called in the reading
// goroutine before the event is queued, and when it returns ok the verdict
// is sent at once without a worker hand-off. It must not block, do I/O or
// call ev.File.
type QuickDecider interface {
	QuickDecide(ev *Event) (v Verdict, ok bool)
}
