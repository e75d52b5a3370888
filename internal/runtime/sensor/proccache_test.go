package sensor

import (
	"testing"

	"mamori/internal/runtime/event"
)

// TestProcCachePrevUID: a credential event carries the real uid the process had at its previous
// event (the kernel reports the credentials after the call), -1 when the process was not seen.
func TestProcCachePrevUID(t *testing.T) {
	c := newProcCache(t.TempDir()) // an empty /proc: nothing to read for unseen processes
	ev := func(kind event.Kind, pid, uid int) *event.Event {
		e := &event.Event{Kind: kind, Process: event.Process{PID: pid, PPID: 1, UID: uid, StartTime: uint64(pid) * 1e9}}
		if kind == event.KindSetuid || kind == event.KindSetgid || kind == event.KindCapset {
			e.SetID = event.SetID{UID: 0, EUID: -1, SUID: -1, GID: -1, EGID: -1, SGID: -1, PrevUID: -1}
		}
		return e
	}
	c.observe(ev(event.KindExec, 100, 1000)) // a set-user-ID program run by uid 1000
	c.observe(ev(event.KindOpen, 100, 1000))
	e := ev(event.KindSetuid, 100, 0) // setuid(0): uid 0 at exit
	c.observe(e)
	if e.SetID.PrevUID != 1000 {
		t.Fatalf("setuid after exec as 1000: PrevUID %d, want 1000", e.SetID.PrevUID)
	}
	e = ev(event.KindSetuid, 100, 0) // another thread's setuid, after the first
	c.observe(e)
	if e.SetID.PrevUID != 0 {
		t.Fatalf("second setuid: PrevUID %d, want 0", e.SetID.PrevUID)
	}
	// A fork inherits the uid it is reported with.
	fork := ev(event.KindFork, 101, 1000)
	fork.Process.PPID = 100
	c.observe(fork)
	e = ev(event.KindCapset, 101, 1000)
	c.observe(e)
	if e.SetID.PrevUID != 1000 {
		t.Fatalf("capset after fork as 1000: PrevUID %d, want 1000", e.SetID.PrevUID)
	}
	// Never seen (and not in /proc): unknown.
	e = ev(event.KindSetuid, 200, 0)
	c.observe(e)
	if e.SetID.PrevUID != -1 {
		t.Fatalf("unseen process: PrevUID %d, want -1", e.SetID.PrevUID)
	}
	// A reused PID (another start time) does not inherit the old process's uid.
	e = ev(event.KindSetuid, 100, 0)
	e.Process.StartTime++
	c.observe(e)
	if e.SetID.PrevUID != -1 {
		t.Fatalf("reused PID: PrevUID %d, want -1", e.SetID.PrevUID)
	}
}
