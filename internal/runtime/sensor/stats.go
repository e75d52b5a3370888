package sensor

import (
	"sync/atomic"

	"mamori/internal/runtime/event"
)

// Stats are the sensor's counters since New.
type Stats struct {
	Mode Mode `json:"mode"`
	// SyscallHooks: how system calls are hooked (eBPF mode).
	SyscallHooks SyscallHooks `json:"syscallHooks,omitempty"`
	// Received counts events delivered to Run's callback, per kind.
	Received       uint64                `json:"received"`
	ReceivedByKind map[event.Kind]uint64 `json:"receivedByKind"`
	// Emitted counts records the kernel wrote, per kind (eBPF mode).
	EmittedByKind map[event.Kind]uint64 `json:"emittedByKind,omitempty"`
	// Lost counts events that were seen and matched the filters but could
	// not be delivered: the ring buffer was full (eBPF) or the fanotify
	// queue overflowed (fallback), per kind.
	Lost       uint64                `json:"lost"`
	LostByKind map[event.Kind]uint64 `json:"lostByKind,omitempty"`
	// DecodeErrors counts records that did not decode (skipped).
	DecodeErrors uint64 `json:"decodeErrors"`
	// Filtered counts events user space dropped after the kernel: paths
	// the kernel could not compare (they held "..") outside the prefixes.
	Filtered uint64 `json:"filtered"`
	// PathsTruncated counts paths deeper or longer than the kernel walks
	// (64 components, 4096 bytes): reported with the part that was read.
	PathsTruncated uint64 `json:"pathsTruncated"`
	// Overflows counts fallback queue overflows (fanotify FAN_Q_OVERFLOW,
	// CN_PROC ENOBUFS): events were lost, their kind unknown.
	Overflows uint64 `json:"overflows,omitempty"`
}

// counters are the user-space counts.
type counters struct {
	byKind    [numKinds]atomic.Uint64
	decode    atomic.Uint64
	filtered  atomic.Uint64
	overflows atomic.Uint64
	// lostUser counts fallback events lost in user space, per kind.
	lostUser [numKinds]atomic.Uint64
}

func (c *counters) init() {}

func (c *counters) received(k event.Kind) {
	c.byKind[kindCode(k)].Add(1)
}

// Stats returns the counters: user-space counts plus the kernel's per-CPU
// emitted and lost counters summed.
func (s *Sensor) Stats() (Stats, error) {
	st := Stats{
		Mode:           s.mode,
		SyscallHooks:   s.SyscallHooks(),
		ReceivedByKind: map[event.Kind]uint64{},
		LostByKind:     map[event.Kind]uint64{},
		DecodeErrors:   s.stats.decode.Load(),
		Filtered:       s.stats.filtered.Load(),
		Overflows:      s.stats.overflows.Load(),
	}
	for i := 1; i < numKinds; i++ {
		if n := s.stats.byKind[i].Load(); n > 0 {
			st.ReceivedByKind[kindCodes[i]] = n
			st.Received += n
		}
		if n := s.stats.lostUser[i].Load(); n > 0 {
			st.LostByKind[kindCodes[i]] += n
			st.Lost += n
		}
	}
	emitted, lost, trunc, err := s.b.kernelStats()
	if err != nil {
		return st, err
	}
	if len(emitted) > 0 {
		st.EmittedByKind = emitted
	}
	for k, n := range lost {
		st.LostByKind[k] += n
		st.Lost += n
	}
	st.PathsTruncated = trunc
	return st, nil
}
