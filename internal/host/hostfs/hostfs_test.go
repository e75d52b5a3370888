package hostfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func stat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestCacheChangeAndEviction(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewCache[string](2)
	st := stat(t, p)
	c.Put(st, "clean")
	if v, ok := c.Get(st); !ok || v != "clean" {
		t.Fatalf("get: %q %v", v, ok)
	}
	// Same size, rewritten: ctime moves, the entry is stale.
	if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	st2 := stat(t, p)
	if _, ok := c.Get(st2); ok {
		t.Fatal("rewritten file hit the cache")
	}
	if c.Len() != 0 || c.Stats().Stale != 1 {
		t.Errorf("stale entry kept: %+v", c.Stats())
	}
	// chmod changes ctime too (mode is part of what a verdict may depend on).
	c.Put(st2, "clean")
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(stat(t, p)); ok {
		t.Error("chmodded file hit the cache")
	}
	// LRU eviction.
	var sts []*unix.Stat_t
	for _, n := range []string{"a", "b", "c"} {
		q := filepath.Join(dir, n)
		if err := os.WriteFile(q, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, stat(t, q))
	}
	c.Purge()
	c.Put(sts[0], "a")
	c.Put(sts[1], "b")
	c.Get(sts[0]) // a is now most recent
	c.Put(sts[2], "c")
	if _, ok := c.Get(sts[1]); ok {
		t.Error("least recently used entry not evicted")
	}
	if _, ok := c.Get(sts[0]); !ok {
		t.Error("recent entry evicted")
	}
	if c.Len() != 2 || c.Stats().Evictions != 1 {
		t.Errorf("stats: %+v", c.Stats())
	}
	c.Forget(sts[0])
	if _, ok := c.Get(sts[0]); ok {
		t.Error("forgotten entry found")
	}
}

// tree builds a root with files, nested dirs, a FIFO and links that point
// out of the root (absolute and relative) and at dirs outside.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root + "/a/b/c", root + "/etc", outside + "/secret"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range map[string]string{
		root + "/top":            "top",
		root + "/a/b/c/deep":     "deep",
		root + "/etc/passwd":     "inside",
		outside + "/secret/file": "outside",
		outside + "/passwd":      "outside",
	} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		root + "/abs":        outside + "/passwd",
		root + "/rel":        "../outside/passwd",
		root + "/dirlink":    outside + "/secret",
		root + "/a/up":       "../../../outside",
		root + "/etc/shadow": "/../../../outside/passwd",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(root+"/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func TestWalkStaysInRoot(t *testing.T) {
	root, _ := tree(t)
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var seen []string
	ws, err := Walk(context.Background(), d, WalkOptions{}, func(ctx context.Context, rel string, f *os.File, st *unix.Stat_t) error {
		b, err := os.ReadFile("/proc/self/fd/" + itoa(int(f.Fd())))
		if err != nil {
			return err
		}
		if string(b) == "outside" {
			t.Errorf("read a file outside the root through %s", rel)
		}
		seen = append(seen, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(seen)
	if strings.Join(seen, ",") != "a/b/c/deep,etc/passwd,top" {
		t.Errorf("visited %v", seen)
	}
	if ws.Symlinks != 5 || ws.Special != 1 || ws.Files != 3 {
		t.Errorf("stats %+v", ws)
	}
	// Depth and SkipDir bound the walk.
	seen = nil
	ws, err = Walk(context.Background(), d, WalkOptions{MaxDepth: 1, SkipDir: func(rel string) bool { return rel == "etc" }},
		func(ctx context.Context, rel string, f *os.File, st *unix.Stat_t) error {
			seen = append(seen, rel)
			return nil
		})
	if err != nil || strings.Join(seen, ",") != "top" || ws.Skipped != 1 || ws.TooDeep != 1 {
		t.Errorf("bounded walk: %v %+v %v", seen, ws, err)
	}
	// A cancelled context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Walk(ctx, d, WalkOptions{}, func(context.Context, string, *os.File, *unix.Stat_t) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestWalkRefusesPseudoRoot(t *testing.T) {
	d, err := OpenDir("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := Walk(context.Background(), d, WalkOptions{}, nil); err == nil || !strings.Contains(err.Error(), "pseudo") {
		t.Errorf("walk of /proc: %v", err)
	}
	if name, pseudo, err := PseudoFS(int(d.Fd())); err != nil || !pseudo || name != "proc" {
		t.Errorf("PseudoFS(/proc) = %q %v %v", name, pseudo, err)
	}
}

func TestOpenInRootStaysInRoot(t *testing.T) {
	root, _ := tree(t)
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range []string{"/abs", "rel", "/etc/shadow", "../../outside/passwd", "/a/up/passwd", "/etc/passwd"} {
		f, _, err := OpenInRoot(d, p)
		if err != nil {
			continue // resolving inside the root found nothing: fine
		}
		b, rerr := os.ReadFile("/proc/self/fd/" + itoa(int(f.Fd())))
		_ = f.Close()
		if rerr != nil {
			t.Fatal(rerr)
		}
		if string(b) == "outside" {
			t.Errorf("OpenInRoot(%q) escaped the root", p)
		}
	}
	// "/etc/shadow" is an absolute link to /../../../outside/passwd: inside
	// the root that is /outside/passwd, which does not exist.
	if _, _, err := OpenInRoot(d, "/etc/shadow"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("absolute link resolved outside: %v", err)
	}
	f, _, err := OpenInRoot(d, "../../../etc/passwd")
	if err != nil {
		t.Fatalf("dot-dot clamps at the root: %v", err)
	}
	_ = f.Close()
	if _, _, err := OpenInRoot(d, "/a"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v", err)
	}
	if _, _, err := OpenInRoot(d, "/fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	if _, _, err := OpenRegular(root + "/abs"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("OpenRegular followed a symlink: %v", err)
	}
}

func TestOpenProcRoot(t *testing.T) {
	d, err := OpenProcRoot("", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/", &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Dev != b.Dev {
		t.Error("own /proc/PID/root is not /")
	}
	if _, err := OpenProcRoot("", 0); err == nil {
		t.Error("pid 0 accepted")
	}
	if _, err := OpenProcRoot("", 1<<30); err == nil {
		t.Error("missing pid accepted")
	}
}

func TestLimiter(t *testing.T) {
	if NewLimiter(0) != nil {
		t.Error("0 should mean no limit")
	}
	l := NewLimiter(4 << 20)
	r := LimitReaderAt(context.Background(), bytes.NewReader(make([]byte, 12<<20)), l)
	start := time.Now()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < 12<<20; off += 1 << 20 {
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	// 4 MiB burst, then 8 MiB at 4 MiB/s.
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("12 MiB at 4 MiB/s took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 8<<20); err == nil {
		t.Error("wait with a cancelled context")
	}
}

func TestParseDirents(t *testing.T) {
	if _, err := parseDirents(make([]byte, 10)); err == nil {
		t.Error("short record accepted")
	}
	rec := make([]byte, 24)
	rec[16] = 200 // reclen past the end
	if _, err := parseDirents(rec); err == nil {
		t.Error("bad length accepted")
	}
}
