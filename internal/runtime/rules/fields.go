package rules

import (
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/runtime/event"
)

// Input is what one rule evaluation reads: the sensor's event and what the agent knows about it
// from its own state.
type Input struct {
	Event *event.Event
	Ctx   Context
}

// Context is filled by the agent from its process, file and container tables; zero values mean
// "unknown" and make the rules that need them not match.
type Context struct {
	// Ancestors are the executables of the process's ancestors, parent first (at most
	// MaxAncestors are read).
	Ancestors []string
	// DeclaredPorts are the ports the container declared (Kubernetes containerPorts, image
	// EXPOSE); empty when it declared none.
	DeclaredPorts []int
	// ExeWriter is the executable of the process that last wrote the executed file inside the same
	// container (or on the host) since the agent started; "" when nothing was seen writing it.
	ExeWriter string
	// Stdin and Stdout are the kinds of the process's descriptors 0 and 1 at the event:
	// "socket", "pipe", "tty", "file", "null" or "" when unknown.
	Stdin, Stdout string
	// Stdio, when set, reports Stdin and Stdout on first use: called at most once per event, and
	// only when a rule (or an output template) reads proc.stdin or proc.stdout, so an exec no
	// rule asks about costs no /proc reads.
	Stdio func() (stdin, stdout string)
}

// stdio returns Stdin and Stdout, asking Stdio first when it is set.
func (c *Context) stdio() (stdin, stdout string) {
	if c.Stdio != nil {
		c.Stdin, c.Stdout = c.Stdio()
		c.Stdio = nil
	}
	return c.Stdin, c.Stdout
}

// Bounds the rule fields keep to: values longer than these are truncated before evaluation, so
// the static cost estimate of every rule is a true bound (see cel.Program.EvalBounded).
const (
	MaxAncestors  = 8
	MaxCmdline    = 4096
	maxPath       = event.MaxPathBytes
	maxName       = 255
	maxLabels     = 64
	maxLabelKey   = 317 // prefix (253) + "/" + name (63)
	maxLabelValue = 63
	maxPorts      = 64
	maxAddr       = 128
	maxShort      = 64
)

// kindSet is a set of event kinds, bit i for event.Kinds[i].
type kindSet uint64

func kindBit(k event.Kind) kindSet { return ruledoc.Bit[kindSet](event.Kinds, k) }

func kindsOf(ks ...event.Kind) kindSet { return ruledoc.BitsOf[kindSet](event.Kinds, ks...) }

var allKinds = ruledoc.AllBits[kindSet](event.Kinds)

// field is one variable rules read.
type field struct {
	name  string
	typ   *cel.Type
	size  uint64 // string bytes, list elements, map entries
	elem  uint64 // list element or map value size
	key   uint64 // map key size
	kinds kindSet
	doc   string
	get   func(in *Input) ref.Val
}

func integer(n int) ref.Val { return types.Int(n) }

func boolean(b bool) ref.Val { return types.Bool(b) }

func basename(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func cmdline(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if b.Len()+len(a)+1 > MaxCmdline {
			b.WriteString(a[:max(0, min(len(a), MaxCmdline-b.Len()-1))])
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a)
	}
	return b.String()
}

func familyName(f int) string {
	switch f {
	case event.AFUnix:
		return "unix"
	case event.AFInet:
		return "inet"
	case event.AFInet6:
		return "inet6"
	case event.AFPacket:
		return "packet"
	case 16:
		return "netlink"
	case 0:
		return ""
	}
	return "af_" + strconv.Itoa(f)
}

func sockTypeName(t int) string {
	switch t {
	case event.SockStream:
		return "stream"
	case event.SockDgram:
		return "dgram"
	case event.SockRaw:
		return "raw"
	case 4:
		return "rdm"
	case 5:
		return "seqpacket"
	case 10:
		return "packet"
	case 0:
		return ""
	}
	return "type_" + strconv.Itoa(t)
}

