package integrity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixture builds a small host tree under a temp root.
func fixture(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, content string, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(full, uint32(mode)); err != nil { // os.Chmod drops raw 04000
			t.Fatal(err)
		}
	}
	write("/usr/bin/ls", "ELF ls", 0o755)
	write("/usr/bin/sudo", "ELF sudo", 0o4755)
	write("/usr/lib/libc.so.6", "ELF libc", 0o644)
	write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", 0o644)
	write("/etc/shadow", "root:$y$j9T$salt$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", 0o640)
	write("/etc/group", "root:x:0:\nsudo:x:27:alice,bob\n", 0o644)
	write("/etc/ssh/sshd_config", "PermitRootLogin no\n", 0o644)
	write("/etc/sudoers", "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n", 0o440)
	write("/etc/sudoers.d/ops", "%ops ALL=(ALL) NOPASSWD: /usr/bin/systemctl\n", 0o440)
	write("/etc/sudoers.d/README.txt", "ignored: has a dot\n", 0o440)
	write("/var/log/syslog", "noise", 0o640)
	if err := os.Symlink("/usr/bin/ls", filepath.Join(root, "/etc/ls-link")); err != nil {
		t.Fatal(err)
	}
	return root
}

func testRules(t testing.TB) *RuleSet {
	t.Helper()
	rs, err := ParseRules([]byte(`
exclude: ["*.swp"]
rules:
  - name: binaries
    severity: high
    paths: [/usr/bin, /usr/sbin]
  - name: libraries
    paths: [/usr/lib]
  - name: ssh
    severity: critical
    paths: [/etc/ssh]
  - name: etc
    paths: [/etc]
    exclude: [/etc/ignored]
`))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func fileCollectors() []Collector {
	return []Collector{UserCollector{}, GroupCollector{}, SudoersCollector{}}
}

func build(t testing.TB, root string, rs *RuleSet, key []byte) *Baseline {
	t.Helper()
	b, err := Build(context.Background(), rs, key, WithRoot(root), WithCollectors(fileCollectors()...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func paths(b *Baseline) []string {
	var out []string
	for _, f := range b.Files {
		out = append(out, f.Path)
	}
	return out
}

func TestBuildRecordsRulePaths(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	b := build(t, root, rs, nil)
	want := []string{"/etc", "/etc/group", "/etc/ls-link", "/etc/passwd", "/etc/shadow", "/etc/ssh", "/etc/ssh/sshd_config",
		"/etc/sudoers", "/etc/sudoers.d", "/etc/sudoers.d/README.txt", "/etc/sudoers.d/ops",
		"/usr/bin", "/usr/bin/ls", "/usr/bin/sudo", "/usr/lib", "/usr/lib/libc.so.6"}
	if got := paths(b); !slices.Equal(got, want) {
		t.Fatalf("paths\n got %q\nwant %q", got, want)
	}
	byPath := map[string]*File{}
	for i := range b.Files {
		byPath[b.Files[i].Path] = &b.Files[i]
	}
	if f := byPath["/etc/ssh/sshd_config"]; b.Rules[f.Rule].Name != "ssh" {
		t.Errorf("sshd_config under rule %q", b.Rules[f.Rule].Name)
	}
	if f := byPath["/etc/passwd"]; b.Rules[f.Rule].Name != "etc" {
		t.Errorf("passwd under rule %q", b.Rules[f.Rule].Name)
	}
	sudo := byPath["/usr/bin/sudo"]
	if !sudo.Hashed || sudo.Mode != 0o4755 || sudo.Type != TypeRegular || sudo.Size != 8 {
		t.Errorf("sudo record %+v", sudo)
	}
	if a := sudo.Attrs(); a["sha256"] != fmt.Sprintf("%x", sha256.Sum256([]byte("ELF sudo"))) || a["setuid"] != "true" || a["mode"] != "4755" {
		t.Errorf("sudo attrs %v", a)
	}
	if l := byPath["/etc/ls-link"]; l.Type != TypeSymlink || l.Link != "/usr/bin/ls" || l.Hashed {
		t.Errorf("symlink record %+v", l)
	}
	// Objects: users (no hash stored), groups, sudoers entries with the include.
	var keys []string
	for _, o := range b.Objects {
		keys = append(keys, string(o.Kind)+" "+o.Key)
		for _, v := range o.Attrs {
			if strings.Contains(v, "hashhash") {
				t.Errorf("password hash stored in %s %s", o.Kind, o.Key)
			}
		}
	}
	wantObjs := []string{"user daemon", "user root", "group root", "group sudo",
		"sudoers /etc/sudoers.d/ops: %ops ALL=(ALL) NOPASSWD: /usr/bin/systemctl",
		"sudoers /etc/sudoers: @includedir /etc/sudoers.d", "sudoers /etc/sudoers: Defaults env_reset", "sudoers /etc/sudoers: root ALL=(ALL:ALL) ALL"}
	if !slices.Equal(keys, wantObjs) {
		t.Errorf("objects\n got %q\nwant %q", keys, wantObjs)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	root := fixture(t)
	b := build(t, root, testRules(t), nil)
	b.Files[2].Xattrs = []Xattr{{Name: "user.x", Value: []byte{0, 1, 2}}}
	p := filepath.Join(t.TempDir(), "baseline")
	if err := b.Save(p); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v", st.Mode(), err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(b.Created) || got.Root != b.Root || !bytes.Equal(got.Key, b.Key) || !slices.Equal(got.Rules, b.Rules) {
		t.Errorf("header differs: %+v", got)
	}
	if len(got.Files) != len(b.Files) || len(got.Objects) != len(b.Objects) {
		t.Fatalf("%d files %d objects, want %d %d", len(got.Files), len(got.Objects), len(b.Files), len(b.Objects))
	}
	for i := range b.Files {
		if a, c := b.Files[i], got.Files[i]; a.Path != c.Path || diffFile(&a, &c, CheckAll) != nil || a.Rule != c.Rule {
			t.Errorf("file %d: %+v != %+v", i, a, c)
		}
	}
	if ev := Compare(b, got, testRules(t), fileCollectors(), SourceCompare, time.Now()); len(ev) != 0 {
		t.Errorf("loaded baseline differs: %+v", ev)
	}
	// No temporary file left behind.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries", len(ents))
	}
}

func TestDecodeRefusesDamage(t *testing.T) {
	root := fixture(t)
	b := build(t, root, testRules(t), nil)
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	if _, err := Decode(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("NOT-A-FIM\n\x01"), good[12:]...),
		"version":   append(append([]byte(magic), 9), good[len(magic)+1:]...),
		"truncated": good[:len(good)-10],
		"half":      good[:len(good)/2],
		"appended":  append(slices.Clone(good), 0),
	} {
		if _, err := Decode(bytes.NewReader(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// A body altered inside a valid zstd stream fails the checksum.
	var body bytes.Buffer
	b.Host = "other"
	b.Encode(&body)
	tampered := body.Bytes()
	if _, err := Decode(bytes.NewReader(tampered)); err != nil {
		t.Fatalf("re-encoded: %v", err)
	}
}

func TestCompareReportsChanges(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	old := build(t, root, rs, nil)
	// Let a different mtime show even on coarse clocks.
	later := time.Now().Add(time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "/usr/bin/ls"), []byte("ELF ls trojaned"), 0o755))
	must(os.Chtimes(filepath.Join(root, "/usr/bin/ls"), later, later))
	must(os.Chmod(filepath.Join(root, "/usr/lib/libc.so.6"), 0o666))
	must(os.WriteFile(filepath.Join(root, "/usr/bin/backdoor"), []byte("x"), 0o755))
	must(unix.Chmod(filepath.Join(root, "/usr/bin/backdoor"), 0o4755))
	must(os.Remove(filepath.Join(root, "/etc/ssh/sshd_config")))
	must(os.WriteFile(filepath.Join(root, "/etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nmallory:x:0:0::/:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "/etc/shadow"), []byte("root:$y$j9T$salt$otherhash:19001:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nmallory::19001::::::\n"), 0o640))
	must(os.WriteFile(filepath.Join(root, "/etc/ignored"), []byte("excluded"), 0o644))
	must(os.WriteFile(filepath.Join(root, "/etc/x.swp"), []byte("excluded"), 0o644))

	cur := build(t, root, rs, old.Key)
	events := Compare(old, cur, rs, fileCollectors(), SourceCompare, time.Now())
	got := map[string]Event{}
	for _, e := range events {
		got[string(e.Kind)+" "+e.Key] = e
	}
	check := func(key string, change Change, changed ...string) Event {
		t.Helper()
		e, ok := got[key]
		if !ok {
			t.Errorf("no event for %s", key)
			return e
		}
		if e.Change != change {
			t.Errorf("%s: %s, want %s", key, e.Change, change)
		}
		for _, c := range changed {
			if !slices.Contains(e.Changed, c) {
				t.Errorf("%s: changed %v lacks %s", key, e.Changed, c)
			}
		}
		return e
	}
	ls := check("file /usr/bin/ls", Modified, "sha256", "size", "mtime", "ctime")
	if ls.Before["sha256"] == ls.After["sha256"] || ls.Rule != "binaries" || ls.Severity != SeverityHigh {
		t.Errorf("ls event %+v", ls)
	}
	libc := check("file /usr/lib/libc.so.6", Modified, "mode")
	if libc.Before["mode"] != "0644" || libc.After["mode"] != "0666" || slices.Contains(libc.Changed, "sha256") {
		t.Errorf("libc event %+v", libc)
	}
	bd := check("file /usr/bin/backdoor", Added)
	if bd.After["setuid"] != "true" || bd.Before != nil || bd.Severity != SeverityHigh {
		t.Errorf("backdoor event %+v", bd)
	}
	if e := check("file /etc/ssh/sshd_config", Removed); e.Rule != "ssh" || e.Severity != SeverityCritical || e.After != nil {
		t.Errorf("sshd_config event %+v", e)
	}
	check("file /etc/passwd", Modified, "sha256")
	m := check("user mallory", Added)
	if m.After["uid"] != "0" || m.After["password"] != "empty" {
		t.Errorf("mallory %+v", m)
	}
	r := check("user root", Modified, "passwordDigest", "lastChange")
	if r.Before["passwordDigest"] == r.After["passwordDigest"] {
		t.Errorf("root digest unchanged: %+v", r)
	}
	for _, k := range []string{"file /etc/ignored", "file /etc/x.swp", "file /etc"} {
		if e, ok := got[k]; ok {
			t.Errorf("unexpected event %+v", e)
		}
	}
	for _, e := range events {
		for _, m := range []map[string]string{e.Before, e.After} {
			for k, v := range m {
				if strings.Contains(v, "otherhash") || strings.Contains(v, "hashhash") {
					t.Errorf("%s %s: %s carries the password hash", e.Kind, e.Key, k)
				}
			}
		}
	}
	check("file /etc/shadow", Modified, "sha256")
	// Every event fits the one event envelope.
	for _, e := range events {
		me := e.Model()
		if err := me.Validate(); err != nil {
			t.Errorf("%s %s: %v", e.Kind, e.Key, err)
		}
		if me.Module != Module || me.Change == nil || me.Rule.ID == "" || me.Severity == 0 {
			t.Errorf("model event %+v", me)
		}
	}
	if me := got["file /usr/bin/backdoor"].Model(); me.File == nil || me.File.Mode != "4755" || len(me.File.SHA256) != 64 || me.Rule.ID != "integrity.binaries" {
		t.Errorf("model file ref %+v", me.File)
	}
	if len(events) != 8 {
		for _, e := range events {
			t.Logf("%s %s %s %v", e.Kind, e.Key, e.Change, e.Changed)
		}
		t.Errorf("%d events, want 8", len(events))
	}
}

func TestScanReusesUnchangedHashes(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	s, err := NewScanner(rs, WithRoot(root), WithCollectors())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, st, err := s.Scan(ctx, nil)
	if err != nil || st.Hashed != 10 || st.Reused != 0 {
		t.Fatalf("first scan: %+v %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(root, "/usr/bin/ls"), []byte("ELF ls v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, st, err := s.Scan(ctx, first)
	if err != nil || st.Hashed != 1 || st.Reused != 9 {
		t.Fatalf("second scan: %+v %v", st, err)
	}
	if ev := diffFiles(first, second, nil, nil, nil, SourceCompare, time.Now()); len(ev) != 1 || ev[0].Key != "/usr/bin/ls" {
		t.Errorf("events %+v", ev)
	}
	// WithRehash reads everything again.
	s2, _ := NewScanner(rs, WithRoot(root), WithCollectors(), WithRehash(true))
	if _, st, _ := s2.Scan(ctx, second); st.Hashed != 10 || st.Reused != 0 {
		t.Errorf("rehash scan: %+v", st)
	}
}

func TestScanCancelled(t *testing.T) {
	root := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := NewScanner(testRules(t), WithRoot(root), WithCollectors())
	if _, _, err := s.Scan(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan = %v", err)
	}
}

// TestHostileNames: file names that are not text are recorded as they are
// (the baseline round-trips them) and rendered safe in events.
func TestHostileNames(t *testing.T) {
	root := fixture(t)
	rs := testRules(t)
	old := build(t, root, rs, nil)
	names := []string{"\xff\xfe", "a\nb", "tab\there", strings.Repeat("x", 255), "\x1b[31mred"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(root, "usr/bin", n), []byte(n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("\xff/\n", filepath.Join(root, "usr/bin/badlink")); err != nil {
		t.Fatal(err)
	}
	cur := build(t, root, rs, old.Key)
	var buf bytes.Buffer
	if err := cur.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if lookupFile(back.Files, "/usr/bin/\xff\xfe") == nil || lookupFile(back.Files, "/usr/bin/a\nb") == nil {
		t.Error("raw names lost in the baseline")
	}
	events := Compare(old, cur, rs, nil, SourceCompare, time.Now())
	if len(events) != len(names)+1 {
		t.Errorf("%d events", len(events))
	}
	for _, e := range events {
		me := e.Model()
		if err := me.Validate(); err != nil {
			t.Errorf("%q: %v", e.Key, err)
		}
		if strings.ContainsAny(e.Key, "\n\x1b\t") {
			t.Errorf("control characters in key %q", e.Key)
		}
	}
}
