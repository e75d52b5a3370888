// Package event is the typed runtime event: what the node agent's sensor
// reports, what attribution completes with the container, and what runtime
// rules read.
//
// One Event is one thing a process did (exec, open, connect, ...). Kind
// says which, and selects the kind-specific part that is filled (File for
// file kinds, Net for network kinds, and so on); the other parts are zero,
// so a rule may read any field without a presence check. Strings are the
// raw bytes the kernel gave (paths and arguments may hold newlines, control
// characters or invalid UTF-8): render them with Sanitize, Quote or
// (*Event).String, never raw, in any output a person or a log parser reads.
package event

import (
	"time"
)

// Event is one runtime event.
type Event struct {
	// Time is when the kernel saw it (wall clock, converted from the
	// kernel's boot-time clock).
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Syscall names the system call for syscall-based kinds ("openat2",
	// "setresuid", "finit_module"); empty for exec, fork and exit.
	Syscall string `json:"syscall,omitempty"`
	// Ret is the system call's return value: >= 0 on success, -errno on
	// failure (a refused finit_module has Ret -38 ENOSYS or -1 EPERM ...).
	// For exit it is the exit code (status >> 8) or 128+signal.
	Ret int64 `json:"ret"`
	// Compat says the system call came through the 32-bit entry (int 0x80
	// or ia32 on x86-64): rare in a 64-bit system, a known evasion.
	Compat bool `json:"compat,omitempty"`

	Process Process `json:"process"`

	// CgroupID is the id of the process's cgroup v2 (unified hierarchy)
	// cgroup: the inode number of its directory under /sys/fs/cgroup
	// (or /sys/fs/cgroup/unified on hybrid hosts).
	CgroupID   uint64     `json:"cgroupId"`
	Namespaces Namespaces `json:"namespaces"`
	// Container is filled by attribution in user space; its zero value
	// means the host (no container).
	Container Container `json:"container,omitzero"`

	// Kind-specific parts; only the one of the event's kind is filled.
	File   File   `json:"file,omitzero"`   // open, write, load, rename, unlink, chmod
	Net    Net    `json:"net,omitzero"`    // connect, accept, listen, bind
	Ptrace Ptrace `json:"ptrace,omitzero"` // ptrace
	Mount  Mount  `json:"mount,omitzero"`  // mount
	SetID  SetID  `json:"setid,omitzero"`  // setuid, setgid, capset
	Module Module `json:"module,omitzero"` // module_load
	NS     NS     `json:"ns,omitzero"`     // unshare, setns
	Memfd  Memfd  `json:"memfd,omitzero"`  // memfd_create
	Socket Socket `json:"socket,omitzero"` // socket
	BPF    BPF    `json:"bpf,omitzero"`    // bpf

	// Drift is set by user space on exec of a file that is not part of the
	// container's image (written or changed after the container started).
	Drift bool `json:"drift,omitempty"`
}

// Failed says whether the system call failed (Ret < 0). Always false for
// exec, fork and exit.
func (e *Event) Failed() bool { return e.Syscall != "" && e.Ret < 0 }

// Process is the process (thread group) that caused the event, as it was
// when the event happened.
type Process struct {
	PID  int `json:"pid"`  // thread group id, as seen from the host (init) PID namespace
	TID  int `json:"tid"`  // thread id
	PPID int `json:"ppid"` // real parent's PID
	UID  int `json:"uid"`  // real
	GID  int `json:"gid"`  // real
	EUID int `json:"euid"`
	EGID int `json:"egid"`
	// LoginUID is the audit login uid; -1 when unset (4294967295 in the kernel).
	LoginUID int `json:"loginuid"`
	// Exe is the absolute path of the executable (the file the kernel
	// mapped, resolved from its dentry). Comm is the kernel's 15-byte
	// task name.
	Exe  string   `json:"exe"`
	Comm string   `json:"comm"`
	Args []string `json:"args,omitempty"` // argv; filled on exec events (and by user space from a cache on others)
	// ArgsTruncated says argv was longer than the sensor copies
	// (MaxArgsBytes bytes or MaxArgs entries).
	ArgsTruncated bool   `json:"argsTruncated,omitempty"`
	Cwd           string `json:"cwd,omitempty"` // current working directory; filled on exec
	// CapEffective and CapPermitted are the capability sets (bit n is
	// capability n, see CapNames).
	CapEffective uint64 `json:"capEffective"`
	CapPermitted uint64 `json:"capPermitted"`
	// TTY says the process has a controlling terminal (an interactive shell).
	TTY        bool   `json:"tty,omitempty"`
	ParentExe  string `json:"parentExe,omitempty"`
	ParentComm string `json:"parentComm,omitempty"`
	// ExeFromMemfd says the executable is a memfd (memfd_create) or another
	// unlinked in-memory file: execution from memory.
	ExeFromMemfd bool `json:"exeFromMemfd,omitempty"`
	// ExeUnlinked says the executable has no name left on disk (nlink 0).
	ExeUnlinked bool `json:"exeUnlinked,omitempty"`
	// StartTime is the process's start, in nanoseconds since boot
	// (CLOCK_BOOTTIME, the kernel's start_boottime). With PID it names a
	// process across PID reuse (see Key).
	StartTime uint64 `json:"startTime"`
}

// ProcKey names a process uniquely on one boot of one host: PIDs are
// reused, (PID, start time) pairs are not.
type ProcKey struct {
	PID       int
	StartTime uint64
}

// Key returns the process's PID-reuse-safe identity.
func (p *Process) Key() ProcKey { return ProcKey{PID: p.PID, StartTime: p.StartTime} }

// HasCap says whether capability c (CapSysAdmin ...) is in the effective set.
func (p *Process) HasCap(c int) bool {
	return c >= 0 && c < 64 && p.CapEffective&(1<<uint(c)) != 0
}

// Namespaces are the inode numbers of the process's namespaces (the
// numbers in /proc/PID/ns/*): the keys attribution maps to containers.
type Namespaces struct {
	Mnt  uint32 `json:"mnt"`
	PID  uint32 `json:"pid"` // pid_ns_for_children: the namespace the process's children are in
	Net  uint32 `json:"net"`
	User uint32 `json:"user,omitempty"`
	UTS  uint32 `json:"uts,omitempty"`
	IPC  uint32 `json:"ipc,omitempty"`
}

// Container is the container an event happened in. User space fills it
// (attribution from containerd, CRI or Docker); the zero value is the host.
type Container struct {
	ID          string            `json:"id,omitempty"`
	Name        string            `json:"name,omitempty"`
	Image       string            `json:"image,omitempty"`       // reference as the runtime knows it
	ImageDigest string            `json:"imageDigest,omitempty"` // sha256:... of the manifest, or the image ID
	Pod         string            `json:"pod,omitempty"`         // Kubernetes pod name
	Namespace   string            `json:"namespace,omitempty"`   // Kubernetes namespace (or containerd namespace without Kubernetes)
	Labels      map[string]string `json:"labels,omitempty"`
	Runtime     string            `json:"runtime,omitempty"` // "containerd", "cri", "docker"
}

// IsHost says the event happened outside any known container.
func (c *Container) IsHost() bool { return c.ID == "" }

// File is the file of a file event.
type File struct {
	// Path is absolute, as the process sees it (its root and mounts), when
	// the sensor could resolve it; otherwise the path the process passed
	// (then it may be relative: Resolved is false).
	Path     string `json:"path"`
	NewPath  string `json:"newPath,omitempty"` // rename target
	Resolved bool   `json:"resolved,omitempty"`
	Flags    int    `json:"flags,omitempty"` // open flags (O_WRONLY, O_CREAT ...); unlinkat/renameat2 flags
	Mode     uint32 `json:"mode,omitempty"`  // chmod mode; creation mode of open with O_CREAT
	Inode    uint64 `json:"inode,omitempty"`
	Dev      uint64 `json:"dev,omitempty"` // the file system's device, encoded as stat(2)'s st_dev
	FD       int    `json:"fd,omitempty"`  // fchmod's descriptor
}

// Net is the socket of a network event.
type Net struct {
	Family   int    `json:"family"`             // AF_INET 2, AF_INET6 10, AF_UNIX 1 ...
	Type     int    `json:"type,omitempty"`     // SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3
	Protocol string `json:"protocol,omitempty"` // "tcp", "udp", "unix", "raw" ...
	SrcAddr  string `json:"srcAddr,omitempty"`  // local address (bind, accept, connect when known)
	SrcPort  int    `json:"srcPort,omitempty"`
	DstAddr  string `json:"dstAddr,omitempty"` // remote address (connect, accept); the socket path for AF_UNIX
	DstPort  int    `json:"dstPort,omitempty"`
	Backlog  int    `json:"backlog,omitempty"` // listen
}

// Ptrace is the request of a ptrace event.
type Ptrace struct {
	Request     int    `json:"request"`
	RequestName string `json:"requestName,omitempty"` // "PTRACE_ATTACH" ...
	TargetPID   int    `json:"targetPid"`
}

// Mount is the mount of a mount event.
type Mount struct {
	Source string `json:"source,omitempty"`
	Target string `json:"target"`
	FSType string `json:"fsType,omitempty"`
	Flags  uint64 `json:"flags,omitempty"`
}

// SetID is what a setuid, setgid or capset call asked for; -1 means
// "unchanged" as in setresuid(2).
type SetID struct {
	UID  int `json:"uid"`  // setuid's argument, or the real uid of setreuid/setresuid
	EUID int `json:"euid"` // effective (setreuid, setresuid)
	SUID int `json:"suid"` // saved (setresuid)
	GID  int `json:"gid"`
	EGID int `json:"egid"`
	SGID int `json:"sgid"`
	// PrevUID is the process's real uid before the call, from the sensor's process table (the
	// uid of its previous event); -1 when unknown (the process had no earlier event). The
	// kernel reports the credentials after the call: a setuid(0) that makes a non-root real uid
	// root shows uid 0 in the process part, and only PrevUID tells.
	PrevUID int `json:"prevUid"`
	// Capabilities asked by capset (bit n is capability n).
	CapEffective   uint64 `json:"capEffective,omitempty"`
	CapPermitted   uint64 `json:"capPermitted,omitempty"`
	CapInheritable uint64 `json:"capInheritable,omitempty"`
}

// Module is the kernel module of a module_load event.
type Module struct {
	// Name is the module file's path for finit_module, or the name from
	// the image's .modinfo when user space could read it; empty for
	// init_module without a readable image.
	Name  string `json:"name,omitempty"`
	FD    int    `json:"fd,omitempty"`    // finit_module's descriptor
	Flags int    `json:"flags,omitempty"` // finit_module flags
	Args  string `json:"args,omitempty"`  // module parameters
}

// NS is the namespace change of an unshare or setns event.
type NS struct {
	Flags int `json:"flags"`        // CLONE_NEW* flags (unshare) or nstype (setns)
	FD    int `json:"fd,omitempty"` // setns descriptor
	// Types are the namespace kinds involved ("mnt", "pid", "net", "user",
	// "uts", "ipc", "cgroup", "time"), from Flags.
	Types []string `json:"types,omitempty"`
	// Target names the namespace file setns joined (resolved from FD,
	// "/proc/1/ns/mnt" style) when the sensor could resolve it.
	Target string `json:"target,omitempty"`
}

// Memfd is the file of a memfd_create event.
type Memfd struct {
	Name  string `json:"name"`
	Flags int    `json:"flags,omitempty"`
}

// Socket is the socket of a socket event (raw and packet sockets).
type Socket struct {
	Domain   int `json:"domain"` // AF_PACKET 17, AF_INET 2 ...
	Type     int `json:"type"`   // SOCK_RAW 3 ... (flags SOCK_NONBLOCK/SOCK_CLOEXEC removed)
	Protocol int `json:"protocol"`
}

// BPF is the command of a bpf event.
type BPF struct {
	Cmd     int    `json:"cmd"`
	CmdName string `json:"cmdName,omitempty"` // "BPF_PROG_LOAD" ...
}

// Limits the sensor and decoders keep to.
const (
	MaxArgs      = 64   // argv entries copied at exec
	MaxArgsBytes = 4096 // argv bytes copied at exec
	MaxPathBytes = 4096 // a path (PATH_MAX)
)