// Open flags and mode bits (x86-64 and arm64 values; asm-generic/fcntl.h, linux/stat.h).
const (
	oCreat     = 0o100
	oTrunc     = 0o1000
	writeFlags = 0o1 | 0o2 | oCreat | oTrunc // O_WRONLY, O_RDWR, O_CREAT, O_TRUNC: an open that writes
	sIsUID     = 0o4000
	sIsGID     = 0o2000
)

func labelMap(m map[string]string) ref.Val {
	ok := len(m) <= maxLabels
	if ok {
		for k, v := range m {
			if len(k) > maxLabelKey || len(v) > maxLabelValue {
				ok = false
				break
			}
		}
	}
	if !ok {
		c := make(map[string]string, min(len(m), maxLabels))
		for k, v := range m {
			if len(c) == maxLabels {
				break
			}
			c[k[:min(len(k), maxLabelKey)]] = v[:min(len(v), maxLabelValue)]
		}
		m = c
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

func intList(ns []int, limit int) ref.Val {
	if len(ns) > limit {
		ns = ns[:limit]
	}
	return types.DefaultTypeAdapter.NativeToValue(ns)
}

var (
	fileKinds  = kindsOf(event.KindOpen, event.KindWrite, event.KindLoad, event.KindRename, event.KindUnlink, event.KindChmod)
	netKinds   = kindsOf(event.KindConnect, event.KindAccept, event.KindListen, event.KindBind)
	setidKinds = kindsOf(event.KindSetuid, event.KindSetgid, event.KindCapset)
	nsKinds    = kindsOf(event.KindUnshare, event.KindSetns)
)

// fields lists every variable rules can read, in a fixed order (the order of cel.Env.Vars).
// docs/runtime-rules.md documents the same table.
func fields() []field {
	S, I, B := cel.String, cel.Int, cel.Bool
	LS := cel.ListOf(cel.String)
	return []field{
		{"event.kind", S, maxShort, 0, 0, allKinds, "the event kind (exec, open, connect ...)", func(in *Input) ref.Val { return types.String(in.Event.Kind) }},
		{"event.syscall", S, maxShort, 0, 0, allKinds, `system call name ("openat", "finit_module"); "" for exec, fork, exit`, func(in *Input) ref.Val { return ruledoc.Str(in.Event.Syscall, maxShort) }},
		{"event.ret", I, 0, 0, 0, allKinds, "system call return value (-errno on failure); exit code for exit", func(in *Input) ref.Val { return types.Int(in.Event.Ret) }},
		{"event.failed", B, 0, 0, 0, allKinds, "the system call failed", func(in *Input) ref.Val { return boolean(in.Event.Failed()) }},

		{"proc.pid", I, 0, 0, 0, allKinds, "process id (host PID namespace)", func(in *Input) ref.Val { return integer(in.Event.Process.PID) }},
		{"proc.ppid", I, 0, 0, 0, allKinds, "parent process id", func(in *Input) ref.Val { return integer(in.Event.Process.PPID) }},
		{"proc.uid", I, 0, 0, 0, allKinds, "real user id", func(in *Input) ref.Val { return integer(in.Event.Process.UID) }},
		{"proc.gid", I, 0, 0, 0, allKinds, "real group id", func(in *Input) ref.Val { return integer(in.Event.Process.GID) }},
		{"proc.euid", I, 0, 0, 0, allKinds, "effective user id", func(in *Input) ref.Val { return integer(in.Event.Process.EUID) }},
		{"proc.egid", I, 0, 0, 0, allKinds, "effective group id", func(in *Input) ref.Val { return integer(in.Event.Process.EGID) }},
		{"proc.loginuid", I, 0, 0, 0, allKinds, "audit login uid, -1 when unset", func(in *Input) ref.Val { return integer(in.Event.Process.LoginUID) }},
		{"proc.exe", S, maxPath, 0, 0, allKinds, "absolute path of the executable", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Process.Exe, maxPath) }},
		{"proc.name", S, maxName, 0, 0, allKinds, "base name of the executable (comm when the path is unknown)", func(in *Input) ref.Val {
			if in.Event.Process.Exe == "" {
				return ruledoc.Str(in.Event.Process.Comm, maxName)
			}
			return ruledoc.Str(basename(in.Event.Process.Exe), maxName)
		}},
		{"proc.comm", S, 16, 0, 0, allKinds, "kernel task name (15 bytes, settable by the process)", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Process.Comm, 16) }},
		{"proc.args", LS, event.MaxArgs, maxPath, 0, allKinds, "argv", func(in *Input) ref.Val { return ruledoc.StrList(in.Event.Process.Args, event.MaxArgs, maxPath) }},
		{"proc.cmdline", S, MaxCmdline, 0, 0, allKinds, "argv joined by spaces", func(in *Input) ref.Val { return types.String(cmdline(in.Event.Process.Args)) }},
		{"proc.args_truncated", B, 0, 0, 0, allKinds, "argv was longer than the sensor copies", func(in *Input) ref.Val { return boolean(in.Event.Process.ArgsTruncated) }},
		{"proc.cwd", S, maxPath, 0, 0, allKinds, "working directory (exec)", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Process.Cwd, maxPath) }},
		{"proc.caps", LS, 64, 32, 0, allKinds, `effective capabilities by name ("CAP_SYS_ADMIN")`, func(in *Input) ref.Val {
			return types.NewStringList(types.DefaultTypeAdapter, event.CapNames(in.Event.Process.CapEffective))
		}}, // the Evaluator caches these lists by mask
		{"proc.cap_effective", I, 0, 0, 0, allKinds, "effective capability mask", func(in *Input) ref.Val { return types.Int(int64(in.Event.Process.CapEffective)) }},
		{"proc.tty", B, 0, 0, 0, allKinds, "the process has a controlling terminal", func(in *Input) ref.Val { return boolean(in.Event.Process.TTY) }},
		{"proc.parent_exe", S, maxPath, 0, 0, allKinds, "parent's executable", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Process.ParentExe, maxPath) }},
		{"proc.parent_name", S, maxName, 0, 0, allKinds, "base name of the parent's executable (its comm when unknown)", func(in *Input) ref.Val {
			if in.Event.Process.ParentExe == "" {
				return ruledoc.Str(in.Event.Process.ParentComm, maxName)
			}
			return ruledoc.Str(basename(in.Event.Process.ParentExe), maxName)
		}},
		{"proc.parent_comm", S, 16, 0, 0, allKinds, "parent's task name", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Process.ParentComm, 16) }},
		{"proc.ancestors", LS, MaxAncestors, maxPath, 0, allKinds, "ancestors' executables, parent first (agent)", func(in *Input) ref.Val { return ruledoc.StrList(in.Ctx.Ancestors, MaxAncestors, maxPath) }},
		{"proc.exe_from_memfd", B, 0, 0, 0, allKinds, "the executable is a memfd or another in-memory file", func(in *Input) ref.Val { return boolean(in.Event.Process.ExeFromMemfd) }},
		{"proc.exe_unlinked", B, 0, 0, 0, allKinds, "the executable has no name left on disk", func(in *Input) ref.Val { return boolean(in.Event.Process.ExeUnlinked) }},
		{"proc.exe_writer", S, maxPath, 0, 0, allKinds, `executable of the process that wrote the executed file (agent; "" when none was seen)`, func(in *Input) ref.Val { return ruledoc.Str(in.Ctx.ExeWriter, maxPath) }},
		{"proc.stdin", S, 16, 0, 0, allKinds, `kind of descriptor 0: "socket", "pipe", "tty", "file", "null" or "" (agent)`, func(in *Input) ref.Val { i, _ := in.Ctx.stdio(); return ruledoc.Str(i, 16) }},
		{"proc.stdout", S, 16, 0, 0, allKinds, "kind of descriptor 1, as proc.stdin (agent)", func(in *Input) ref.Val { _, o := in.Ctx.stdio(); return ruledoc.Str(o, 16) }},

		{"container.host", B, 0, 0, 0, allKinds, "the event happened on the host, outside any container", func(in *Input) ref.Val { return boolean(in.Event.Container.IsHost()) }},
		{"container.id", S, 128, 0, 0, allKinds, "container id", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.ID, 128) }},
		{"container.name", S, 253, 0, 0, allKinds, "container name", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.Name, 253) }},
		{"container.image", S, 1024, 0, 0, allKinds, "image reference", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.Image, 1024) }},
		{"container.image_digest", S, 128, 0, 0, allKinds, "image digest (sha256:...)", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.ImageDigest, 128) }},
		{"container.pod", S, 253, 0, 0, allKinds, "Kubernetes pod name", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.Pod, 253) }},
		{"container.ns", S, 253, 0, 0, allKinds, "Kubernetes namespace (containerd namespace without Kubernetes); not container.namespace: namespace is a CEL reserved word", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.Namespace, 253) }},
		{"container.labels", cel.MapOf(cel.String, cel.String), maxLabels, maxLabelValue, maxLabelKey, allKinds, "container or pod labels", func(in *Input) ref.Val { return labelMap(in.Event.Container.Labels) }},
		{"container.runtime", S, 32, 0, 0, allKinds, `"containerd", "cri", "docker"`, func(in *Input) ref.Val { return ruledoc.Str(in.Event.Container.Runtime, 32) }},
		{"container.declared_ports", cel.ListOf(cel.Int), maxPorts, 0, 0, allKinds, "ports the container declared (agent; empty: none)", func(in *Input) ref.Val { return intList(in.Ctx.DeclaredPorts, maxPorts) }},

		{"file.path", S, maxPath, 0, 0, fileKinds, "the file's path", func(in *Input) ref.Val { return ruledoc.Str(in.Event.File.Path, maxPath) }},
		{"file.name", S, maxName, 0, 0, fileKinds, "base name of file.path", func(in *Input) ref.Val { return ruledoc.Str(basename(in.Event.File.Path), maxName) }},
		{"file.target", S, maxPath, 0, 0, fileKinds, "the path the event changes: file.newpath for rename, file.path otherwise", func(in *Input) ref.Val {
			if in.Event.Kind == event.KindRename {
				return ruledoc.Str(in.Event.File.NewPath, maxPath)
			}
			return ruledoc.Str(in.Event.File.Path, maxPath)
		}},
		{"file.newpath", S, maxPath, 0, 0, fileKinds, "rename target", func(in *Input) ref.Val { return ruledoc.Str(in.Event.File.NewPath, maxPath) }},
		{"file.flags", I, 0, 0, 0, fileKinds, "open flags", func(in *Input) ref.Val { return integer(in.Event.File.Flags) }},
		{"file.mode", I, 0, 0, 0, fileKinds, "chmod mode, or creation mode of an open with O_CREAT", func(in *Input) ref.Val { return types.Int(int64(in.Event.File.Mode)) }},
		{"file.write", B, 0, 0, 0, fileKinds, "opened for writing (O_WRONLY, O_RDWR, O_CREAT or O_TRUNC), or a write event", func(in *Input) ref.Val {
			return boolean(in.Event.Kind == event.KindWrite || in.Event.File.Flags&writeFlags != 0)
		}},
		{"file.truncate", B, 0, 0, 0, fileKinds, "opened with O_TRUNC (emptied)", func(in *Input) ref.Val { return boolean(in.Event.File.Flags&oTrunc != 0) }},
		{"file.create", B, 0, 0, 0, fileKinds, "opened with O_CREAT", func(in *Input) ref.Val { return boolean(in.Event.File.Flags&oCreat != 0) }},
		{"file.suid", B, 0, 0, 0, fileKinds, "file.mode has the set-user-ID or set-group-ID bit", func(in *Input) ref.Val { return boolean(in.Event.File.Mode&(sIsUID|sIsGID) != 0) }},
		{"file.resolved", B, 0, 0, 0, fileKinds, "file.path is absolute and resolved by the sensor", func(in *Input) ref.Val { return boolean(in.Event.File.Resolved) }},

		{"net.family", S, 16, 0, 0, netKinds, `"inet", "inet6", "unix", "packet", "netlink"`, func(in *Input) ref.Val { return types.String(familyName(in.Event.Net.Family)) }},
		{"net.type", S, 16, 0, 0, netKinds, `socket type: "stream", "dgram", "raw" ...`, func(in *Input) ref.Val { return types.String(sockTypeName(in.Event.Net.Type)) }},
		{"net.proto", S, 16, 0, 0, netKinds, `"tcp", "udp", "unix", "raw" ...`, func(in *Input) ref.Val { return ruledoc.Str(in.Event.Net.Protocol, 16) }},
		{"net.src_addr", S, maxAddr, 0, 0, netKinds, "local address", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Net.SrcAddr, maxAddr) }},
		{"net.src_port", I, 0, 0, 0, netKinds, "local port", func(in *Input) ref.Val { return integer(in.Event.Net.SrcPort) }},
		{"net.dst_addr", S, maxAddr, 0, 0, netKinds, "remote address; the socket path for unix sockets", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Net.DstAddr, maxAddr) }},
		{"net.dst_port", I, 0, 0, 0, netKinds, "remote port", func(in *Input) ref.Val { return integer(in.Event.Net.DstPort) }},

		{"ptrace.request", I, 0, 0, 0, kindsOf(event.KindPtrace), "ptrace request number", func(in *Input) ref.Val { return integer(in.Event.Ptrace.Request) }},
		{"ptrace.request_name", S, 32, 0, 0, kindsOf(event.KindPtrace), `"PTRACE_ATTACH" ...`, func(in *Input) ref.Val {
			if in.Event.Ptrace.RequestName != "" {
				return ruledoc.Str(in.Event.Ptrace.RequestName, 32)
			}
			return types.String(event.PtraceRequestName(in.Event.Ptrace.Request))
		}},
		{"ptrace.target_pid", I, 0, 0, 0, kindsOf(event.KindPtrace), "traced process id", func(in *Input) ref.Val { return integer(in.Event.Ptrace.TargetPID) }},

		{"mount.source", S, maxPath, 0, 0, kindsOf(event.KindMount), "mount source (device or path)", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Mount.Source, maxPath) }},
		{"mount.target", S, maxPath, 0, 0, kindsOf(event.KindMount), "mount point", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Mount.Target, maxPath) }},
		{"mount.fstype", S, maxShort, 0, 0, kindsOf(event.KindMount), "file system type", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Mount.FSType, maxShort) }},
		{"mount.flags", I, 0, 0, 0, kindsOf(event.KindMount), "mount flags", func(in *Input) ref.Val { return types.Int(int64(in.Event.Mount.Flags)) }},

		{"setid.uid", I, 0, 0, 0, setidKinds, "requested real uid (-1: unchanged)", func(in *Input) ref.Val { return integer(in.Event.SetID.UID) }},
		{"setid.euid", I, 0, 0, 0, setidKinds, "requested effective uid", func(in *Input) ref.Val { return integer(in.Event.SetID.EUID) }},
		{"setid.suid", I, 0, 0, 0, setidKinds, "requested saved uid", func(in *Input) ref.Val { return integer(in.Event.SetID.SUID) }},
		{"setid.prev_uid", I, 0, 0, 0, setidKinds, "real uid before the call, from the sensor's process table (-1: unknown)", func(in *Input) ref.Val { return integer(in.Event.SetID.PrevUID) }},
		{"setid.gid", I, 0, 0, 0, setidKinds, "requested real gid", func(in *Input) ref.Val { return integer(in.Event.SetID.GID) }},
		{"setid.egid", I, 0, 0, 0, setidKinds, "requested effective gid", func(in *Input) ref.Val { return integer(in.Event.SetID.EGID) }},
		{"setid.sgid", I, 0, 0, 0, setidKinds, "requested saved gid", func(in *Input) ref.Val { return integer(in.Event.SetID.SGID) }},
		{"setid.caps", LS, 64, 32, 0, setidKinds, "effective capabilities capset asked for, by name", func(in *Input) ref.Val {
			return types.NewStringList(types.DefaultTypeAdapter, event.CapNames(in.Event.SetID.CapEffective))
		}},

		{"module.name", S, maxPath, 0, 0, kindsOf(event.KindModuleLoad), "module path (finit_module) or name", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Module.Name, maxPath) }},
		{"module.args", S, maxPath, 0, 0, kindsOf(event.KindModuleLoad), "module parameters", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Module.Args, maxPath) }},

		{"ns.flags", I, 0, 0, 0, nsKinds, "CLONE_NEW* flags (unshare) or nstype (setns)", func(in *Input) ref.Val { return integer(in.Event.NS.Flags) }},
		{"ns.types", LS, 8, 8, 0, nsKinds, `namespace kinds involved ("mnt", "net", "user" ...)`, func(in *Input) ref.Val {
			if len(in.Event.NS.Types) > 0 {
				return ruledoc.StrList(in.Event.NS.Types, 8, 8)
			}
			return ruledoc.StrList(event.NSTypes(in.Event.NS.Flags), 8, 8)
		}},
		{"ns.target", S, maxPath, 0, 0, nsKinds, `the namespace setns joined ("mnt:[4026531840]") when the sensor resolved it`, func(in *Input) ref.Val { return ruledoc.Str(in.Event.NS.Target, maxPath) }},

		{"memfd.name", S, maxName, 0, 0, kindsOf(event.KindMemfdCreate), "memfd name", func(in *Input) ref.Val { return ruledoc.Str(in.Event.Memfd.Name, maxName) }},
		{"memfd.flags", I, 0, 0, 0, kindsOf(event.KindMemfdCreate), "memfd_create flags", func(in *Input) ref.Val { return integer(in.Event.Memfd.Flags) }},

		{"socket.domain", S, 16, 0, 0, kindsOf(event.KindSocket), `"packet", "inet", "inet6" ...`, func(in *Input) ref.Val { return types.String(familyName(in.Event.Socket.Domain)) }},
		{"socket.type", S, 16, 0, 0, kindsOf(event.KindSocket), `"raw", "dgram", "packet" ...`, func(in *Input) ref.Val { return types.String(sockTypeName(in.Event.Socket.Type)) }},
		{"socket.protocol", I, 0, 0, 0, kindsOf(event.KindSocket), "protocol number", func(in *Input) ref.Val { return integer(in.Event.Socket.Protocol) }},

		{"bpf.cmd", I, 0, 0, 0, kindsOf(event.KindBPF), "bpf(2) command number", func(in *Input) ref.Val { return integer(in.Event.BPF.Cmd) }},
		{"bpf.cmd_name", S, 48, 0, 0, kindsOf(event.KindBPF), `"BPF_PROG_LOAD" ...`, func(in *Input) ref.Val {
			if in.Event.BPF.CmdName != "" {
				return ruledoc.Str(in.Event.BPF.CmdName, 48)
			}
			return types.String(event.BPFCmdName(in.Event.BPF.Cmd))
		}},

		{"drift", B, 0, 0, 0, kindsOf(event.KindExec), "exec of a file that is not part of the container's image", func(in *Input) ref.Val { return boolean(in.Event.Drift) }},
	}
}

// celVars declares the fields to the CEL environment.
func celVars(fs []field) []cel.Var {
	out := make([]cel.Var, len(fs))
	for i, f := range fs {
		out[i] = cel.Var{Name: f.name, Type: f.typ, MaxSize: f.size, ElemSize: f.elem, KeySize: f.key, Doc: f.doc}
	}
	return out
}
