//go:build linux && amd64

package sensor

import (
	"testing"
	"unsafe"
)

// The decoder's offsets are those of the kernel's struct rec_hdr (bpf2go's
// bpfRecHdr is generated from the object's BTF).
func TestRecordLayout(t *testing.T) {
	var h bpfRecHdr
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"ts", unsafe.Offsetof(h.Ts), offTs}, {"cgid", unsafe.Offsetof(h.Cgid), offCgid},
		{"start", unsafe.Offsetof(h.Start), offStart}, {"cap_eff", unsafe.Offsetof(h.CapEff), offCapEff},
		{"cap_perm", unsafe.Offsetof(h.CapPerm), offCapPerm}, {"ret", unsafe.Offsetof(h.Ret), offRet},
		{"a", unsafe.Offsetof(h.A), offA}, {"kind", unsafe.Offsetof(h.Kind), offKind},
		{"sysid", unsafe.Offsetof(h.Sysid), offSysid}, {"pid", unsafe.Offsetof(h.Pid), offPid},
		{"tid", unsafe.Offsetof(h.Tid), offTid}, {"ppid", unsafe.Offsetof(h.Ppid), offPpid},
		{"uid", unsafe.Offsetof(h.Uid), offUID}, {"gid", unsafe.Offsetof(h.Gid), offGID},
		{"euid", unsafe.Offsetof(h.Euid), offEUID}, {"egid", unsafe.Offsetof(h.Egid), offEGID},
		{"loginuid", unsafe.Offsetof(h.Loginuid), offLoginUID}, {"mntns", unsafe.Offsetof(h.Mntns), offMntns},
		{"pidns", unsafe.Offsetof(h.Pidns), offPidns}, {"netns", unsafe.Offsetof(h.Netns), offNetns},
		{"userns", unsafe.Offsetof(h.Userns), offUserns}, {"utsns", unsafe.Offsetof(h.Utsns), offUtsns},
		{"ipcns", unsafe.Offsetof(h.Ipcns), offIpcns}, {"flags", unsafe.Offsetof(h.Flags), offFlags},
		{"size", unsafe.Offsetof(h.Size), offSize}, {"comm", unsafe.Offsetof(h.Comm), offComm},
		{"sizeof", unsafe.Sizeof(h), hdrSize},
		{"sockinfo", unsafe.Sizeof(bpfSockinfo{}), sockinfoLen},
		{"sect", unsafe.Sizeof(bpfSect{}), sectHdrSize},
	} {
		if c.got != c.want {
			t.Errorf("%s: kernel offset %d, decoder %d", c.name, c.got, c.want)
		}
	}
}
