package integrity

import (
	"bytes"
	"os"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: a hostile or damaged baseline file is an error, never a
// panic or an unbounded allocation.
func FuzzDecode(f *testing.F) {
	b := &Baseline{Root: "/", Key: []byte("k"), Rules: []RuleRef{{"r", SeverityHigh}},
		Files: []File{
			{Path: "/a", Type: TypeRegular, Mode: 0o644, Hashed: true, Size: 3},
			{Path: "/a/b", Type: TypeSymlink, Link: "/x", Xattrs: []Xattr{{"user.x", []byte{1}}}},
		},
		Objects: []Object{{Kind: KindUser, Key: "root", Attrs: map[string]string{"uid": "0"}}},
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(magic + "\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same.
		var out bytes.Buffer
		if err := got.Encode(&out); err != nil {
			t.Fatal(err)
		}
		again, err := Decode(&out)
		if err != nil || len(again.Files) != len(got.Files) || len(again.Objects) != len(got.Objects) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeCapability(f *testing.F) {
	f.Add(capBytes(vfsCapRevision2|vfsCapFlagsEffect, 1<<13, 0, 0, 0))
	f.Add(capBytes(vfsCapRevision3, 1, 2, 3, 4, 5))
	f.Add(capBytes(vfsCapRevision1, 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCapability(data)
		if err == nil && !utf8.ValidString(c.String()) {
			t.Fatal("invalid text")
		}
	})
}

func FuzzDecodeACL(f *testing.F) {
	f.Add(aclBytes([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclUser, 5, 1000}, [3]uint32{aclMask, 5, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if es, err := DecodeACL(data); err == nil {
			FormatACL(es)
		}
	})
}

// FuzzCollectorParsers: passwd, shadow, group, sudoers, /proc/net and
// /proc/modules text of any shape gives objects whose values are safe
// event text, or an error.
func FuzzCollectorParsers(f *testing.F) {
	for _, p := range []string{"testdata/proc/net/tcp", "testdata/proc/net/tcp6", "testdata/proc/net/udp", "testdata/proc/modules"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\n"))
	f.Add([]byte("root:$y$j9T$a$b:19000:0:99999:7:::\n"))
	f.Add([]byte("Defaults env_reset\n#1000 ALL=(ALL) ALL \\\n  , x\n@includedir /etc/sudoers.d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var objs []Object
		objs = append(objs, ParseUsers(data, data, []byte("k"))...)
		objs = append(objs, ParseGroups(data)...)
		if m, err := ParseModules(data); err == nil {
			objs = append(objs, m...)
		}
		for _, proto := range []string{"tcp", "udp6"} {
			if _, err := ParseProcNet(data, proto); err != nil {
				continue
			}
		}
		for _, e := range ParseSudoers(data) {
			if !utf8.ValidString(SafeText(e.text)) {
				t.Fatal("unsafe sudoers text")
			}
		}
		for _, o := range objs {
			for k, v := range o.Attrs {
				if !utf8.ValidString(v) || bytes.IndexByte([]byte(v), 0) >= 0 || len(v) > MaxAttrLen {
					t.Fatalf("%s %s: unsafe value %q", o.Kind, k, v)
				}
			}
			if !utf8.ValidString(o.Key) || len(o.Key) > MaxAttrLen+8 {
				t.Fatalf("unsafe key %q", o.Key)
			}
		}
	})
}

func FuzzParseRules(f *testing.F) {
	f.Add(DefaultRulesYAML())
	f.Add([]byte("rules:\n  - name: a\n    paths: [/x, \"/home/*/.ssh\"]\n    exclude: [\"*.log\", /x/y]\n    checks: [all, -mtime]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data)
		if err != nil {
			return
		}
		for i := range rs.Rules {
			rs.excluded(i, "/x/y/z.log")
		}
	})
}
