package sensor

import (
	"slices"

	"mamori/internal/runtime/event"
)

// sysid is the kernel's enum sysid (bpf/sensor.bpf.c): a system call's
// identity, independent of the architecture's numbering.
type sysid uint32

const (
	sysNone sysid = iota
	sysOpen
	sysOpenat
	sysOpenat2
	sysCreat
	sysRename
	sysRenameat
	sysRenameat2
	sysUnlink
	sysUnlinkat
	sysRmdir
	sysChmod
	sysFchmod
	sysFchmodat
	sysFchmodat2
	sysConnect
	sysAccept
	sysAccept4
	sysListen
	sysBind
	sysPtrace
	sysMount
	sysSetuid
	sysSetreuid
	sysSetresuid
	sysSetfsuid
	sysSetgid
	sysSetregid
	sysSetresgid
	sysSetfsgid
	sysCapset
	sysInitModule
	sysFinitModule
	sysUnshare
	sysSetns
	sysMemfdCreate
	sysSocket
	sysBPF
	sysMax
)

// sysNames names each sysid (event.Event.Syscall).
var sysNames = [sysMax]string{
	"", "open", "openat", "openat2", "creat", "rename", "renameat", "renameat2",
	"unlink", "unlinkat", "rmdir", "chmod", "fchmod", "fchmodat", "fchmodat2",
	"connect", "accept", "accept4", "listen", "bind", "ptrace", "mount",
	"setuid", "setreuid", "setresuid", "setfsuid", "setgid", "setregid", "setresgid", "setfsgid",
	"capset", "init_module", "finit_module", "unshare", "setns", "memfd_create", "socket", "bpf",
}

// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
var syscallsAMD64 = map[uint32]sysid{
	2: sysOpen, 257: sysOpenat, 437: sysOpenat2, 85: sysCreat,
	82: sysRename, 264: sysRenameat, 316: sysRenameat2,
	87: sysUnlink, 263: sysUnlinkat, 84: sysRmdir,
	90: sysChmod, 91: sysFchmod, 268: sysFchmodat, 452: sysFchmodat2,
	42: sysConnect, 43: sysAccept, 288: sysAccept4, 50: sysListen, 49: sysBind,
	101: sysPtrace, 165: sysMount,
	105: sysSetuid, 113: sysSetreuid, 117: sysSetresuid, 122: sysSetfsuid,
	106: sysSetgid, 114: sysSetregid, 119: sysSetresgid, 123: sysSetfsgid,
	126: sysCapset, 175: sysInitModule, 313: sysFinitModule,
	272: sysUnshare, 308: sysSetns, 319: sysMemfdCreate, 41: sysSocket, 321: sysBPF,
}

// i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl): 32-bit programs
// on a 64-bit kernel (int 0x80, IA32 emulation) use these, and a sensor that
// knew only the 64-bit table would miss them. The 16-bit uid/gid variants
// map to the same identity (their -1 reads 65535). socketcall(2), the old
// multiplexer of socket operations, is not decoded (docs/runtime-sensor.md).
var syscalls386 = map[uint32]sysid{
	5: sysOpen, 295: sysOpenat, 437: sysOpenat2, 8: sysCreat,
	38: sysRename, 302: sysRenameat, 353: sysRenameat2,
	10: sysUnlink, 301: sysUnlinkat, 40: sysRmdir,
	15: sysChmod, 94: sysFchmod, 306: sysFchmodat, 452: sysFchmodat2,
	362: sysConnect, 364: sysAccept4, 363: sysListen, 361: sysBind,
	26: sysPtrace, 21: sysMount,
	23: sysSetuid, 70: sysSetreuid, 164: sysSetresuid, 138: sysSetfsuid,
	46: sysSetgid, 71: sysSetregid, 170: sysSetresgid, 139: sysSetfsgid,
	213: sysSetuid, 203: sysSetreuid, 208: sysSetresuid, 215: sysSetfsuid,
	214: sysSetgid, 204: sysSetregid, 210: sysSetresgid, 216: sysSetfsgid,
	185: sysCapset, 128: sysInitModule, 350: sysFinitModule,
	310: sysUnshare, 346: sysSetns, 356: sysMemfdCreate, 359: sysSocket, 357: sysBPF,
}

// sysidKinds are the kinds a system call can report (sysid_kind in
// bpf/sensor.bpf.c; an open is an open, a write or a load).
func sysidKinds(id sysid) []event.Kind {
	switch id {
	case sysOpen, sysOpenat, sysOpenat2, sysCreat:
		return []event.Kind{event.KindOpen, event.KindWrite, event.KindLoad}
	case sysRename, sysRenameat, sysRenameat2:
		return []event.Kind{event.KindRename}
	case sysUnlink, sysUnlinkat, sysRmdir:
		return []event.Kind{event.KindUnlink}
	case sysChmod, sysFchmod, sysFchmodat, sysFchmodat2:
		return []event.Kind{event.KindChmod}
	case sysConnect:
		return []event.Kind{event.KindConnect}
	case sysAccept, sysAccept4:
		return []event.Kind{event.KindAccept}
	case sysListen:
		return []event.Kind{event.KindListen}
	case sysBind:
		return []event.Kind{event.KindBind}
	case sysPtrace:
		return []event.Kind{event.KindPtrace}
	case sysMount:
		return []event.Kind{event.KindMount}
	case sysSetuid, sysSetreuid, sysSetresuid, sysSetfsuid:
		return []event.Kind{event.KindSetuid}
	case sysSetgid, sysSetregid, sysSetresgid, sysSetfsgid:
		return []event.Kind{event.KindSetgid}
	case sysCapset:
		return []event.Kind{event.KindCapset}
	case sysInitModule, sysFinitModule:
		return []event.Kind{event.KindModuleLoad}
	case sysUnshare:
		return []event.Kind{event.KindUnshare}
	case sysSetns:
		return []event.Kind{event.KindSetns}
	case sysMemfdCreate:
		return []event.Kind{event.KindMemfdCreate}
	case sysSocket:
		return []event.Kind{event.KindSocket}
	case sysBPF:
		return []event.Kind{event.KindBPF}
	}
	return nil
}

// sysTableSize is SYS_TABLE (bpf/sensor.bpf.c): system call numbers at or
// above it are not looked up.
const sysTableSize = 512

// syscallTable is the kernel's sys_native or sys_compat table: the sysid of
// each call number some enabled kind needs, 0 for the others.
func syscallTable(nums map[uint32]sysid, kinds map[event.Kind]bool) [sysTableSize]uint8 {
	var t [sysTableSize]uint8
	for nr, id := range nums {
		if nr >= sysTableSize {
			continue
		}
		for _, k := range sysidKinds(id) {
			if kinds[k] {
				t[nr] = uint8(id)
			}
		}
	}
	return t
}

// neededSyscalls names the native system calls some enabled kind needs,
// sorted (their syscalls:sys_exit_<name> tracepoints).
func neededSyscalls(kinds map[event.Kind]bool) []string {
	var out []string
	for _, id := range syscallsAMD64 {
		for _, k := range sysidKinds(id) {
			if kinds[k] {
				out = append(out, sysNames[id])
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// kindSyscalls names the native system calls that report kind k, sorted.
func kindSyscalls(k event.Kind) []string {
	var out []string
	for _, id := range syscallsAMD64 {
		if slices.Contains(sysidKinds(id), k) {
			out = append(out, sysNames[id])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
