package hostile

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

// cycle repeats b forever.
type cycle struct {
	b   []byte
	off int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.b[c.off:])
		n += k
		c.off = (c.off + k) % len(c.b)
	}
	return n, nil
}

// repeat returns a reader of s repeated to exactly n bytes.
func repeat(s string, n int64) io.Reader { return io.LimitReader(&cycle{b: []byte(s)}, n) }

// random returns a reader of n pseudo-random bytes (ChaCha8, seeded: the
// same bytes on every run).
func random(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func randomBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(random(seed, int64(n)), b); err != nil {
		panic(err)
	}
	return b
}

// nested returns open repeated depth times then close repeated depth times:
// JSON nested depth deep, streamed.
func nested(open, close string, depth int64) (io.Reader, int64) {
	return io.MultiReader(repeat(open, depth*int64(len(open))), repeat(close, depth*int64(len(close)))),
		depth * int64(len(open)+len(close))
}

// Case 8: junk and gigantic package databases. Each ends with a warning
// naming the file, and the image's other packages are still reported and
// matched.
func TestJunkPackageDatabases(t *testing.T) {
	const (
		mib = 1 << 20
	)
	nest50, n50 := nested("[", "]", 25*mib)          // 50 MiB package.json: over the npm cap
	nest15, n15 := nested("[", "]", 15*mib/2)        // 15 MiB: under the cap, 7.8M levels deep
	objDeep, nObj := nested(`{"a":`, "}", 1_000_000) // 6 MB of nested objects
	cases := []struct {
		name  string
		entry func() entry
		warn  []string // a warning contains each of these
		pkg   string   // or: this package is still read from the damaged file
	}{
		{"dpkg status of random bytes", func() entry {
			return regBytes("var/lib/dpkg/status", randomBytes(1, 256<<10))
		}, []string{"var/lib/dpkg/status"}, ""},
		{"dpkg status of 100 MiB", func() entry {
			return regStream("var/lib/dpkg/status", 100*mib, repeat(dpkgStatus("bulk-pkg"), 100*mib))
		}, []string{"var/lib/dpkg/status"}, ""},
		{"dpkg status with a 1 MiB line", func() entry {
			return reg("var/lib/dpkg/status", "Package: longline\nStatus: install ok installed\nDescription: "+strings.Repeat("x", mib)+"\nVersion: 1\n\n")
		}, nil, "longline"},
		{"dpkg status.d of random bytes", func() entry {
			return regBytes("var/lib/dpkg/status.d/junk", randomBytes(2, 64<<10))
		}, []string{"var/lib/dpkg/status.d/junk"}, ""},
		{"apk installed of random bytes", func() entry {
			return regBytes("lib/apk/db/installed", randomBytes(3, 256<<10))
		}, []string{"lib/apk/db/installed"}, ""},
		{"apk installed with fields but no values and a 1 MiB line", func() entry {
			return reg("lib/apk/db/installed", "P:\nV:\nA:\n\nP:longline\nT:"+strings.Repeat("9", mib)+"\nV:1.0-r0\n\n")
		}, nil, "longline"},
		{"rpmdb.sqlite with a SQLite header and garbage", func() entry {
			return regBytes("var/lib/rpm/rpmdb.sqlite", append([]byte("SQLite format 3\x00"), randomBytes(4, 128<<10)...))
		}, []string{"rpmdb.sqlite"}, ""},
		{"rpm Packages (Berkeley DB) of random bytes", func() entry {
			return regBytes("var/lib/rpm/Packages", randomBytes(5, 128<<10))
		}, []string{"var/lib/rpm/Packages"}, ""},
		{"rpm Packages.db (NDB) of random bytes", func() entry {
			return regBytes("usr/lib/sysimage/rpm/Packages.db", randomBytes(6, 128<<10))
		}, []string{"Packages.db"}, ""},
		{"package.json of 50 MiB nested arrays", func() entry {
			return regStream("usr/lib/node_modules/bomb/package.json", n50, nest50)
		}, []string{"usr/lib/node_modules/bomb/package.json"}, ""},
		{"package.json of 15 MiB nested arrays", func() entry {
			return regStream("usr/lib/node_modules/deep/package.json", n15, nest15)
		}, []string{"usr/lib/node_modules/deep/package.json"}, ""},
		{"package.json of 1e6 nested objects", func() entry {
			return regStream("usr/lib/node_modules/deepobj/package.json", nObj, objDeep)
		}, []string{"usr/lib/node_modules/deepobj/package.json"}, ""},
		{"dist-info METADATA of random bytes", func() entry {
			return regBytes("usr/lib/python3/dist-packages/junk-1.0.dist-info/METADATA", randomBytes(7, 64<<10))
		}, []string{"junk-1.0.dist-info/METADATA"}, ""},
		{"Go binary: ELF header then garbage", func() entry {
			e := regBytes("usr/local/bin/garbage", append([]byte("\x7fELF\x02\x01\x01\x00"), randomBytes(8, 1<<20)...))
			e.hdr.Mode = 0o755
			return e
		}, []string{"usr/local/bin/garbage"}, ""},
		{"gemspec of random bytes", func() entry {
			return regBytes("usr/lib/ruby/gems/3.1.0/specifications/junk-1.0.gemspec", randomBytes(9, 64<<10))
		}, []string{"junk-1.0.gemspec"}, ""},
		{"composer installed.json nested", func() entry {
			r, n := nested("[", "]", 200_000)
			return regStream("var/www/vendor/composer/installed.json", n, r)
		}, []string{"installed.json"}, ""},
		{"deps.json of random bytes", func() entry {
			return regBytes("app/junk.deps.json", randomBytes(10, 64<<10))
		}, []string{"junk.deps.json"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			l := writeLayer(t, t.TempDir(), gzipped, append(goodEntries(), tc.entry())...)
			archive := filepath.Join(t.TempDir(), "junkdb.tar")
			writeArchive(t, archive, archiveSpec{layers: []layer{l}})
			o := scanImage(t, e, archive, fastDeadline, allScanners...)
			if o.err != nil {
				t.Fatalf("a junk package database failed the whole scan: %v", o.err)
			}
			if tc.warn != nil {
				mustWarn(t, o.res, tc.warn...)
			}
			if tc.pkg != "" {
				mustPackage(t, o.res, tc.pkg)
			}
			mustPackage(t, o.res, "hostile-good", "goodpy")
			mustMatchAdvisory(t, o.res)
			if w, ok := warningWith(o.res, tc.warn...); ok {
				t.Logf("warning: %.300s", w)
			}
		})
	}
}

