// Package integrity is the integrity monitoring engine of the node agent
// (issue 12, item 2): a baseline of chosen paths (content SHA-256, owner,
// mode, size, times, inode, extended attributes with file capabilities and
// POSIX ACLs decoded, file type, symlink target) and of the host's
// packages, users and groups, sudoers entries, enabled services, listening
// ports and kernel modules; a compare of the host against the baseline
// (scheduled, or after the kernel's event queue overflowed) and real-time
// change detection (fanotify where the kernel and privileges allow it,
// inotify otherwise). Every change is an Event with the attributes before
// and after.
//
// The pieces, each usable alone:
//
//	Scan      walks the paths of a RuleSet and returns their File records
//	          (parallel hashing bounded by the cores; with a previous
//	          baseline, files whose size, times and inode are unchanged are
//	          not read again)
//	Collect   reads the system objects (Collectors: packages, users ...)
//	Build     Scan + Collect = a Baseline, saved and loaded with Save/Load
//	          (a compact, checksummed file written atomically)
//	Compare   a pure function: two baselines in, the Events between them
//	Monitor   the real-time loop: watches, coalesces bursts, rescans on
//	          queue overflow, polls ports and modules, runs the scheduled
//	          full compare and reports each change once
//
// Paths in records and events are the host's absolute paths as seen from
// the configured root ("/" on a host; a test root in tests), never the root
// prefix itself.
package integrity

import (
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrCorrupt: a baseline file is truncated, altered or not a baseline.
	ErrCorrupt = errors.New("integrity: corrupt baseline")
	// ErrTooLarge: a baseline or input file exceeds a limit.
	ErrTooLarge = errors.New("integrity: too large")
	// ErrInvalidRules: a rule set is malformed.
	ErrInvalidRules = errors.New("integrity: invalid rules")
)

// Kind is the kind of object a baseline records.
type Kind string

// Kinds, in the order Compare reports them.
const (
	KindFile    Kind = "file"
	KindPackage Kind = "package"
	KindUser    Kind = "user"
	KindGroup   Kind = "group"
	KindSudoers Kind = "sudoers"
	KindService Kind = "service"
	KindPort    Kind = "port"
	KindModule  Kind = "module"
)

// Change says what happened to an object.
type Change string

const (
	Added    Change = "added"
	Removed  Change = "removed"
	Modified Change = "modified"
)

// Source says what found a change.
type Source string

const (
	// SourceRealtime: a file system event (fanotify / inotify).
	SourceRealtime Source = "realtime"
	// SourceRescan: the rescan after the kernel's event queue overflowed.
	SourceRescan Source = "rescan"
	// SourceCompare: a scheduled or requested full compare.
	SourceCompare Source = "compare"
	// SourcePoll: a periodic read of /proc (ports, kernel modules).
	SourcePoll Source = "poll"
)

// Event is one change between the baseline (or the last state reported)
// and the host.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"kind"`
	Key    string    `json:"key"` // path, package, user, group, sudoers entry, unit, port, module
	Change Change    `json:"change"`
	// Changed names the attributes that differ (Modified only), sorted.
	Changed []string `json:"changed,omitempty"`
	// Before and After hold the attributes of the two sides; Before is nil
	// for Added and After for Removed. Values are valid UTF-8 without NUL
	// and at most MaxAttrLen bytes; password hashes never appear.
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
	// Rule is the rule set entry the path falls under (files), or the
	// collector name (other kinds); Severity is the rule's.
	Rule     string   `json:"rule,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	Source   Source   `json:"source"`
}

// Severity of a rule's changes.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)
