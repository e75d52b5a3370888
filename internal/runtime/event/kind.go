package event

import (
	"fmt"
	"strings"
)

// Kind is what happened. Its values are the lower-case names rules compare
// against (`event.kind == "exec"`).
type Kind string

// The kinds the sensor reports. Comments name the hook or system calls
// behind each (docs/runtime-sensor.md has the whole table).
const (
	KindExec    Kind = "exec"    // sched_process_exec: a program image replaced (execve, execveat)
	KindFork    Kind = "fork"    // sched_process_fork: a new process (not a new thread)
	KindExit    Kind = "exit"    // sched_process_exit: a process (thread group) ended
	KindOpen    Kind = "open"    // open, openat, openat2, creat of a watched path
	KindWrite   Kind = "write"   // first open for writing (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC) of a watched path
	KindLoad    Kind = "load"    // a file opened for reading or executed, reported once per (cgroup, dev, inode)
	KindRename  Kind = "rename"  // rename, renameat, renameat2
	KindUnlink  Kind = "unlink"  // unlink, unlinkat, rmdir
	KindChmod   Kind = "chmod"   // chmod, fchmod, fchmodat, fchmodat2
	KindConnect Kind = "connect" // connect
	KindAccept  Kind = "accept"  // accept, accept4
	KindListen  Kind = "listen"  // listen
	KindBind    Kind = "bind"    // bind
	KindPtrace  Kind = "ptrace"  // ptrace (requests other than PTRACE_TRACEME target another process)
	KindMount   Kind = "mount"   // mount (and fsmount/move_mount are not yet covered)
	KindSetuid  Kind = "setuid"  // setuid, setreuid, setresuid, setfsuid
	KindSetgid  Kind = "setgid"  // setgid, setregid, setresgid, setfsgid
	KindCapset  Kind = "capset"  // capset
	// KindModuleLoad: init_module, finit_module. Reported with the return
	// value whether or not the kernel accepted the module.
	KindModuleLoad  Kind = "module_load"
	KindUnshare     Kind = "unshare"      // unshare
	KindSetns       Kind = "setns"        // setns
	KindMemfdCreate Kind = "memfd_create" // memfd_create
	KindSocket      Kind = "socket"       // socket of domain AF_PACKET or type SOCK_RAW
	KindBPF         Kind = "bpf"          // bpf
)

// Kinds lists every kind, in documentation order.
var Kinds = []Kind{
	KindExec, KindFork, KindExit,
	KindOpen, KindWrite, KindLoad, KindRename, KindUnlink, KindChmod,
	KindConnect, KindAccept, KindListen, KindBind,
	KindPtrace, KindMount, KindSetuid, KindSetgid, KindCapset, KindModuleLoad,
	KindUnshare, KindSetns, KindMemfdCreate, KindSocket, KindBPF,
}

// ParseKind reads a kind name (case-insensitive).
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range Kinds {
		if k == known {
			return k, nil
		}
	}
	return "", fmt.Errorf("event: unknown kind %q", Sanitize(s, 64))
}

// IsProcess says whether the kind is a process life-cycle event.
func (k Kind) IsProcess() bool { return k == KindExec || k == KindFork || k == KindExit }

// IsFile says whether the kind carries a File.
func (k Kind) IsFile() bool {
	switch k {
	case KindOpen, KindWrite, KindLoad, KindRename, KindUnlink, KindChmod:
		return true
	}
	return false
}

// IsNetwork says whether the kind carries a Net.
func (k Kind) IsNetwork() bool {
	switch k {
	case KindConnect, KindAccept, KindListen, KindBind:
		return true
	}
	return false
}
