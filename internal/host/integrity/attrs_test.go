package integrity

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func capBytes(magic uint32, words ...uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magic)
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

func TestDecodeCapability(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"v2 net_raw=ep (ping)", capBytes(vfsCapRevision2|vfsCapFlagsEffect, 1<<13, 0, 0, 0), "cap_net_raw=ep"},
		{"v2 two caps p", capBytes(vfsCapRevision2, 1<<10|1<<12, 0, 0, 0), "cap_net_bind_service,cap_net_admin=p"},
		{"v2 mixed", capBytes(vfsCapRevision2|vfsCapFlagsEffect, 1<<21, 1<<0, 0, 0), "cap_sys_admin=ep cap_chown=i"},
		{"v2 high word (cap_bpf 39)", capBytes(vfsCapRevision2, 0, 0, 1<<(39-32), 0), "cap_bpf=p"},
		{"v2 unknown high cap", capBytes(vfsCapRevision2, 0, 0, 1<<(50-32), 0), "cap_50=p"},
		{"v1", capBytes(vfsCapRevision1|vfsCapFlagsEffect, 1<<7, 0), "cap_setuid=ep"},
		{"v3 rootid", capBytes(vfsCapRevision3|vfsCapFlagsEffect, 1<<13, 0, 0, 0, 100000), "cap_net_raw=ep [rootid=100000]"},
		{"empty sets", capBytes(vfsCapRevision2, 0, 0, 0, 0), "="},
	}
	for _, c := range cases {
		got, err := DecodeCapability(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%s: %q, want %q", c.name, got.String(), c.want)
		}
	}
	for name, bad := range map[string][]byte{
		"short":        {1, 2},
		"v2 truncated": capBytes(vfsCapRevision2, 1),
		"v1 long":      capBytes(vfsCapRevision1, 1, 2, 3),
		"revision 9":   capBytes(0x09000000, 0, 0, 0, 0),
	} {
		if _, err := DecodeCapability(bad); !errors.Is(err, errBadCapability) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func aclBytes(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

func TestDecodeACL(t *testing.T) {
	in := aclBytes(
		[3]uint32{aclUserObj, 6, aclUndefinedID}, [3]uint32{aclUser, 6, 1000}, [3]uint32{aclGroupObj, 4, aclUndefinedID},
		[3]uint32{aclGroup, 5, 27}, [3]uint32{aclMask, 7, aclUndefinedID}, [3]uint32{aclOther, 0, aclUndefinedID},
	)
	es, err := DecodeACL(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := FormatACL(es), "user::rw-,user:1000:rw-,group::r--,group:27:r-x,mask::rwx,other::---"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	for name, bad := range map[string][]byte{
		"short":   {2, 0},
		"ragged":  append(aclBytes([3]uint32{aclUserObj, 6, 0}), 1),
		"version": binary.LittleEndian.AppendUint32(nil, 1),
		"tag":     aclBytes([3]uint32{0x40, 6, 0}),
		"perm":    aclBytes([3]uint32{aclUserObj, 8, 0}),
	} {
		if _, err := DecodeACL(bad); !errors.Is(err, errBadACL) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFileAttrsRendering(t *testing.T) {
	f := File{
		Path: "/usr/bin/ping", Type: TypeRegular, Mode: 0o4755, Size: 10, Hashed: true,
		Xattrs: []Xattr{
			{Name: xattrCapability, Value: capBytes(vfsCapRevision2|vfsCapFlagsEffect, 1<<13, 0, 0, 0)},
			{Name: xattrACLAccess, Value: aclBytes([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclGroupObj, 5, 0}, [3]uint32{aclOther, 5, 0})},
			{Name: "security.selinux", Value: []byte("system_u:object_r:ping_exec_t:s0\x00")},
			{Name: "user.blob", Value: []byte{0xff, 0, 1}},
		},
	}
	a := f.Attrs()
	if a["caps"] != "cap_net_raw=ep" || a["acl"] != "user::rwx,group::r-x,other::r-x" || a["setuid"] != "true" || a["mode"] != "4755" {
		t.Errorf("attrs %v", a)
	}
	if !strings.Contains(a["xattrs"], `security.selinux="system_u:object_r:ping_exec_t:s0"`) || !strings.Contains(a["xattrs"], "user.blob=sha256:") {
		t.Errorf("xattrs %q", a["xattrs"])
	}
	// Hostile names and long values stay safe for the event store.
	g := File{Path: "/x", Type: TypeSymlink, Link: "\xff\x00evil\n" + strings.Repeat("a", 5000)}
	l := g.Attrs()["link"]
	if !strings.HasPrefix(l, `\xff\x00evil\x0a`) || len(l) > MaxAttrLen {
		t.Errorf("link rendered %q (%d bytes)", l[:40], len(l))
	}
}

func TestDiffFileChecks(t *testing.T) {
	a := File{Path: "/d", Type: TypeDir, Mode: 0o755, Size: 4096, Mtime: 1, Ctime: 1, Nlink: 2}
	b := a
	b.Size, b.Mtime, b.Ctime, b.Nlink = 8192, 2, 2, 3
	if d := diffFile(&a, &b, CheckAll); d != nil {
		t.Errorf("directory entry churn reported: %v", d)
	}
	b.Mode = 0o777
	if d := diffFile(&a, &b, CheckAll); len(d) != 1 || d[0] != "mode" {
		t.Errorf("directory mode: %v", d)
	}
	f := File{Type: TypeRegular, Mtime: 1, Ctime: 1, Hashed: true}
	g := f
	g.Mtime, g.Ctime = 2, 2
	if d := diffFile(&f, &g, CheckAll&^(CheckMtime|CheckCtime)); d != nil {
		t.Errorf("unchecked attributes reported: %v", d)
	}
}

func TestRules(t *testing.T) {
	rs, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	names := rs.names()
	for _, want := range []string{"binaries", "libraries", "kubernetes", "container-runtime", "ssh", "privileges", "cron", "systemd", "etc"} {
		if rs.ruleIndex(want) < 0 {
			t.Errorf("default rules lack %s (have %v)", want, names)
		}
	}
	if !rs.excluded(rs.ruleIndex("etc"), "/etc/resolv.conf") || !rs.excluded(-1, "/usr/lib/python3/x/__pycache__") {
		t.Error("default excludes do not apply")
	}
	for name, text := range map[string]string{
		"unknown field":  "rules:\n  - name: a\n    paths: [/x]\n    recurse: true\n",
		"relative path":  "rules:\n  - name: a\n    paths: [etc]\n",
		"unclean path":   "rules:\n  - name: a\n    paths: [/etc/../root]\n",
		"bad severity":   "rules:\n  - name: a\n    severity: urgent\n    paths: [/x]\n",
		"bad check":      "rules:\n  - name: a\n    paths: [/x]\n    checks: [md5]\n",
		"no checks left": "rules:\n  - name: a\n    paths: [/x]\n    checks: [-all]\n",
		"duplicate":      "rules:\n  - name: a\n    paths: [/x]\n  - name: a\n    paths: [/y]\n",
		"bad pattern":    "rules:\n  - name: a\n    paths: [/x]\n    exclude: [\"[\"]\n",
		"relative slash": "rules:\n  - name: a\n    paths: [/x]\n    exclude: [a/b]\n",
		"no rules":       "rules: []\n",
		"not yaml":       "{{{",
		"bad name":       "rules:\n  - name: Has Space\n    paths: [/x]\n",
	} {
		if _, err := ParseRules([]byte(text)); !errors.Is(err, ErrInvalidRules) {
			t.Errorf("%s: %v", name, err)
		}
	}
	rs2, err := ParseRules([]byte("rules:\n  - name: a\n    paths: [/x]\n    checks: [all, -mtime, -ctime]\n"))
	if err != nil || rs2.Rules[0].checks&CheckMtime != 0 || rs2.Rules[0].checks&CheckSHA256 == 0 || rs2.Rules[0].Severity != SeverityMedium {
		t.Errorf("checks %v %v", rs2, err)
	}
}
