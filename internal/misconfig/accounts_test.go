package misconfig

import (
	"bytes"
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// readAccounts checks testdata/accounts/<root>/<p> the way the analyzer does.
func readAccounts(t *testing.T, root, p string) ([]model.Finding, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "accounts", root, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return CheckAccountFile(p, b)
}

func TestAccountFilesClean(t *testing.T) {
	for _, p := range []string{"etc/passwd", "etc/shadow", "etc/group"} {
		fs, err := readAccounts(t, "debian-12", p)
		if err != nil || len(fs) != 0 {
			t.Errorf("debian-12 %s: %v %+v", p, err, fs)
		}
	}
}

func TestAccountFilesEmptyPassword(t *testing.T) {
	// CVE-2019-5021: root with an empty field; every other account locked "!".
	fs, err := readAccounts(t, "alpine-3.9.1", "etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "alpine-3.9.1", fs, []string{ImgEmptyPassword}, []string{ImgDuplicateAccount})
	if len(fs) != 1 || fs[0].Location.Path != "etc/shadow" || fs[0].Location.StartLine != 1 || !strings.Contains(fs[0].Evidence, "root") {
		t.Errorf("findings %+v", fs)
	}

	// Hashed, "!", "!!", "!hash" and "!locked" are not empty: only app.
	fs, err = readAccounts(t, "bad", "etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != ImgEmptyPassword || fs[0].Location.StartLine != 2 || !strings.Contains(fs[0].Evidence, "app") {
		t.Errorf("shadow findings %+v", fs)
	}
	for _, f := range fs {
		if strings.Contains(f.Evidence, "$6$") {
			t.Errorf("hash in evidence %q", f.Evidence)
		}
	}
	// BSD master.passwd has the same first two fields.
	fs, _ = CheckAccountFile("etc/master.passwd", []byte("root:$2b$08$abc:0:0::0:0:Charlie &:/root:/bin/csh\ntoor::0:0::0:0:Bourne-again Superuser:/root:\n"))
	if len(fs) != 1 || fs[0].ID != ImgEmptyPassword || fs[0].Location.StartLine != 2 {
		t.Errorf("master.passwd findings %+v", fs)
	}
}

func TestAccountFilesDuplicates(t *testing.T) {
	fs, err := readAccounts(t, "bad", "etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fs {
		got[f.ID+" "+f.Evidence] = f.Location.StartLine
	}
	want := map[string]int{
		// UID "00" is UID 0: toor is a second root.
		ImgDuplicateAccount + " UID 0 shared by root (line 1), toor (line 3)":                    3,
		ImgDuplicateAccount + " user app defined 2 times (lines 2, 7)":                           7,
		ImgEmptyPassword + " account guest has an empty password field in passwd (not shadowed)": 6,
	}
	if len(got) != len(want) {
		t.Errorf("passwd findings %v", got)
	}
	for k, line := range want {
		if got[k] != line {
			t.Errorf("want %q at line %d; got %v", k, line, got)
		}
	}

	fs, err = readAccounts(t, "bad", "etc/group")
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, f := range fs {
		evs = append(evs, f.Evidence)
	}
	if strings.Join(evs, "|") != "GID 1000 shared by app (line 2), staff (line 3)|group staff defined 2 times (lines 3, 5)" {
		t.Errorf("group findings %q", evs)
	}
	expect(t, "group", fs, []string{ImgDuplicateAccount}, []string{ImgEmptyPassword})
}

func TestAccountFilesHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"no newline":     "root:x:0:0:root:/root:/bin/sh",
		"missing fields": "root\nbin:x\n:x:1:\n::\n",
		"binary":         "\x00\x01\x02root::0:0\xff\xfe\n\x7fELF\x02\x01\x01\n",
		"huge line":      "root:" + strings.Repeat("A", maxAccountLine+1) + ":0:0::/:/bin/sh\n",
		"colons only":    strings.Repeat(":", 1000),
		"non-numeric id": "a:x:zero:0::/:/bin/sh\nb:x:zero:0::/:/bin/sh\n",
	} {
		for _, p := range []string{"etc/passwd", "etc/shadow", "etc/group"} {
			fs, err := CheckAccountFile(p, []byte(in))
			if err != nil && !errors.Is(err, ErrParse) {
				t.Errorf("%s %s: %v", name, p, err)
			}
			for _, f := range fs {
				if f.ID == "" || f.Location.Path != p {
					t.Errorf("%s %s: bad finding %+v", name, p, f)
				}
			}
		}
	}
	// Malformed lines are counted, well-formed ones still checked.
	fs, err := CheckAccountFile("etc/shadow", []byte("garbage\x00line\nroot::1::::::\n"))
	if !errors.Is(err, ErrParse) || len(fs) != 1 {
		t.Errorf("mixed: %v %+v", err, fs)
	}
	// Non-numeric duplicate IDs compare as strings.
	fs, _ = CheckAccountFile("etc/passwd", []byte("a:x:zero:0::/:/bin/sh\nb:x:zero:0::/:/bin/sh\n"))
	if len(fs) != 1 || fs[0].ID != ImgDuplicateAccount {
		t.Errorf("string ids: %+v", fs)
	}
	// Terminal escapes in names are not echoed.
	fs, _ = CheckAccountFile("etc/shadow", []byte("\x1b[31mevil::1::::::\n"))
	if len(fs) != 1 || strings.ContainsRune(fs[0].Evidence, '\x1b') {
		t.Errorf("escape: %+v", fs)
	}
}

