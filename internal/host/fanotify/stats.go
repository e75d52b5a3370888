package fanotify

import "sync/atomic"

// Stats counts what a Listener did; every event read lands in exactly one
// of the answer counters (permission events) or in Notify.
type Stats struct {
	// Read is every event read from the group.
	Read uint64
	// Perm and Notify split the events that came with a file.
	Perm, Notify uint64
	// AllowedSelf: events of the listener's own process.
	AllowedSelf uint64
	// AllowedSelfExe: opens of the listener's own executable file.
	AllowedSelfExe uint64
	// AllowedExcluded: events of processes running the listener's own or an
	// excluded executable.
	AllowedExcluded uint64
	// AllowedNonRegular: FIFOs, devices, sockets, directories.
	AllowedNonRegular uint64
	// AllowedStatError: fstat of the event's file failed.
	AllowedStatError uint64
	// Quick: answered by the handler's QuickDecide (cache hits).
	Quick uint64
	// Handled: answered by the handler within the budget.
	Handled uint64
	// Timeouts: answered with the timeout verdict at the deadline.
	Timeouts uint64
	// QueueFull: answered with the overflow verdict because the queue was full.
	QueueFull uint64
	// Late: handler verdicts that came after the deadline (discarded).
	Late uint64
	// Allowed and Denied count the verdicts sent by Quick, Handled,
	// Timeouts and QueueFull.
	Allowed, Denied uint64
	// DroppedNotify: notification events dropped because the queue was full.
	DroppedNotify uint64
	// KernelOverflow: FAN_Q_OVERFLOW events (the kernel dropped events).
	KernelOverflow uint64
	// FDErrors: events whose file the kernel could not open for the
	// listener; the kernel denied those that were permission events.
	FDErrors uint64
	// RespondErrors: verdict writes the kernel refused.
	RespondErrors uint64
	// Panics: handler panics (answered with the timeout verdict).
	Panics uint64
}

type counters struct {
	read, perm, notify                                              atomic.Uint64
	allowedSelf, allowedSelfExe, allowedExcluded, allowedNonRegular atomic.Uint64
	allowedStatError, quick, handled, timeouts                      atomic.Uint64
	queueFull, late, allowed, denied, droppedNotify, kernelOverflow atomic.Uint64
	fdErrors, respondErrors, panics                                 atomic.Uint64
}

// Stats returns a snapshot of the listener's counters.
func (l *Listener) Stats() Stats {
	c := &l.stats
	return Stats{
		Read: c.read.Load(), Perm: c.perm.Load(), Notify: c.notify.Load(),
		AllowedSelf: c.allowedSelf.Load(), AllowedSelfExe: c.allowedSelfExe.Load(),
		AllowedExcluded: c.allowedExcluded.Load(), AllowedNonRegular: c.allowedNonRegular.Load(),
		AllowedStatError: c.allowedStatError.Load(),
		Quick:            c.quick.Load(), Handled: c.handled.Load(), Timeouts: c.timeouts.Load(),
		QueueFull: c.queueFull.Load(), Late: c.late.Load(), Allowed: c.allowed.Load(),
		Denied: c.denied.Load(), DroppedNotify: c.droppedNotify.Load(),
		KernelOverflow: c.kernelOverflow.Load(), FDErrors: c.fdErrors.Load(),
		RespondErrors: c.respondErrors.Load(), Panics: c.panics.Load(),
	}
}
