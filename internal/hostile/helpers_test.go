package hostile

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/cache"
	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/scan/vulnmatch"
	"mamori/internal/vulndb"
)

// allScanners is every scanner mamori has; the hostile cases run them all.
var allScanners = []string{scan.ScannerVuln, scan.ScannerSecret, scan.ScannerMalware, scan.ScannerMisconfig}

// Deadlines. A case that has not finished by its deadline is a hang.
const (
	fastDeadline = 60 * time.Second
	slowDeadline = 3 * time.Minute
)

// maxRSSBytes is the peak resident set size the bounded-memory cases
// allow the mamori process (the lead's target for hostile input).
const maxRSSBytes = 200 << 20

// slow skips t unless slow tests are wanted: they run when MAMORI_TEST_SLOW=1
// or when -short is not given.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("MAMORI_TEST_SLOW") != "1" {
		t.Skip("slow hostile case: runs without -short or with MAMORI_TEST_SLOW=1")
	}
}

// ---------------------------------------------------------------------------
// Layers.

// entry is one tar entry of a hand-written layer.
type entry struct {
	hdr  tar.Header
	body io.Reader // nil for no content
}

func reg(name, content string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, body: strings.NewReader(content)}
}

func regBytes(name string, b []byte) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}, body: bytes.NewReader(b)}
}

// regStream is a regular file of size bytes read from r (streamed, never held).
func regStream(name string, size int64, r io.Reader) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}, body: io.LimitReader(r, size)}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}

func dirEntry(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func special(name string, typ byte, major, minor int64) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: typ, Mode: 0o666, Devmajor: major, Devminor: minor}}
}

// gnu marks e to be written in GNU format, the only tar format that carries
// names that are not valid UTF-8 (PAX requires UTF-8, USTAR ASCII).
func gnu(e entry) entry {
	e.hdr.Format = tar.FormatGNU
	return e
}

// layer is one layer file on disk and the diff ID its uncompressed tar has.
type layer struct {
	path   string
	diffID v1.Hash
}

// compression of a written layer.
type compression int

const (
	plain compression = iota
	gzipped
)