func TestAccountFilesBounded(t *testing.T) {
	// A million empty-password accounts: capped findings, bounded read.
	var b bytes.Buffer
	for i := 0; b.Len() < MaxAccountFileSize+1000; i++ {
		b.WriteString("user")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("::19000:0:99999:7:::\n")
	}
	fs, err := CheckAccountFile("etc/shadow", b.Bytes())
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	if len(fs) != maxAccountFindings {
		t.Errorf("%d findings, want the cap %d", len(fs), maxAccountFindings)
	}
}

func TestAccountsAnalyzer(t *testing.T) {
	a := NewAccountsAnalyzer()
	for p, want := range map[string]analyzer.Need{
		"etc/shadow": analyzer.Content, "etc/passwd": analyzer.Content, "etc/group": analyzer.Content,
		"etc/master.passwd": analyzer.Content, "etc/passwd-": analyzer.Skip, "usr/share/base-passwd/passwd.master": analyzer.Skip,
		"srv/etc/shadow": analyzer.Skip, "etc/gshadow": analyzer.Skip,
	} {
		if got := a.Required(p, fi{0o640}); got != want {
			t.Errorf("Required(%s) = %v, want %v", p, got, want)
		}
	}
	if a.Required("etc/shadow", fi{0o777 | iofs.ModeSymlink}) != analyzer.Skip {
		t.Error("symlink wanted")
	}
	// A huge file: metadata only, reported as not checked, still Present.
	huge := bigFile{fi{0o640}}
	if a.Required("etc/shadow", huge) != analyzer.Metadata {
		t.Error("huge shadow: content wanted")
	}
	res, err := a.Analyze(context.Background(), analyzer.Input{Path: "etc/shadow", Info: huge})
	if !errors.Is(err, ErrTooLarge) || res == nil || !res.Present {
		t.Errorf("huge shadow: %+v %v", res, err)
	}
}

type bigFile struct{ fi }

func (bigFile) Size() int64 { return 3 << 30 }

// TestAccountsAcrossLayers: an empty password locked by a later layer is no
// longer reported; one introduced by a later layer is.
func TestAccountsAcrossLayers(t *testing.T) {
	set, err := analyzer.NewSet([]analyzer.Analyzer{NewAccountsAnalyzer()})
	if err != nil {
		t.Fatal(err)
	}
	layer := func(id, shadow string) *analyzer.LayerResult {
		t.Helper()
		lr, err := set.WalkLayer(context.Background(), id, bytes.NewReader(tarOf(t, map[string]string{"etc/shadow": shadow})), nil)
		if err != nil {
			t.Fatal(err)
		}
		return lr
	}
	base := layer("sha256:1", "root:::0:::::\n")
	fixed := layer("sha256:2", "root:*::0:::::\n")
	count := func(lrs ...*analyzer.LayerResult) int {
		n := 0
		for _, r := range analyzer.Merge(lrs).Files {
			n += len(r.Findings)
		}
		return n
	}
	if n := count(base); n != 1 {
		t.Errorf("base: %d findings", n)
	}
	if n := count(base, fixed); n != 0 {
		t.Errorf("fixed by a later layer: %d findings, want 0", n)
	}
	if n := count(fixed, base); n != 1 {
		t.Errorf("broken by a later layer: %d findings, want 1", n)
	}
}
