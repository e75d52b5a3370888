package event

import "strconv"

// Capability numbers (linux/capability.h) rules use most.
const (
	CapChown          = 0
	CapDacOverride    = 1
	CapDacReadSearch  = 2
	CapFowner         = 3
	CapSetgid         = 6
	CapSetuid         = 7
	CapSetpcap        = 8
	CapNetBindService = 10
	CapNetAdmin       = 12
	CapNetRaw         = 13
	CapSysModule      = 16
	CapSysRawio       = 17
	CapSysChroot      = 18
	CapSysPtrace      = 19
	CapSysAdmin       = 21
	CapSysBoot        = 22
	CapMknod          = 27
	CapAuditWrite     = 29
	CapSetfcap        = 31
	CapMacAdmin       = 33
	CapSyslog         = 34
	CapBPF            = 39
	CapPerfmon        = 38
	CapCheckpoint     = 40
)

// capNames are the capability names by number (CAP_LAST_CAP is 40 in 6.x).
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapName names capability n ("CAP_SYS_ADMIN"), or "" for an unknown number.
func CapName(n int) string {
	if n < 0 || n >= len(capNames) {
		return ""
	}
	return capNames[n]
}

// CapNames lists the names of the capabilities set in mask, lowest first;
// unknown bits are named "CAP_<n>".
func CapNames(mask uint64) []string {
	var out []string
	for n := 0; n < 64; n++ {
		if mask&(1<<uint(n)) == 0 {
			continue
		}
		if name := CapName(n); name != "" {
			out = append(out, name)
		} else {
			out = append(out, "CAP_"+strconv.Itoa(n))
		}
	}
	return out
}

// Namespace clone flags (linux/sched.h).
const (
	CloneNewTime   = 0x00000080
	CloneNewNS     = 0x00020000
	CloneNewCgroup = 0x02000000
	CloneNewUTS    = 0x04000000
	CloneNewIPC    = 0x08000000
	CloneNewUser   = 0x10000000
	CloneNewPID    = 0x20000000
	CloneNewNet    = 0x40000000
)

var nsFlagNames = []struct {
	flag int
	name string
}{
	{CloneNewNS, "mnt"}, {CloneNewPID, "pid"}, {CloneNewNet, "net"}, {CloneNewUser, "user"},
	{CloneNewUTS, "uts"}, {CloneNewIPC, "ipc"}, {CloneNewCgroup, "cgroup"}, {CloneNewTime, "time"},
}

// NSTypes names the namespace kinds in CLONE_NEW* flags ("mnt", "net" ...).
func NSTypes(flags int) []string {
	var out []string
	for _, f := range nsFlagNames {
		if flags&f.flag != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// ptraceNames names the ptrace requests (linux/ptrace.h) by number.
var ptraceNames = map[int]string{
	0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
	4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT",
	8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS",
	14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH", 17: "PTRACE_DETACH",
	24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
	0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET",
	0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT",
	0x4208: "PTRACE_LISTEN",
}

// PtraceRequestName names a ptrace request, or "" when unknown.
func PtraceRequestName(req int) string { return ptraceNames[req] }

// Ptrace requests rules look at.
const (
	PtraceTraceme  = 0
	PtracePokeText = 4
	PtracePokeData = 5
	PtraceAttach   = 16
	PtraceSeize    = 0x4206
)

// bpfCmdNames names the bpf(2) commands (linux/bpf.h) by number.
var bpfCmdNames = [...]string{
	"BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
	"BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
	"BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
	"BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
	"BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY",
	"BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID",
	"BPF_MAP_LOOKUP_BATCH", "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH",
	"BPF_MAP_DELETE_BATCH", "BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID",
	"BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS", "BPF_ITER_CREATE", "BPF_LINK_DETACH",
	"BPF_PROG_BIND_MAP", "BPF_TOKEN_CREATE",
}

// BPF commands rules look at.
const (
	BPFMapCreate = 0
	BPFProgLoad  = 5
)

// BPFCmdName names a bpf(2) command, or "" when unknown.
func BPFCmdName(cmd int) string {
	if cmd < 0 || cmd >= len(bpfCmdNames) {
		return ""
	}
	return bpfCmdNames[cmd]
}

// Address families and socket types rules look at.
const (
	AFUnix   = 1
	AFInet   = 2
	AFInet6  = 10
	AFPacket = 17

	SockStream = 1
	SockDgram  = 2
	SockRaw    = 3
)
