package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mamori/internal/runtime/event"
)

// ErrMalformed is wrapped by every decoding error: the record does not have
// the layout of bpf/sensor.bpf.c (a kernel or object mismatch, or memory
// corruption). Such records are counted (Stats.DecodeErrors) and skipped.
var ErrMalformed = errors.New("sensor: malformed record")

// Record layout (struct rec_hdr in bpf/sensor.bpf.c). Offsets are checked
// against the generated Go type in layout_test.go.
const (
	offTs       = 0
	offCgid     = 8
	offStart    = 16
	offCapEff   = 24
	offCapPerm  = 32
	offRet      = 40
	offA        = 48
	offKind     = 96
	offSysid    = 100
	offPid      = 104
	offTid      = 108
	offPpid     = 112
	offUID      = 116
	offGID      = 120
	offEUID     = 124
	offEGID     = 128
	offLoginUID = 132
	offMntns    = 136
	offPidns    = 140
	offNetns    = 144
	offUserns   = 148
	offUtsns    = 152
	offIpcns    = 156
	offFlags    = 160
	offSize     = 164
	offComm     = 168
	hdrSize     = 184
	sectHdrSize = 4
	sockinfoLen = 44
)

// Section types (enum sect_type).
const (
	sPath = 1 + iota
	sPath2
	sExe
	sArgs
	sCwd
	sParentExe
	sParentComm
	sSource
	sFSType
	sSockaddr
	sSockinfo
	sName
	sFilename
	sModArgs
)

// Header flags (F_* in bpf/sensor.bpf.c).
const (
	fTTY            = 1 << 0
	fCompat         = 1 << 1
	fExeMemfd       = 1 << 2
	fExeUnlinked    = 1 << 3
	fArgsTrunc      = 1 << 4
	fPathResolved   = 1 << 5
	fPathTrunc      = 1 << 6
	fSectDropped    = 1 << 7
	fUnnormalized   = 1 << 8
	fPath2Resolved  = 1 << 9
	signalGroupExit = 0x4 // SIGNAL_GROUP_EXIT (linux/sched/signal.h)
)

// recordInfo is what the decoder learned beyond the event: facts user
// space acts on (re-filtering) or counts.
type recordInfo struct {
	flags uint32
}

func (ri recordInfo) unnormalized() bool { return ri.flags&fUnnormalized != 0 }

// decodeRecord decodes one ring-buffer record into e (which it resets).
// boot is the wall-clock time of boot, to convert the kernel's boot-time
// stamps. It never panics: a record of the wrong shape is an ErrMalformed.
func decodeRecord(raw []byte, boot time.Time, e *event.Event) (recordInfo, error) {
	d := decoder{boot: boot}
	return d.decode(raw, e)
}

// decoder decodes the records of one ring-buffer reader (one goroutine).
// comms interns process names: a node runs few distinct ones, and every
// record carries one (a string allocation per event otherwise).
type decoder struct {
	boot  time.Time
	comms map[string]string // nil: no interning
}

// maxComms bounds the interned names (emptied when full).
const maxComms = 4096

func newDecoder(boot time.Time) *decoder {
	return &decoder{boot: boot, comms: make(map[string]string)}
}

