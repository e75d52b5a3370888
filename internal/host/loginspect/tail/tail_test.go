package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// collector records lines by sequence number ("seq=N ...") and notices.
type collector struct {
	mu      sync.Mutex
	seen    map[int]int
	other   []string
	notices []Notice
	cut     int
	lines   int
}

func newCollector() *collector { return &collector{seen: map[int]int{}} }

func (c *collector) Line(l Line) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines++
	if l.Cut {
		c.cut++
	}
	s := string(l.Data)
	if n, ok := seqOf(s); ok {
		c.seen[n]++
		return
	}
	c.other = append(c.other, s)
}

func seqOf(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "seq=")
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

func (c *collector) Notice(n Notice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notices = append(c.notices, n)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) noticeKinds() map[NoticeKind]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[NoticeKind]int{}
	for _, n := range c.notices {
		m[n.Kind]++
	}
	return m
}

// exactlyOnce checks that sequence numbers 0..n-1 were each seen once and nothing else.
func (c *collector) exactlyOnce(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing, dup []int
	for i := 0; i < n; i++ {
		switch c.seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 || len(dup) > 0 || len(c.other) > 0 || len(c.seen) != n {
		t.Fatalf("lines 0..%d: %d missing %v, %d read twice %v, %d unexpected %q, %d distinct",
			n-1, len(missing), head(missing), len(dup), head(dup), len(c.other), headS(c.other), len(c.seen))
	}
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func headS(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// line renders sequence number i with a random payload (some lines long enough to span reads).
func line(i int, r *rand.Rand) string {
	pad := r.IntN(200)
	if r.IntN(50) == 0 {
		pad = 70_000 + r.IntN(10_000) // spans two 64 KiB reads, under the 100 KiB max line
	}
	return fmt.Sprintf("seq=%d %s\n", i, strings.Repeat("x", pad))
}

// writer appends numbered lines to path, reopening it when asked (like a daemon's SIGHUP), and
// sometimes writing a line in two parts with a pause (a partial last line for the reader).
type writer struct {
	path   string
	reopen chan struct{}
	pause  sync.Mutex // held by a rotator that needs the writer still (copytruncate)
	n      atomic.Int64
}

func (w *writer) run(t *testing.T, ctx context.Context, total int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	for i := 0; i < total; i++ {
		select {
		case <-w.reopen:
			f.Close()
			if f, err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		s := line(i, r)
		w.pause.Lock()
		if r.IntN(10) == 0 {
			// Half a line, a pause, the rest: the reader sees a partial last line. The
			// rotator waits for the whole line (syslog daemons write whole lines).
			cut := 1 + r.IntN(len(s)-1)
			if _, err := f.WriteString(s[:cut]); err != nil {
				w.pause.Unlock()
				return err
			}
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
			s = s[cut:]
		}
		_, err := f.WriteString(s)
		w.pause.Unlock()
		if err != nil {
			return err
		}
		w.n.Store(int64(i + 1))
		if r.IntN(20) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func testOpts(dir string, extra ...Option) []Option {
	return append([]Option{
		WithPollInterval(3 * time.Millisecond), WithRescanInterval(10 * time.Millisecond),
		// A rotated file is drained until idle this long: generous, so that a writer descheduled
		// between the two halves of a line on a loaded machine still finishes it in the old file.
		WithRotateGrace(3 * time.Second), WithSaveInterval(20 * time.Millisecond),
		WithMaxLineBytes(100 << 10), WithState(filepath.Join(dir, "state.json")),
	}, extra...)
}

// runFollower runs a Follower until stop is called; stop returns Run's error.
func runFollower(t *testing.T, specs []Spec, h Handler, opts ...Option) (stop func() error) {
	t.Helper()
	f, err := New(specs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, h) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitUpTo polls cond until it holds or d passes; the caller checks the outcome.
func waitUpTo(d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// rotation is one way logs get rotated, run while the writer writes.
type rotation struct {
	name string
	// rotate rotates path (generation gen); w is the writer.
	rotate func(t *testing.T, w *writer, gen int)
}

func renameCreate(t *testing.T, w *writer, gen int) {
	// logrotate default ("create"): rename, create the new file, then signal the writer, which
	// writes a few more lines to the renamed file before it reopens.
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, gen)); err != nil {
		t.Error(err)
		return
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	f.Close()
	time.Sleep(2 * time.Millisecond)
	w.reopen <- struct{}{}
}

func renameNoCreate(t *testing.T, w *writer, gen int) {
	// nocreate: the writer creates the file when it reopens, some time later.
	waitUpTo(10*time.Second, func() bool { _, err := os.Stat(w.path); return err == nil })
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, gen)); err != nil {
		t.Error(err)
		return
	}
	time.Sleep(5 * time.Millisecond)
	w.reopen <- struct{}{}
}

func copyTruncate(t *testing.T, w *writer, gen int, compress bool) {
	// logrotate copytruncate; the writer is held still between the copy and the truncation so
	// that no line is lost by the rotation itself (the race logrotate documents).
	w.pause.Lock()
	defer w.pause.Unlock()
	data, err := os.ReadFile(w.path)
	if err != nil {
		t.Error(err)
		return
	}
	dst := fmt.Sprintf("%s.%d", w.path, gen)
	if compress {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		data, dst = b.Bytes(), dst+".gz"
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Truncate(w.path, 0); err != nil {
		t.Error(err)
	}
}

func TestRotationWithConcurrentWriter(t *testing.T) {
	const total = 6000
	rotations := []rotation{
		{"rename-create", renameCreate},
		{"rename-nocreate", renameNoCreate},
		{"copytruncate", func(t *testing.T, w *writer, gen int) { copyTruncate(t, w, gen, false) }},
		{"copytruncate-gzip", func(t *testing.T, w *writer, gen int) { copyTruncate(t, w, gen, true) }},
	}
	for i, rot := range rotations {
		t.Run(rot.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "auth.log")
			w := &writer{path: path, reopen: make(chan struct{}, 1)}
			c := newCollector()
			stop := runFollower(t, []Spec{{Pattern: path}}, c, testOpts(dir)...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			werr := make(chan error, 1)
			go func() { werr <- w.run(t, ctx, total, uint64(i)) }()
			// Rotate every ~300 lines while writing.
			gen := 1
			for next := int64(300); ; next += 300 {
				for w.n.Load() < next && w.n.Load() < total {
					time.Sleep(time.Millisecond)
				}
				if w.n.Load() >= total {
					break
				}
				rot.rotate(t, w, gen)
				gen++
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			waitUpTo(30*time.Second, func() bool { return c.count() >= total })
			time.Sleep(50 * time.Millisecond) // anything read twice would arrive now
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			c.exactlyOnce(t, total)
			kinds := c.noticeKinds()
			t.Logf("%d rotations, notices %v", gen-1, kinds)
			if kinds[NoticeTruncated] != 0 || kinds[NoticeLost] != 0 {
				t.Errorf("rotation reported as truncation or loss: %v", kinds)
			}
			if strings.HasPrefix(rot.name, "copytruncate") && kinds[NoticeCopyTruncated] == 0 {
				t.Errorf("no copytruncate notice: %v", kinds)
			}
			if strings.HasPrefix(rot.name, "rename") && kinds[NoticeRotated]+kinds[NoticeRemoved] == 0 {
				t.Errorf("no rotation notice: %v", kinds)
			}
		})
	}
}

// TestRestartResumesExactly stops and restarts the follower while the writer keeps writing and
// the log is rotated (rename, copytruncate) while it is stopped.
func TestRestartResumesExactly(t *testing.T) {
	for _, mode := range []string{"none", "rename-create", "copytruncate", "truncate-regrow"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secure")
			w := &writer{path: path, reopen: make(chan struct{}, 1)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const total = 3000
			release := make(chan struct{})
			werr := make(chan error, 1)
			c := newCollector()
			stop := runFollower(t, []Spec{{Pattern: path}}, c, testOpts(dir)...)
			go func() {
				// Write the first 1000 lines, wait, then the rest.
				w.pause.Lock()
				<-release
				w.pause.Unlock()
				werr <- w.run(t, ctx, total, 7)
			}()
			close(release)
			for w.n.Load() < 1000 {
				time.Sleep(time.Millisecond)
			}
			if err := stop(); err != nil { // stopped while the writer writes
				t.Fatal(err)
			}
			n := w.n.Load()
			switch mode {
			case "rename-create":
				renameCreate(t, w, 1)
			case "copytruncate":
				copyTruncate(t, w, 1, false)
			case "truncate-regrow":
				// copytruncate, then the file grows past the old offset before the restart:
				// only the changed head tells.
				copyTruncate(t, w, 1, false)
				for w.n.Load() < n+600 && w.n.Load() < total {
					time.Sleep(time.Millisecond)
				}
			}
			stop = runFollower(t, []Spec{{Pattern: path}}, c, testOpts(dir)...)
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			waitUpTo(30*time.Second, func() bool { return c.count() >= total })
			time.Sleep(50 * time.Millisecond)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			c.exactlyOnce(t, total)
			if k := c.noticeKinds(); k[NoticeLost] != 0 || k[NoticeTruncated] != 0 {
				t.Errorf("notices %v", k)
			}
		})
	}
}

// syncHandler delivers into a collector; the tests below drive Poll themselves.
func poller(t *testing.T, specs []Spec, opts ...Option) (*Follower, *collector) {
	t.Helper()
	f, err := New(specs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	return f, newCollector()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestPartialAndLongLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "messages")
	appendFile(t, path, "")
	f, c := poller(t, []Spec{{Pattern: path}}, WithMaxLineBytes(300))
	f.Poll(c)
	appendFile(t, path, "seq=0 first half")
	f.Poll(c)
	if c.lines != 0 {
		t.Fatalf("partial line delivered")
	}
	appendFile(t, path, " second half\r\nseq=1 "+strings.Repeat("y", 1000)+"\nseq=2 after\n")
	f.Poll(c)
	if c.lines != 3 || c.cut != 1 {
		t.Fatalf("lines %d cut %d, want 3 and 1", c.lines, c.cut)
	}
	c.exactlyOnce(t, 3)
	// An overlong line arriving in pieces is cut once and the rest skipped across polls.
	appendFile(t, path, "seq=3 "+strings.Repeat("z", 500))
	f.Poll(c)
	appendFile(t, path, strings.Repeat("z", 500))
	f.Poll(c)
	appendFile(t, path, "zzz\nseq=4 ok\n")
	f.Poll(c)
	c.exactlyOnce(t, 5)
	if c.cut != 2 {
		t.Fatalf("cut %d, want 2", c.cut)
	}
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTruncationWithoutCopyIsReported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendFile(t, path, "seq=0 a\nseq=1 b\n")
	f, c := poller(t, []Spec{{Pattern: path}})
	f.Poll(c)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	f.Poll(c)
	appendFile(t, path, "seq=2 c\n")
	f.Poll(c)
	c.exactlyOnce(t, 3)
	k := c.noticeKinds()
	if k[NoticeTruncated] != 1 {
		t.Fatalf("notices %v, want one truncation", k)
	}
	n := c.notices[0]
	if n.OldSize != 16 || n.NewSize != 0 {
		t.Fatalf("notice %+v, want 16 -> 0", n)
	}
	f.Stop()
}

func TestHeadRewrittenIsTruncation(t *testing.T) {
	// Truncated and rewritten past the old offset between two polls: the size alone does not
	// tell, the fingerprint does.
	dir := t.TempDir()
	path := filepath.Join(dir, "syslog")
	appendFile(t, path, "seq=0 a\n")
	f, c := poller(t, []Spec{{Pattern: path}})
	f.Poll(c)
	if err := os.WriteFile(path, []byte("seq=1 bbbbbbbbbbbbbbbbbbbbbb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Poll(c)
	c.exactlyOnce(t, 2)
	if k := c.noticeKinds(); k[NoticeTruncated] != 1 {
		t.Fatalf("notices %v", k)
	}
}

func TestInodeReuseIsNotTheOldFile(t *testing.T) {
	// The saved identity names an inode that now holds another file (same inode number, other
	// head): it is read from 0, not from the old offset.
	dir := t.TempDir()
	path := filepath.Join(dir, "kern.log")
	appendFile(t, path, "seq=0 "+strings.Repeat("a", 100)+"\n")
	f, c := poller(t, []Spec{{Pattern: path}}, WithState(filepath.Join(dir, "st")))
	f.Poll(c)
	f.Stop()
	// Same inode (rewritten in place), other content, larger than the old offset.
	if err := os.WriteFile(path, []byte("seq=1 "+strings.Repeat("b", 200)+"\nseq=2 c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f2, err := New([]Spec{{Pattern: path}}, WithState(filepath.Join(dir, "st")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.Start(); err != nil {
		t.Fatal(err)
	}
	f2.Poll(c)
	c.exactlyOnce(t, 3)
}

func TestStartAtEnd(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "a.log")
	appendFile(t, old, "history 1\nhistory 2\nhalf a li")
	st := filepath.Join(dir, "state")
	f, c := poller(t, []Spec{{Pattern: filepath.Join(dir, "*.log")}}, WithStartAtEnd(true), WithState(st), WithRescanInterval(time.Nanosecond))
	f.Poll(c)
	appendFile(t, old, "ne\nseq=0 new\n")
	appendFile(t, filepath.Join(dir, "b.log"), "seq=1 from a file created later\n")
	f.Poll(c)
	f.Poll(c)
	c.exactlyOnce(t, 2)
	f.Stop()
	// Once a state file exists, files new to it are read from their start.
	appendFile(t, filepath.Join(dir, "c.log"), "seq=2 while stopped\n")
	f2, err := New([]Spec{{Pattern: filepath.Join(dir, "*.log")}}, WithStartAtEnd(true), WithState(st))
	if err != nil {
		t.Fatal(err)
	}
	f2.Start()
	f2.Poll(c)
	c.exactlyOnce(t, 3)
}

func TestWatchOnly(t *testing.T) {
	dir := t.TempDir()
	wtmp := filepath.Join(dir, "wtmp")
	if err := os.WriteFile(wtmp, make([]byte, 384*3), 0o664); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "state")
	f, c := poller(t, []Spec{{Pattern: wtmp, WatchOnly: true}}, WithState(st))
	f.Poll(c)
	appendFile(t, wtmp, string(make([]byte, 384)))
	f.Poll(c)
	if len(c.notices) != 0 || c.lines != 0 {
		t.Fatalf("growth reported: %+v", c.notices)
	}
	if err := os.Truncate(wtmp, 0); err != nil {
		t.Fatal(err)
	}
	f.Poll(c)
	if len(c.notices) != 1 || c.notices[0].Kind != NoticeShrunk || c.notices[0].OldSize != 384*4 || c.notices[0].NewSize != 0 {
		t.Fatalf("notices %+v", c.notices)
	}
	appendFile(t, wtmp, string(make([]byte, 384)))
	f.Poll(c)
	f.Stop()
	// Cleared while stopped: reported at the next start.
	os.Truncate(wtmp, 0)
	f2, _ := New([]Spec{{Pattern: wtmp, WatchOnly: true}}, WithState(st))
	f2.Start()
	f2.Poll(c)
	if len(c.notices) != 2 || c.notices[1].Kind != NoticeShrunk || c.notices[1].OldSize != 384 {
		t.Fatalf("notices %+v", c.notices)
	}
	// Removed.
	os.Remove(wtmp)
	f2.Poll(c)
	if len(c.notices) != 3 || c.notices[2].Kind != NoticeRemoved {
		t.Fatalf("notices %+v", c.notices)
	}
}

func TestNotRegularFilesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "ok.log"), "seq=0 x\n")
	f, c := poller(t, []Spec{{Pattern: filepath.Join(dir, "*.log")}})
	done := make(chan struct{})
	go func() { f.Poll(c); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a FIFO blocked the poll")
	}
	c.exactlyOnce(t, 1)
	if s := f.Stats(); s.SkippedFiles != 2 || s.OpenFiles != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSymlinkToFollowedFileIsReadOnce(t *testing.T) {
	// /var/log/containers/*.log are symlinks to /var/log/pods/.../0.log.
	dir := t.TempDir()
	real := filepath.Join(dir, "pods", "0.log")
	os.MkdirAll(filepath.Dir(real), 0o755)
	appendFile(t, real, "seq=0 x\n")
	os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
	if err := os.Symlink(real, filepath.Join(dir, "containers", "c.log")); err != nil {
		t.Fatal(err)
	}
	f, c := poller(t, []Spec{{Pattern: filepath.Join(dir, "pods", "*.log")}, {Pattern: filepath.Join(dir, "containers", "*.log")}})
	f.Poll(c)
	c.exactlyOnce(t, 1)
}

func TestBadState(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "state")
	for _, data := range []string{"{", `{"version":9,"files":[]}`, `{"version":1,"files":[{"path":"rel","id":{},"fp":{"len":0,"sha256":"` + strings.Repeat("0", 64) + `"}}]}`,
		`{"version":1,"files":[{"path":"/x","fp":{"len":0,"sha256":"zz"}}]}`, `{"version":1,"bogus":1}`} {
		os.WriteFile(st, []byte(data), 0o600)
		f, err := New([]Spec{{Pattern: "/x"}}, WithState(st))
		if err != nil {
			t.Fatal(err)
		}
		err = f.Start()
		if !errors.Is(err, ErrState) {
			t.Errorf("state %q: err %v, want ErrState", data, err)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	for _, specs := range [][]Spec{nil, {{Pattern: "rel/path"}}, {{Pattern: "/var/log/[x"}}} {
		if _, err := New(specs); !errors.Is(err, ErrSpec) {
			t.Errorf("specs %v: err %v", specs, err)
		}
	}
	if _, err := New([]Spec{{Pattern: "/x"}}, WithMaxLineBytes(1)); !errors.Is(err, ErrSpec) {
		t.Error(err)
	}
}

func TestRotatedWhileStoppedAndRemovedIsLost(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	st := filepath.Join(dir, "state")
	appendFile(t, path, "seq=0 a\n")
	f, c := poller(t, []Spec{{Pattern: path}}, WithState(st))
	f.Poll(c)
	f.Stop()
	appendFile(t, path, "seq=1 unread, then rotated and deleted\n")
	appendFile(t, path+".new", "seq=2 new file\n") // created first: another inode
	os.Remove(path)
	os.Rename(path+".new", path)
	f2, _ := New([]Spec{{Pattern: path}}, WithState(st))
	f2.Start()
	f2.Poll(c)
	if c.seen[2] != 1 || c.seen[1] != 0 {
		t.Fatalf("seen %v", c.seen)
	}
	if k := c.noticeKinds(); k[NoticeLost] != 1 {
		t.Fatalf("notices %v, want one lost", k)
	}
}

func TestStateFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendFile(t, path, "seq=0 a\n")
	st := filepath.Join(dir, "state")
	f, c := poller(t, []Spec{{Pattern: path}}, WithState(st))
	f.Poll(c)
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(st)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v", fi.Mode())
	}
	data, _ := os.ReadFile(st)
	if !bytes.Contains(data, []byte(`"offset":8`)) {
		t.Fatalf("state %s", data)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tail-state") {
			t.Fatalf("temporary state file left: %s", e.Name())
		}
	}
}

func gzipFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(src)
	os.Chtimes(dst, fi.ModTime(), fi.ModTime()) // gzip keeps the mtime
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
}

// TestGenerationsBetweenPolls rotates more than once between two polls: the generation that
// was never at the path while the follower looked is found among the siblings; a compressed
// copy of a file already read is not read again.
func TestGenerationsBetweenPolls(t *testing.T) {
	for _, mode := range []string{"rename", "rename-compress-middle", "rename-compress-all", "nocreate", "copytruncate"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "0.log")
			appendFile(t, path, "seq=0 a\n")
			f, c := poller(t, []Spec{{Pattern: path}}, WithRotateGrace(time.Hour), WithRescanInterval(time.Nanosecond))
			f.Poll(c)
			appendFile(t, path, "seq=1 unread in the first generation\n")
			time.Sleep(10 * time.Millisecond) // distinct mtimes (the kernel's tick)
			switch mode {
			case "rename", "rename-compress-middle", "rename-compress-all", "nocreate":
				os.Rename(path, path+".1")
				if mode == "rename-compress-all" {
					gzipFile(t, path+".1", path+".1.gz") // a copy of a file the follower has open
				}
				appendFile(t, path, "seq=2 second generation, never seen at the path\n")
				time.Sleep(10 * time.Millisecond)
				os.Rename(path, path+".2")
				if mode != "rename" {
					gzipFile(t, path+".2", path+".2.gz")
				}
				if mode == "nocreate" {
					f.Poll(c) // the path is gone at this poll
				}
				appendFile(t, path, "seq=3 third\n")
			case "copytruncate":
				data, _ := os.ReadFile(path)
				os.WriteFile(path+".1", data, 0o644)
				os.Truncate(path, 0)
				appendFile(t, path, "seq=2 second generation, only in the second copy\n")
				time.Sleep(10 * time.Millisecond)
				data, _ = os.ReadFile(path)
				os.WriteFile(path+".2", data, 0o644)
				os.Truncate(path, 0)
				appendFile(t, path, "seq=3 third\n")
			}
			for range 3 {
				f.Poll(c)
			}
			c.exactlyOnce(t, 4)
			if s := f.Stats(); s.Generations != 1 {
				t.Fatalf("generations %d, want 1", s.Generations)
			}
		})
	}
}

