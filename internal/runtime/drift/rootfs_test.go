package drift

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"mamori/internal/runtime/container"
)

func TestParseRootfs(t *testing.T) {
	mi := `20 1 0:5 / / rw - ext4 /dev/vda rw
75 51 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/3/fs,workdir=/s/3/work
76 75 0:43 / /proc rw - proc proc rw
79 77 0:46 / /run rw,nosuid - tmpfs tmpfs rw
`
	rf, err := ParseRootfs([]byte(mi))
	if err != nil {
		t.Fatal(err)
	}
	want := Rootfs{Dev: 40, Upper: "/s/3/fs", Lower: []string{"/s/2/fs", "/s/1/fs"}}
	if rf.Dev != want.Dev || rf.Upper != want.Upper || !reflect.DeepEqual(rf.Lower, want.Lower) || len(rf.Mounts) != 3 {
		t.Fatalf("%+v", rf)
	}
	if m, ok := rf.mountOf(46); !ok || m.MountPoint != "/run" {
		t.Fatalf("mountOf: %+v %v", m, ok)
	}

	// containerd's and Docker's shortened options: relative lower dirs
	// (from the snapshot root), a ':' and a ',' escaped in paths.
	rel := `75 51 0:40 / / rw - overlay overlay rw,lowerdir=2/fs:1/fs,upperdir=/var/lib/c/snapshots/3/fs,workdir=/w
`
	rf, err = ParseRootfs([]byte(rel))
	if err != nil || !reflect.DeepEqual(rf.Lower, []string{"/var/lib/c/snapshots/2/fs", "/var/lib/c/snapshots/1/fs"}) {
		t.Fatalf("relative: %+v %v", rf, err)
	}
	esc := `75 51 0:40 / / rw - overlay overlay rw,lowerdir=/a\:b:/c\054d,upperdir=/u\040x/fs,workdir=/w,lowerdir+=/e
`
	rf, err = ParseRootfs([]byte(esc))
	if err != nil || !reflect.DeepEqual(rf.Lower, []string{"/a:b", "/c,d", "/e"}) || rf.Upper != "/u x/fs" {
		t.Fatalf("escaped: %+v %v", rf, err)
	}

	for name, bad := range map[string]string{
		"no root":     "76 75 0:43 / /proc rw - proc proc rw\n",
		"not overlay": "20 1 0:5 / / rw - ext4 /dev/vda rw\n",
		"no upper":    "75 51 0:40 / / rw - overlay overlay ro,lowerdir=/a:/b\n",
		"relative up": "75 51 0:40 / / rw - overlay overlay rw,lowerdir=/a,upperdir=u,workdir=w\n",
		"garbage":     "\x00\xff",
	} {
		if _, err := ParseRootfs([]byte(bad)); !errors.Is(err, ErrNotOverlay) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLookupConfined: lookups stay beneath the layer dir whatever the
// path and the symlinks in the layer say.
func TestLookupConfined(t *testing.T) {
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{layer, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layer, "file"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs": outside, "rel": "../outside", "self": "file"} {
		if err := os.Symlink(target, filepath.Join(layer, name)); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := openLayers(Rootfs{Upper: layer}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.close()
	if f, err := lookup(ls.upper, layer, "file", false); err != nil || !f.regular {
		t.Fatalf("file: %+v %v", f, err)
	}
	// A symlink as the last component is reported as what it is (not a
	// regular file), never followed.
	if f, err := lookup(ls.upper, layer, "self", false); err != nil || f.regular {
		t.Fatalf("self: %+v %v", f, err)
	}
	for _, rel := range []string{"abs/secret", "rel/secret", "../outside/secret", "nope"} {
		if f, err := lookup(ls.upper, layer, rel, false); err == nil || !notHere(err) {
			t.Errorf("%s: %+v %v (want not here)", rel, f, err)
		}
	}
}

func FuzzParseRootfs(f *testing.F) {
	f.Add([]byte("75 51 0:40 / / rw - overlay overlay rw,lowerdir=/a:b\\:c,upperdir=/u,workdir=/w\n"))
	f.Add([]byte("1 1 0:1 / / - overlay x upperdir=/\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rf, err := ParseRootfs(b)
		if err != nil {
			return
		}
		if !filepath.IsAbs(rf.Upper) {
			t.Fatalf("upper %q", rf.Upper)
		}
		for _, l := range rf.Lower {
			if !filepath.IsAbs(l) {
				t.Fatalf("lower %q", l)
			}
		}
	})
}

// BenchmarkCheck is the per-exec cost: an image file (the upper dir
// looked at, the lower answer cached) and a new file in the upper dir.
func BenchmarkCheck(b *testing.B) {
	dir := b.TempDir()
	upper, lower := filepath.Join(dir, "upper"), filepath.Join(dir, "lower")
	for _, p := range []string{filepath.Join(upper, "tmp"), filepath.Join(lower, "bin")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(upper, "tmp/x"), filepath.Join(lower, "bin/sh")} {
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	d, err := New()
	if err != nil {
		b.Fatal(err)
	}
	c := &container.Info{PID: 1, PIDStart: 1}
	c.ID, c.Runtime = "bench", container.RuntimeContainerd
	ls, err := openLayers(Rootfs{Dev: 7, Upper: upper, Lower: []string{lower}}, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	d.rootfs[key(c)] = ls
	defer d.Close()
	fi, err := os.Stat(filepath.Join(lower, "bin/sh"))
	if err != nil {
		b.Fatal(err)
	}
	ino := fileIno(fi)
	b.Run("image-file", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if v, err := d.Check(c, "/bin/sh", 7, ino); err != nil || v.Drift {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("upper-file", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if v, err := d.Check(c, "/tmp/x", 7, 0); err != nil || !v.Drift {
				b.Fatal(v, err)
			}
		}
	})
}