// comm returns the NUL-terminated name in b, interned.
func (d *decoder) comm(b []byte) string {
	b = cBytes(b)
	if s, ok := d.comms[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.comms != nil {
		if len(d.comms) >= maxComms {
			clear(d.comms)
		}
		d.comms[s] = s
	}
	return s
}

// decode is decodeRecord with d's boot time and interned names.
func (d *decoder) decode(raw []byte, e *event.Event) (recordInfo, error) {
	boot := d.boot
	*e = event.Event{}
	if len(raw) < hdrSize {
		return recordInfo{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrMalformed, len(raw), hdrSize)
	}
	le := binary.LittleEndian
	u32 := func(off int) uint32 { return le.Uint32(raw[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(raw[off:]) }
	a := func(i int) uint64 { return u64(offA + 8*i) }

	size := int(u32(offSize))
	if size < hdrSize || size > len(raw) {
		return recordInfo{}, fmt.Errorf("%w: size field %d, record %d bytes", ErrMalformed, size, len(raw))
	}
	raw = raw[:size]
	code := u32(offKind)
	if code == 0 || code >= uint32(numKinds) {
		return recordInfo{}, fmt.Errorf("%w: kind code %d", ErrMalformed, code)
	}
	sys := sysid(u32(offSysid))
	if sys >= sysMax {
		return recordInfo{}, fmt.Errorf("%w: system call id %d", ErrMalformed, sys)
	}
	flags := u32(offFlags)
	info := recordInfo{flags: flags}

	e.Kind = kindCodes[code]
	e.Syscall = sysNames[sys]
	e.Time = boot.Add(time.Duration(u64(offTs)))
	e.Ret = int64(u64(offRet))
	e.CgroupID = u64(offCgid)
	e.Compat = flags&fCompat != 0
	p := &e.Process
	p.PID = int(u32(offPid))
	p.TID = int(u32(offTid))
	p.PPID = int(u32(offPpid))
	p.UID = int(u32(offUID))
	p.GID = int(u32(offGID))
	p.EUID = int(u32(offEUID))
	p.EGID = int(u32(offEGID))
	p.LoginUID = idOrUnset(u32(offLoginUID))
	p.CapEffective = u64(offCapEff)
	p.CapPermitted = u64(offCapPerm)
	p.StartTime = u64(offStart)
	p.Comm = d.comm(raw[offComm : offComm+16])
	p.TTY = flags&fTTY != 0
	p.ExeFromMemfd = flags&fExeMemfd != 0
	p.ExeUnlinked = flags&fExeUnlinked != 0
	p.ArgsTruncated = flags&fArgsTrunc != 0
	e.Namespaces = event.Namespaces{
		Mnt: u32(offMntns), PID: u32(offPidns), Net: u32(offNetns),
		User: u32(offUserns), UTS: u32(offUtsns), IPC: u32(offIpcns),
	}

	var sockaddr, sockinfo []byte
	for off := hdrSize; off < len(raw); {
		if len(raw)-off < sectHdrSize {
			return info, fmt.Errorf("%w: %d stray bytes after the sections", ErrMalformed, len(raw)-off)
		}
		typ := le.Uint16(raw[off:])
		n := int(le.Uint16(raw[off+2:]))
		off += sectHdrSize
		if n > len(raw)-off {
			return info, fmt.Errorf("%w: section %d of %d bytes overruns the record", ErrMalformed, typ, n)
		}
		data := raw[off : off+n]
		off += n
		switch typ {
		case sPath:
			e.File.Path = string(data)
		case sPath2:
			e.File.NewPath = string(data)
		case sExe:
			p.Exe = string(data)
		case sArgs:
			var trunc bool
			p.Args, trunc = splitArgs(data)
			p.ArgsTruncated = p.ArgsTruncated || trunc
		case sCwd:
			p.Cwd = string(data)
		case sParentExe:
			p.ParentExe = string(data)
		case sParentComm:
			p.ParentComm = cString(data)
		case sSource:
			e.Mount.Source = string(data)
		case sFSType:
			e.Mount.FSType = string(data)
		case sSockaddr:
			sockaddr = data
		case sSockinfo:
			sockinfo = data
		case sName:
			e.Memfd.Name = string(data)
		case sFilename:
			e.File.Path = string(data)
		case sModArgs:
			e.Module.Args = string(data)
		default:
			// A newer object's section: skipped, the rest still decodes.
		}
	}
	e.File.Resolved = flags&fPathResolved != 0 && e.File.Path != ""

	switch e.Kind {
	case event.KindExec:
		e.File.Inode, e.File.Dev = a(4), userDev(a(5))
		e.Syscall = ""
		e.Ret = 0
		e.File.Resolved = false // the file name as asked
	case event.KindFork:
		e.Syscall = ""
		e.Ret = 0
	case event.KindExit:
		e.Syscall = ""
		e.Ret = exitStatus(a(0), a(1), a(2))
	case event.KindOpen, event.KindWrite, event.KindLoad:
		e.File.Flags = int(int32(a(0)))
		if e.File.Flags&0o100 != 0 { // O_CREAT
			e.File.Mode = uint32(a(1)) & 0o7777
		}
		e.File.Inode, e.File.Dev = a(4), userDev(a(5))
		if e.Syscall == "" && e.Kind == event.KindLoad {
			e.Syscall = "execve" // the executable itself, reported at exec
		}
	case event.KindRename, event.KindUnlink:
		e.File.Flags = int(int32(a(0)))
	case event.KindChmod:
		e.File.Flags = int(int32(a(0)))
		e.File.Mode = uint32(a(1)) & 0o7777
		if sys == sysFchmod {
			e.File.FD = int(int32(a(2)))
			e.File.Inode, e.File.Dev = a(4), userDev(a(5))
		}
	case event.KindConnect, event.KindAccept, event.KindListen, event.KindBind:
		decodeNet(e, sockaddr, sockinfo)
		if e.Kind == event.KindListen {
			e.Net.Backlog = int(int32(a(1)))
		}
	case event.KindPtrace:
		e.Ptrace.Request = int(int32(a(0)))
		e.Ptrace.RequestName = event.PtraceRequestName(e.Ptrace.Request)
		e.Ptrace.TargetPID = int(int32(a(1)))
	case event.KindMount:
		e.Mount.Target = e.File.Path
		e.File = event.File{}
		e.Mount.Flags = a(0)
	case event.KindSetuid:
		e.SetID = event.SetID{UID: idOrUnset(uint32(a(0))), EUID: idOrUnset(uint32(a(1))), SUID: idOrUnset(uint32(a(2))), GID: -1, EGID: -1, SGID: -1, PrevUID: -1}
	case event.KindSetgid:
		e.SetID = event.SetID{GID: idOrUnset(uint32(a(0))), EGID: idOrUnset(uint32(a(1))), SGID: idOrUnset(uint32(a(2))), UID: -1, EUID: -1, SUID: -1, PrevUID: -1}
	case event.KindCapset:
		e.SetID = event.SetID{UID: -1, EUID: -1, SUID: -1, GID: -1, EGID: -1, SGID: -1, PrevUID: -1,
			CapEffective: a(0), CapPermitted: a(1), CapInheritable: a(2)}
	case event.KindModuleLoad:
		e.Module.Name = e.File.Path
		if sys == sysFinitModule {
			e.Module.FD = int(int32(a(0)))
			e.Module.Flags = int(int32(a(1)))
		}
		e.File = event.File{}
	case event.KindUnshare:
		e.NS.Flags = int(int32(a(0)))
		e.NS.Types = event.NSTypes(e.NS.Flags)
	case event.KindSetns:
		e.NS.Flags = int(int32(a(0)))
		e.NS.FD = int(int32(a(1)))
		e.NS.Target = e.File.Path
		e.NS.Types = event.NSTypes(e.NS.Flags)
		if len(e.NS.Types) == 0 {
			e.NS.Types = nsTypeOfTarget(e.NS.Target)
		}
		// nsfs files have no name of their own (the kernel makes
		// "uts:[4026531838]" up for /proc/PID/fd): name it the same way.
		if ino := a(2); ino != 0 && len(e.NS.Types) == 1 && !strings.Contains(e.NS.Target, ":[") {
			e.NS.Target = e.NS.Types[0] + ":[" + strconv.FormatUint(ino, 10) + "]"
		}
		e.File = event.File{}
	case event.KindMemfdCreate:
		e.Memfd.Flags = int(int32(a(0)))
	case event.KindSocket:
		e.Socket = event.Socket{Domain: int(int32(a(0))), Type: int(int32(a(1))) & 0xf, Protocol: int(int32(a(2)))}
	case event.KindBPF:
		e.BPF.Cmd = int(int32(a(0)))
		e.BPF.CmdName = event.BPFCmdName(e.BPF.Cmd)
	}
	if !e.Kind.IsFile() && e.Kind != event.KindExec {
		e.File = event.File{}
	}
	return info, nil
}

// userDev converts the kernel's internal dev_t (MKDEV: major << 20 |
// minor) to the encoding stat(2) returns in st_dev, so File.Dev compares
// with what user space sees (and with the fallback's fstat).
func userDev(kdev uint64) uint64 {
	major, minor := uint32(kdev>>20), uint32(kdev&0xfffff)
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// idOrUnset reads a uid/gid argument: (u32)-1 is "unset" (-1).
func idOrUnset(v uint32) int {
	if v == 0xffffffff {
		return -1
	}
	return int(v)
}

// exitStatus is the shell-style status of an exit: the exit code, or
// 128+signal for a process killed by a signal.
func exitStatus(exitCode, groupCode, signalFlags uint64) int64 {
	code := exitCode
	if signalFlags&signalGroupExit != 0 {
		code = groupCode
	}
	if sig := code & 0x7f; sig != 0 {
		return 128 + int64(sig)
	}
	return int64((code >> 8) & 0xff)
}

// cString is b up to its first NUL, as a string.
func cString(b []byte) string { return string(cBytes(b)) }

// cBytes is b up to its first NUL (all of b when it has none).
func cBytes(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// splitArgs splits argv bytes (NUL-terminated strings). The last string
// may lack its NUL when the kernel cut argv at MaxArgsBytes.
func splitArgs(b []byte) (args []string, truncated bool) {
	if len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, false
	}
	n := bytes.Count(b, []byte{0}) + 1
	if n > event.MaxArgs {
		n = event.MaxArgs
		truncated = true
	}
	args = make([]string, 0, n)
	for len(b) > 0 && len(args) < event.MaxArgs {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			args = append(args, string(b))
			break
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
	return args, truncated
}

func nsTypeOfTarget(target string) []string {
	// nsfs files are named "mnt:[4026531840]" (the walk gives "/mnt:[...]").
	target = strings.TrimPrefix(target, "/")
	for _, t := range []string{"mnt", "pid", "net", "user", "uts", "ipc", "cgroup", "time"} {
		if strings.HasPrefix(target, t+":[") {
			return []string{t}
		}
	}
	return nil
}

// decodeNet fills e.Net from the caller's sockaddr (connect, bind) and the
// kernel socket's state (struct sockinfo).
func decodeNet(e *event.Event, sockaddr, sockinfo []byte) {
	n := &e.Net
	var local, remote netip.AddrPort
	var haveInfo bool
	if len(sockinfo) >= sockinfoLen {
		le := binary.LittleEndian
		n.Family = int(le.Uint16(sockinfo[0:]))
		n.Type = int(le.Uint16(sockinfo[2:]))
		proto := int(le.Uint16(sockinfo[4:]))
		lport, rport := le.Uint16(sockinfo[6:]), le.Uint16(sockinfo[8:])
		switch n.Family {
		case event.AFInet:
			local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(sockinfo[12:16])), lport)
			remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(sockinfo[28:32])), rport)
		case event.AFInet6:
			local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(sockinfo[12:28])), lport)
			remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(sockinfo[28:44])), rport)
		}
		n.Protocol = protocolName(n.Family, n.Type, proto)
		haveInfo = true
	}
	family, addr, path, ok := parseSockaddr(sockaddr)
	if ok && !haveInfo {
		n.Family = family
		n.Protocol = protocolName(family, 0, 0)
	}
	switch e.Kind {
	case event.KindConnect:
		if local.Port() != 0 {
			setSrc(n, local)
		}
		if ok {
			setDst(n, addr, path)
		} else if remote.IsValid() {
			setDst(n, remote, "")
		}
	case event.KindBind:
		if ok {
			setSrc(n, addr)
			if path != "" {
				n.SrcAddr = path
			}
		} else if local.IsValid() {
			setSrc(n, local)
		}
	case event.KindListen:
		if local.IsValid() {
			setSrc(n, local)
		}
	case event.KindAccept:
		if local.IsValid() {
			setSrc(n, local)
		}
		if remote.IsValid() {
			setDst(n, remote, "")
		}
	}
}