// writeLayerFunc writes a layer to a new file in dir by calling gen with a
// tar writer: the tar is hashed (the diff ID) and compressed as it streams,
// so a layer of any size costs no memory.
func writeLayerFunc(t testing.TB, dir string, c compression, gen func(tw *tar.Writer) error) layer {
	t.Helper()
	f, err := os.CreateTemp(dir, "layer-*.blob")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	var zw io.WriteCloser
	var out io.Writer = f
	if c == gzipped {
		// BestSpeed: 1 GiB of zeros compresses to 1.3 MB in under 2 s
		// (level 9 takes 8 s for 1.04 MB), the bomb is no less a bomb.
		gz, err := gzip.NewWriterLevel(f, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		zw, out = gz, gz
	}
	tw := tar.NewWriter(io.MultiWriter(h, out))
	if err := gen(tw); err != nil {
		t.Fatalf("generate layer: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return layer{path: f.Name(), diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}
}

// writeLayer writes entries as a layer.
func writeLayer(t testing.TB, dir string, c compression, entries ...entry) layer {
	t.Helper()
	return writeLayerFunc(t, dir, c, func(tw *tar.Writer) error {
		for _, e := range entries {
			hdr := e.hdr
			if hdr.ModTime.IsZero() {
				hdr.ModTime = time.Unix(1700000000, 0)
			}
			if err := tw.WriteHeader(&hdr); err != nil {
				return fmt.Errorf("header %q: %w", hdr.Name, err)
			}
			if e.body != nil && hdr.Size > 0 {
				if _, err := io.CopyN(tw, e.body, hdr.Size); err != nil {
					return fmt.Errorf("body %q: %w", hdr.Name, err)
				}
			}
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// Docker archives, written by hand (`docker save` layout).

// archiveSpec describes a docker archive to write.
type archiveSpec struct {
	layers []layer
	// config, when set, replaces the generated config blob bytes.
	config []byte
	// manifest, when set, replaces the generated manifest.json bytes.
	manifest []byte
	// diffIDs, when set, replace the layers' diff IDs in the config.
	diffIDs []v1.Hash
	// omit names layer indexes listed in manifest.json but not stored.
	omit map[int]bool
	// truncate cuts stored layer i to truncate[i] bytes.
	truncate map[int]int64
	// user in the config (default "app", so misconfig has less to say).
	user string
}

// writeArchive writes spec as a docker-archive tar at path, streaming the
// layer files into it.
func writeArchive(t testing.TB, path string, spec archiveSpec) {
	t.Helper()
	diffIDs := spec.diffIDs
	if diffIDs == nil {
		for _, l := range spec.layers {
			diffIDs = append(diffIDs, l.diffID)
		}
	}
	user := spec.user
	if user == "" {
		user = "app"
	}
	cfgBytes := spec.config
	if cfgBytes == nil {
		cf := v1.ConfigFile{
			Architecture: "amd64",
			OS:           "linux",
			Created:      v1.Time{Time: time.Unix(1700000000, 0).UTC()},
			Config:       v1.Config{User: user, Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}},
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		}
		for range spec.layers {
			cf.History = append(cf.History, v1.History{CreatedBy: "hostile layer", Created: cf.Created})
		}
		var err error
		if cfgBytes, err = json.Marshal(cf); err != nil {
			t.Fatal(err)
		}
	}
	cfgSum := sha256.Sum256(cfgBytes)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	var layerNames []string
	for i := range spec.layers {
		layerNames = append(layerNames, fmt.Sprintf("%d/layer.tar", i))
	}
	man := spec.manifest
	if man == nil {
		var err error
		man, err = json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"hostile:test"}, "Layers": layerNames}})
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, size int64, r io.Reader) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, r, size); err != nil {
			t.Fatal(err)
		}
	}
	put(cfgName, int64(len(cfgBytes)), bytes.NewReader(cfgBytes))
	for i, l := range spec.layers {
		if spec.omit[i] {
			continue
		}
		lf, err := os.Open(l.path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := lf.Stat()
		if err != nil {
			t.Fatal(err)
		}
		size := st.Size()
		if n, ok := spec.truncate[i]; ok && n < size {
			size = n
		}
		put(layerNames[i], size, lf)
		lf.Close()
	}
	put("manifest.json", int64(len(man)), bytes.NewReader(man))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The scan environment: fresh TMPDIR, HOME and cache, a sentinel tree.

type env struct {
	root     string
	tmp      string // TMPDIR of the scan; must be empty again afterwards
	cache    string // --cache-dir
	db       string // --db-dir (a copy of the shared tiny DB)
	home     string
	sentinel string // a tree a path traversal from cwd would write into
	cwd      string // sentinel/a/b/c/d/e/f
	canaries []string
	before   []string // the sentinel tree before the scan
	host     map[string]string
}

// tinyDB is a vulnerability database imported once per test binary from a
// generated OSV record (the suite must not depend on /work/shared).
var tinyDB struct {
	once sync.Once
	dir  string
	err  error
}

func sharedDB(t testing.TB) string {
	t.Helper()
	tinyDB.once.Do(func() {
		tinyDB.dir, tinyDB.err = buildTinyDB()
	})
	if tinyDB.err != nil {
		t.Fatalf("build the test vulnerability DB: %v", tinyDB.err)
	}
	return tinyDB.dir
}

// osvRecord is one OSV advisory (https://ossf.github.io/osv-schema/) for
// the npm package the images plant, so a vulnerability match proves the
// inventory survived the hostile parts.
const osvRecord = `{
  "schema_version": "1.6.0",
  "id": "GHSA-host-ile0-test",
  "modified": "2024-01-01T00:00:00Z",
  "published": "2024-01-01T00:00:00Z",
  "summary": "hostile suite test advisory",
  "affected": [{
    "package": {"ecosystem": "npm", "name": "hostile-good"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]
  }]
}`

func buildTinyDB() (string, error) {
	dir, err := os.MkdirTemp(origTmp, "mamori-hostile-db-")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "GHSA-host-ile0-test.json"), []byte(osvRecord), 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := vulndb.Import(ctx, filepath.Join(dir, "db"), src)
	if err != nil {
		return "", err
	}
	if res.Records != 1 {
		return "", fmt.Errorf("imported %d records, want 1 (skipped: %v)", res.Records, res.SkipReasons)
	}
	return filepath.Join(dir, "db"), nil
}

// origEnv is the environment the test binary started with: the go tool
// building mamori needs the real GOCACHE, not a test's fresh HOME.
var origEnv []string

// origTmp is the TMPDIR the test binary started with, for files shared by
// every case (the binary, the test DB), which must not count as a case's.
var origTmp string

func TestMain(m *testing.M) {
	origEnv = os.Environ()
	origTmp = os.TempDir()
	code := m.Run()
	if tinyDB.dir != "" {
		os.RemoveAll(filepath.Dir(tinyDB.dir))
	}
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// hostFiles are host files a traversal would target; their hashes must not
// change.
var hostFiles = []string{"/etc/passwd", "/etc/shadow", "/etc/hosts"}

func newEnv(t testing.TB) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{
		root:     root,
		tmp:      filepath.Join(root, "tmp"),
		cache:    filepath.Join(root, "cache"),
		db:       filepath.Join(root, "db"),
		home:     filepath.Join(root, "home"),
		sentinel: filepath.Join(root, "sentinel"),
	}
	e.cwd = filepath.Join(e.sentinel, "a", "b", "c", "d", "e", "f")
	for _, d := range []string{e.tmp, e.cache, e.home, e.cwd, filepath.Join(e.sentinel, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.sentinel, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(e.db, os.DirFS(sharedDB(t))); err != nil {
		t.Fatal(err)
	}
	e.before = treeOf(t, e.sentinel)
	e.host = map[string]string{}
	for _, p := range hostFiles {
		e.host[p] = fileState(p)
	}
	return e
}

// canary returns a unique name under /tmp that a hostile entry aims at; it
// must still not exist after the scan.
func (e *env) canary(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := "/tmp/mamori-hostile-canary-" + hex.EncodeToString(b[:])
	e.canaries = append(e.canaries, p)
	return p
}

// fileState is a file's size, mode, mtime and content hash ("" when absent).
func fileState(p string) string {
	st, err := os.Lstat(p)
	if err != nil {
		return "absent"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("%v %d %s unreadable", st.Mode(), st.Size(), st.ModTime())
	}
	h := sha256.Sum256(b)
	return fmt.Sprintf("%v %d %s %x", st.Mode(), st.Size(), st.ModTime(), h)
}

// treeOf lists every path below dir with its type and size.
func treeOf(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d", rel, info.Mode().Type(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// check asserts the scan wrote nothing outside the cache and DB: TMPDIR is
// empty again, the sentinel tree is unchanged, the canaries do not exist,
// the host files are as they were.
func (e *env) check(t testing.TB) {
	t.Helper()
	left, err := os.ReadDir(e.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range left {
		t.Errorf("TMPDIR not empty after the scan: %s left behind", de.Name())
	}
	if after := treeOf(t, e.sentinel); strings.Join(after, "\n") != strings.Join(e.before, "\n") {
		t.Errorf("sentinel tree changed:\nbefore:\n%s\nafter:\n%s", strings.Join(e.before, "\n"), strings.Join(after, "\n"))
	}
	if hl := treeOf(t, e.home); len(hl) > 1 {
		t.Errorf("HOME written: %v", hl)
	}
	for _, c := range e.canaries {
		if _, err := os.Lstat(c); err == nil {
			t.Errorf("canary %s was created: the scan wrote outside its directories", c)
			os.RemoveAll(c)
		}
	}
	for p, s := range e.host {
		if now := fileState(p); now != s {
			t.Errorf("host file %s changed: %s -> %s", p, s, now)
		}
	}
}

// ---------------------------------------------------------------------------
// In-process scans through the real path.

// scanOutcome is what one in-process scan produced.
type scanOutcome struct {
	res      *model.Result
	err      error
	warnings []string // scan.Build's warnings (no clamd …)
	wall     time.Duration
}

// watchdog runs scan under a context with deadline. A scan still running
// 15 s after its deadline fails the test with every goroutine's stack; a
// panic fails it too.
func watchdog(t *testing.T, what string, deadline time.Duration, scan func(ctx context.Context) scanOutcome) scanOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	done := make(chan scanOutcome, 1)
	start := time.Now()
	go func() {
		var o scanOutcome
		defer func() {
			if r := recover(); r != nil {
				o.err = fmt.Errorf("PANIC: %v", r)
			}
			o.wall = time.Since(start)
			done <- o
		}()
		o = scan(ctx)
	}()
	var o scanOutcome
	select {
	case o = <-done:
	case <-time.After(deadline + 15*time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("HANG: scan of %s still running %s after its deadline\n%s", what, deadline, buf[:n])
	}
	if o.err != nil && strings.HasPrefix(o.err.Error(), "PANIC") {
		t.Fatalf("scan of %s: %v", what, o.err)
	}
	if errors.Is(o.err, context.DeadlineExceeded) || (o.err == nil && ctx.Err() != nil) {
		t.Fatalf("scan of %s hit its %s deadline (a hang, or unbounded work): %v", what, deadline, o.err)
	}
	return o
}

// scanImage opens archive with image.OpenFile and scans it with a Scanner
// from scan.Build with the given scanners, with TMPDIR and the cache in e,
// under watchdog. e.check runs afterwards.
func scanImage(t *testing.T, e *env, archive string, deadline time.Duration, scanners ...string) scanOutcome {
	t.Helper()
	t.Setenv("TMPDIR", e.tmp)
	t.Setenv("HOME", e.home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(e.home, ".cache"))
	o := watchdog(t, archive, deadline, func(ctx context.Context) (o scanOutcome) {
		c, err := cache.Open(e.cache)
		if err != nil {
			o.err = err
			return o
		}
		s, cleanup, warns, err := scan.Build(ctx, scan.BuildOptions{
			Kind: model.TargetImage, Scanners: scanners, Cache: c, Matcher: vulnmatch.Opener(vulnmatch.Options{Dir: e.db, MaxAge: -1}),
			TempDir: e.tmp, Quiet: true, Version: "hostile-test",
		})
		if err != nil {
			o.err = fmt.Errorf("build: %w", err)
			return o
		}
		defer cleanup()
		o.warnings = warns
		img, err := image.OpenFile(ctx, archive, image.WithWorkDir(e.tmp))
		if err != nil {
			o.err = err
			return o
		}
		defer img.Close()
		o.res, o.err = s.ScanImage(ctx, img.Image(), scan.ImageTarget{Name: img.Name(), Digest: img.Digest(), RepoTags: img.RepoTags(), Platform: img.Platform()})
		return o
	})
	e.check(t)
	return o
}

// scanDir scans a directory tree in process (kind rootfs or fs) under
// watchdog; e.check runs afterwards.
func scanDir(t *testing.T, e *env, dir, kind string, scanners ...string) scanOutcome {
	t.Helper()
	t.Setenv("TMPDIR", e.tmp)
	t.Setenv("HOME", e.home)
	o := watchdog(t, dir, fastDeadline, func(ctx context.Context) (o scanOutcome) {
		s, cleanup, warns, err := scan.Build(ctx, scan.BuildOptions{Kind: kind, Scanners: scanners, TempDir: e.tmp, Quiet: true,
			Matcher: vulnmatch.Opener(vulnmatch.Options{Dir: e.db, MaxAge: -1})})
		if err != nil {
			o.err = fmt.Errorf("build: %w", err)
			return o
		}
		defer cleanup()
		o.warnings = warns
		o.res, o.err = s.ScanDir(ctx, dir, kind)
		return o
	})
	e.check(t)
	return o
}

// ---------------------------------------------------------------------------
// The mamori binary, for process-level properties.

var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// mamoriBin returns the path to a mamori binary built from this tree once
// per test binary ($MAMORI_BIN, when set, is used instead).
func mamoriBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAMORI_BIN"); p != "" {
		return p
	}
	bin.once.Do(func() {
		// go test puts $GOROOT/bin first on the PATH of the test binary.
		goTool, err := exec.LookPath("go")
		if err != nil {
			bin.err = err
			return
		}
		bin.dir, bin.err = os.MkdirTemp(origTmp, "mamori-hostile-bin-")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "mamori")
		cmd := exec.Command(goTool, "build", "-o", bin.path, "mamori/cmd/mamori")
		cmd.Env = origEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			bin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatalf("build mamori: %v", bin.err)
	}
	return bin.path
}

// procRun is one run of the binary.
type procRun struct {
	stdout, stderr []byte
	code           int
	maxRSS         int64 // bytes, from GNU time (%M)
	wall           time.Duration
}

// runMamori runs the mamori binary with args in e (cwd inside the sentinel
// tree, TMPDIR, HOME and XDG dirs fresh), killing it at deadline. The
// global flags --cache-dir and --db-dir are added.
func runMamori(t *testing.T, e *env, deadline time.Duration, args ...string) procRun {
	t.Helper()
	binPath := mamoriBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	full := append([]string{"--cache-dir", e.cache, "--db-dir", e.db}, args...)
	// Peak RSS comes from GNU time, which forks mamori itself: rusage from
	// our own wait4 would be wrong, since Linux carries the parent's RSS
	// high-water mark into a vfork+exec'd child (the test process, after
	// in-process scans, is bigger than mamori).
	rssFile := filepath.Join(e.root, fmt.Sprintf("rss-%d", time.Now().UnixNano()))
	name, cargs := binPath, full
	timeTool, terr := exec.LookPath("/usr/bin/time")
	if terr == nil {
		name, cargs = timeTool, append([]string{"-f", "%M", "-o", rssFile, binPath}, full...)
	}
	cmd := exec.CommandContext(ctx, name, cargs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Dir = e.cwd
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + e.home,
		"TMPDIR=" + e.tmp,
		"XDG_CACHE_HOME=" + filepath.Join(e.home, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.home, ".config"),
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := procRun{stdout: so.Bytes(), stderr: se.Bytes(), wall: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("HANG: mamori %s killed after %s\nstderr: %s", strings.Join(args, " "), deadline, tail(se.Bytes()))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run mamori: %v", err)
	}
	if terr == nil {
		b, err := os.ReadFile(rssFile)
		if err != nil {
			t.Fatalf("read GNU time output: %v", err)
		}
		os.Remove(rssFile)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if strings.Contains(string(b), "terminated by signal") {
			t.Fatalf("mamori %s: %s\nstderr: %s", strings.Join(args, " "), b, tail(se.Bytes()))
		}
		var kib int64
		if _, err := fmt.Sscan(lines[len(lines)-1], &kib); err != nil {
			t.Fatalf("parse GNU time output %q: %v", b, err)
		}
		r.maxRSS = kib << 10
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10 // an upper bound (see above)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("mamori died of signal %v\nstderr: %s", ws.Signal(), tail(se.Bytes()))
	}
	if bytes.Contains(se.Bytes(), []byte("panic:")) || bytes.Contains(se.Bytes(), []byte("goroutine ")) {
		t.Fatalf("mamori panicked:\n%s", tail(se.Bytes()))
	}
	e.check(t)
	return r
}

func tail(b []byte) string {
	const n = 4000
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}

// decodeResult parses mamori's JSON output.
func decodeResult(t testing.TB, b []byte) *model.Result {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("output is not valid JSON: %s", tail(b))
	}
	var r model.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode result: %v", err)
	}
	return &r
}

// ---------------------------------------------------------------------------
// Assertions on results.

// hasPackage reports whether res lists a package named name.
func hasPackage(res *model.Result, name string) bool {
	for _, p := range res.Inventory.Packages {
		if p.Name == name {
			return true
		}
	}
	return false
}

// warningWith returns the first warning that contains every substring.
func warningWith(res *model.Result, subs ...string) (string, bool) {
	for _, w := range res.Warnings {
		ok := true
		for _, s := range subs {
			if !strings.Contains(w, s) {
				ok = false
				break
			}
		}
		if ok {
			return w, true
		}
	}
	return "", false
}

func mustWarn(t testing.TB, res *model.Result, subs ...string) {
	t.Helper()
	if _, ok := warningWith(res, subs...); !ok {
		t.Errorf("no warning containing %q; warnings:\n  %s", subs, strings.Join(res.Warnings, "\n  "))
	}
}

func mustPackage(t testing.TB, res *model.Result, names ...string) {
	t.Helper()
	for _, n := range names {
		if !hasPackage(res, n) {
			var have []string
			for _, p := range res.Inventory.Packages {
				have = append(have, p.Name+"@"+p.Version)
			}
			t.Errorf("package %s not reported; have %v", n, have)
		}
	}
}

// mustMatchAdvisory asserts that the planted npm package was matched to the
// test advisory: the inventory made it through the vulnerability step.
func mustMatchAdvisory(t testing.TB, res *model.Result) {
	t.Helper()
	for _, v := range res.Vulnerabilities {
		if v.ID == "GHSA-host-ile0-test" {
			return
		}
	}
	t.Errorf("the planted hostile-good@1.0.0 was not matched to GHSA-host-ile0-test (%d vulnerabilities)", len(res.Vulnerabilities))
}

// goodEntries are ordinary packages every hostile image also carries, so a
// case can show that the rest of the image is still inventoried.
func goodEntries() []entry {
	return []entry{
		reg("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"),
		reg("usr/lib/node_modules/hostile-good/package.json", `{"name":"hostile-good","version":"1.0.0","license":"MIT"}`),
		reg("usr/lib/python3/dist-packages/goodpy-1.2.3.dist-info/METADATA", "Metadata-Version: 2.1\nName: goodpy\nVersion: 1.2.3\n"),
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// recorder is a testing.TB that records Errorf calls, for testing the
// harness's own checks.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The harness must catch what it is there to catch: a file left in TMPDIR,
// a write into the sentinel tree, a created canary, a written HOME.
func TestHarnessDetectsWrites(t *testing.T) {
	e := newEnv(t)
	c := e.canary(t)
	clean := &recorder{TB: t}
	e.check(clean)
	if len(clean.errs) != 0 {
		t.Fatalf("a fresh environment fails its check: %v", clean.errs)
	}
	writes := map[string]string{
		filepath.Join(e.tmp, "mamori-spill-1"):                   "TMPDIR",
		filepath.Join(e.sentinel, "etc", "shadow"):               "sentinel",
		filepath.Join(e.sentinel, "a", "b", "escaped"):           "sentinel",
		filepath.Join(e.home, ".cache", "mamori", "layers", "x"): "HOME",
		c: "canary",
	}
	for p := range writes {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Remove(c)
	rec := &recorder{TB: t}
	e.check(rec)
	all := strings.Join(rec.errs, "\n")
	for _, want := range []string{"TMPDIR not empty", "sentinel tree changed", "HOME written", "canary " + c} {
		if !strings.Contains(all, want) {
			t.Errorf("check missed %q; it reported:\n%s", want, all)
		}
	}
}