// Case 8, all at once through the binary: peak RSS with every junk
// database in one layer (100 MiB dpkg status, 50 MiB package.json …).
func TestJunkPackageDatabasesBinary(t *testing.T) {
	const mib = 1 << 20
	e := newEnv(t)
	nest50, n50 := nested("[", "]", 25*mib)
	nest15, n15 := nested("[", "]", 15*mib/2)
	l := writeLayer(t, t.TempDir(), gzipped, append(goodEntries(),
		regStream("var/lib/dpkg/status", 100*mib, repeat(dpkgStatus("bulk-pkg"), 100*mib)),
		regBytes("lib/apk/db/installed", randomBytes(3, 256<<10)),
		regBytes("var/lib/rpm/rpmdb.sqlite", append([]byte("SQLite format 3\x00"), randomBytes(4, 128<<10)...)),
		regStream("usr/lib/node_modules/bomb/package.json", n50, nest50),
		regStream("usr/lib/node_modules/deep/package.json", n15, nest15),
	)...)
	archive := filepath.Join(t.TempDir(), "junkdb.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})
	r := runMamori(t, e, fastDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
	}
	res := decodeResult(t, r.stdout)
	mustPackage(t, res, "hostile-good", "goodpy")
	mustMatchAdvisory(t, res)
	for _, p := range []string{"var/lib/dpkg/status", "lib/apk/db/installed", "rpmdb.sqlite", "bomb/package.json", "deep/package.json"} {
		mustWarn(t, res, p)
	}
	t.Logf("junk databases: wall %s, peak RSS %d MiB", r.wall.Round(1e6), r.maxRSS>>20)
	if r.maxRSS > maxRSSBytes {
		t.Errorf("peak RSS %d MiB over %d MiB", r.maxRSS>>20, maxRSSBytes>>20)
	}
}

// Case 8, source trees: a package-lock.json nested a million levels deep
// and other junk lock files beside a good one (`mamori fs`).
func TestJunkLockFiles(t *testing.T) {
	e := newEnv(t)
	root := t.TempDir()
	write := func(rel string, r io.Reader) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deep, _ := nested(`{"a":`, "}", 1_000_000)
	write("deep/package-lock.json", deep)
	arr, _ := nested("[", "]", 1_000_000)
	write("arr/package-lock.json", arr)
	write("junk/yarn.lock", random(11, 1<<20))
	write("junk/pnpm-lock.yaml", strings.NewReader(strings.Repeat("- ", 100_000)+"x\n"))
	// YAML aliases: a billion-laughs document.
	var laughs strings.Builder
	laughs.WriteString("lockfileVersion: '9.0'\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i, prev := 0, "a"; i < 9; i++ {
		name := string(rune('b' + i))
		laughs.WriteString(name + ": &" + name + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n")
		prev = name
	}
	write("laughs/pnpm-lock.yaml", strings.NewReader(laughs.String()))
	write("junk/Cargo.lock", random(12, 1<<20))
	write("junk/composer.lock", random(13, 1<<20))
	write("junk/poetry.lock", strings.NewReader(strings.Repeat("[", 1_000_000)))
	write("good/package-lock.json", strings.NewReader(`{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/hostile-good":{"version":"1.0.0"}}}`))

	o := scanDir(t, e, root, model.TargetFS, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	mustPackage(t, o.res, "hostile-good")
	mustMatchAdvisory(t, o.res)
	// The billion-laughs pnpm-lock.yaml is valid YAML with no packages: it
	// must simply not blow up (yaml.v3 refuses excessive aliasing).
	for _, p := range []string{"deep/package-lock.json", "arr/package-lock.json", "junk/yarn.lock", "junk/pnpm-lock.yaml", "junk/Cargo.lock", "junk/composer.lock", "junk/poetry.lock"} {
		mustWarn(t, o.res, p)
	}
	t.Logf("junk lock files scanned in %s; %d warnings", o.wall.Round(1e6), len(o.res.Warnings))
}