// TestGenerationsWhileStopped: rotated twice while the follower was stopped.
func TestGenerationsWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	st := filepath.Join(dir, "state")
	appendFile(t, path, "seq=0 a\n")
	f, c := poller(t, []Spec{{Pattern: path}}, WithState(st))
	f.Poll(c)
	f.Stop()
	appendFile(t, path, "seq=1 b\n")
	time.Sleep(2 * time.Millisecond)
	os.Rename(path, path+".2")
	appendFile(t, path, "seq=2 c\n")
	time.Sleep(2 * time.Millisecond)
	os.Rename(path, path+".1")
	appendFile(t, path, "seq=3 d\n")
	f2, _ := New([]Spec{{Pattern: path}}, WithState(st))
	if err := f2.Start(); err != nil {
		t.Fatal(err)
	}
	f2.Poll(c)
	f2.Poll(c)
	c.exactlyOnce(t, 4)
}

// TestRemovedVersusRenamed: a deleted log is "removed", a log renamed away (rotation without
// create) is "rotated"; a watched binary log replaced by logrotate is not "shrunk".
func TestRemovedVersusRenamed(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, "seq=0 x\n")
	appendFile(t, b, "seq=1 y\n")
	wtmp := filepath.Join(dir, "wtmp")
	os.WriteFile(wtmp, make([]byte, 768), 0o664)
	f, c := poller(t, []Spec{{Pattern: a}, {Pattern: b}, {Pattern: wtmp, WatchOnly: true}})
	f.Poll(c)
	os.Remove(a)
	os.Rename(b, b+".1")
	os.Rename(wtmp, wtmp+".1")
	os.WriteFile(wtmp, nil, 0o664)
	f.Poll(c)
	f.Poll(c)
	byPath := map[string]NoticeKind{}
	for _, n := range c.notices {
		byPath[n.Path] = n.Kind
	}
	if byPath[a] != NoticeRemoved || byPath[b] != NoticeRotated || len(c.notices) != 2 {
		t.Fatalf("notices %+v", c.notices)
	}
	// The new wtmp is watched: clearing it is reported.
	appendFile(t, wtmp, string(make([]byte, 384)))
	f.Poll(c)
	os.Truncate(wtmp, 0)
	f.Poll(c)
	if n := c.notices[len(c.notices)-1]; n.Kind != NoticeShrunk || n.Path != wtmp || n.OldSize != 384 {
		t.Fatalf("notices %+v", c.notices)
	}
}

// TestCopytruncateWhileBlind: a truncation is seen while the file is empty, and the next
// generation is copied and truncated away before the follower reads a byte of it: it is read
// from its copy (the follower had no fingerprint to notice the second truncation with).
func TestCopytruncateWhileBlind(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "auth.log")
			appendFile(t, path, "seq=0 a\nseq=1 b\nseq=2 c\n")
			f, c := poller(t, []Spec{{Pattern: path}})
			f.Poll(c)
			w := &writer{path: path}
			copyTruncate(t, w, 1, gz) // generation 0 copied; the file is empty at the next poll
			f.Poll(c)
			time.Sleep(10 * time.Millisecond)
			appendFile(t, path, "seq=3 d\nseq=4 e\n")
			copyTruncate(t, w, 2, gz) // generation 1 only in the second copy
			appendFile(t, path, "seq=5 f\n")
			f.Poll(c)
			f.Poll(c)
			c.exactlyOnce(t, 6)
		})
	}
}