func setSrc(n *event.Net, ap netip.AddrPort) {
	if ap.IsValid() {
		n.SrcAddr = ap.Addr().Unmap().String()
		n.SrcPort = int(ap.Port())
	}
}

func setDst(n *event.Net, ap netip.AddrPort, path string) {
	if path != "" {
		n.DstAddr = path
		return
	}
	if ap.IsValid() {
		n.DstAddr = ap.Addr().Unmap().String()
		n.DstPort = int(ap.Port())
	}
}

// parseSockaddr reads a struct sockaddr (AF_INET, AF_INET6, AF_UNIX). An
// abstract unix socket's name is shown with a leading "@".
func parseSockaddr(b []byte) (family int, ap netip.AddrPort, path string, ok bool) {
	if len(b) < 2 {
		return 0, ap, "", false
	}
	family = int(binary.LittleEndian.Uint16(b))
	switch family {
	case event.AFInet:
		if len(b) < 8 {
			return family, ap, "", false
		}
		port := binary.BigEndian.Uint16(b[2:])
		return family, netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), "", true
	case event.AFInet6:
		if len(b) < 24 {
			return family, ap, "", false
		}
		port := binary.BigEndian.Uint16(b[2:])
		return family, netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port), "", true
	case event.AFUnix:
		p := b[2:]
		if len(p) == 0 {
			return family, ap, "", false
		}
		if p[0] == 0 {
			return family, ap, "@" + string(bytes.TrimRight(p[1:], "\x00")), true
		}
		return family, ap, cString(p), true
	}
	return family, ap, "", false
}

func protocolName(family, typ, proto int) string {
	switch family {
	case event.AFUnix:
		return "unix"
	case event.AFPacket:
		return "packet"
	case event.AFInet, event.AFInet6:
		switch {
		case typ == event.SockRaw:
			return "raw"
		case proto == 6 || (proto == 0 && typ == event.SockStream):
			return "tcp"
		case proto == 17 || (proto == 0 && typ == event.SockDgram):
			return "udp"
		case proto == 1 || proto == 58:
			return "icmp"
		case proto == 132:
			return "sctp"
		case proto == 262:
			// IPPROTO_MPTCP: multipath TCP (Go 1.24+ listens with it by default)
			return "mptcp"
		}
		if proto != 0 {
			return strconv.Itoa(proto)
		}
		return "ip"
	}
	if family != 0 {
		return "af" + strconv.Itoa(family)
	}
	return ""
}
