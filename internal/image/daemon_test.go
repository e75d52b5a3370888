package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeEngine implements the two Docker Engine API endpoints mamori uses,
// GET /images/{name}/json and GET /images/{name}/get, on a unix socket.
// It checks the HTTP client (paths, query, error handling), not Docker.
type fakeEngine struct {
	mu       sync.Mutex
	archives map[string][]byte // name -> docker-archive bytes
	inspect  map[string]dockerInspect
	truncate bool
	platform []string
}

func startFakeEngine(t *testing.T, e *fakeEngine) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mdkr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return sock
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/images/")
	notFound := func(n string) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"message":"No such image: %s"}`, n)
	}
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/json"):
		n := strings.TrimSuffix(p, "/json")
		di, ok := e.inspect[n]
		if !ok {
			notFound(n)
			return
		}
		json.NewEncoder(w).Encode(di)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/get"):
		n := strings.TrimSuffix(p, "/get")
		e.platform = append(e.platform, r.URL.Query().Get("platform"))
		b, ok := e.archives[n]
		if !ok {
			notFound(n)
			return
		}
		if e.truncate {
			b = b[:len(b)/2]
		}
		w.Write(b)
	default:
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
	}
}

func TestDockerDaemonProtocol(t *testing.T) {
	src := testImage(t, "linux/amd64", map[string]string{"etc/from": "daemon"})
	p := filepath.Join(t.TempDir(), "save.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{"example.com/ns/app:1": src})
	archive, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := src.ConfigName()
	e := &fakeEngine{
		archives: map[string][]byte{"example.com/ns/app:1": archive},
		inspect: map[string]dockerInspect{"example.com/ns/app:1": {
			ID: cfgName.String(), RepoTags: []string{"example.com/ns/app:1"},
			RepoDigests: []string{"example.com/ns/app@sha256:" + strings.Repeat("ab", 32)},
		}},
	}
	sock := startFakeEngine(t, e)
	work := t.TempDir()
	ctx := context.Background()

	img, err := Open(ctx, "docker:example.com/ns/app:1", WithDockerHost("unix://"+sock), WithWorkDir(work))
	if err != nil {
		t.Fatal(err)
	}
	if img.Source() != SourceDocker || img.ID() != cfgName.String() {
		t.Errorf("source %s id %s", img.Source(), img.ID())
	}
	if rd := img.RepoDigests(); len(rd) != 1 || !strings.HasPrefix(rd[0], "example.com/ns/app@sha256:") {
		t.Errorf("RepoDigests %v", rd)
	}
	if got := readLayerFiles(t, img.Image())["etc/from"]; got != "daemon" {
		t.Errorf("content %q", got)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 1 {
		t.Errorf("%d files in work dir while open", len(ents))
	}
	img.Close()
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("%d files in work dir after Close", len(ents))
	}
	if e.platform[0] != "" {
		t.Errorf("platform sent without WithPlatform: %q", e.platform[0])
	}

	// WithPlatform is passed on as the JSON platform parameter.
	img, err = Open(ctx, "docker:example.com/ns/app:1", WithDockerHost(sock), WithWorkDir(work), WithPlatform("linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	img.Close()
	if last := e.platform[len(e.platform)-1]; !strings.Contains(last, `"architecture":"amd64"`) {
		t.Errorf("platform parameter %q", last)
	}

	// Auto mode asks the daemon first when its socket exists.
	none := filepath.Join(t.TempDir(), "none.sock")
	img, err = Open(ctx, "example.com/ns/app:1", WithDockerHost(sock), WithContainerdAddress(none), WithWorkDir(work))
	if err != nil {
		t.Fatal(err)
	}
	if img.Source() != SourceDocker {
		t.Errorf("auto source %s", img.Source())
	}
	img.Close()

	_, err = Open(ctx, "docker:absent:1", WithDockerHost(sock), WithWorkDir(work))
	wantErr(t, err, ErrNotFound, "No such image")

	// A truncated export fails and leaves nothing behind.
	e.mu.Lock()
	e.truncate = true
	e.mu.Unlock()
	_, err = Open(ctx, "docker:example.com/ns/app:1", WithDockerHost(sock), WithWorkDir(work))
	if err == nil {
		t.Fatal("truncated export opened")
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("%d files in work dir after failed export", len(ents))
	}
	// The export cap.
	e.mu.Lock()
	e.truncate = false
	e.mu.Unlock()
	_, err = Open(ctx, "docker:example.com/ns/app:1", WithDockerHost(sock), WithWorkDir(work), WithMaxExportSize(1000))
	wantErr(t, err, ErrTooLarge, "")

	_, err = Open(ctx, "docker:x", WithDockerHost(none))
	wantErr(t, err, ErrUnavailable, "")
}

// TestDockerDaemonReal runs a real dockerd (Debian package docker.io), loads
// an image into it and opens it through the Engine API. It needs root and
// MAMORI_TEST_DOCKER=1.
func TestDockerDaemonReal(t *testing.T) {
	if os.Getenv("MAMORI_TEST_DOCKER") != "1" {
		t.Skip("set MAMORI_TEST_DOCKER=1 (root, apt-get install docker.io) to test against a real dockerd")
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatal("MAMORI_TEST_DOCKER=1 but no dockerd: apt-get install docker.io")
	}
	if os.Geteuid() != 0 {
		t.Fatal("MAMORI_TEST_DOCKER=1 needs root to run dockerd")
	}
	dir, err := os.MkdirTemp("", "mdk") // short: unix socket paths are capped at 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd) })

	c := newDockerClient(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, ctx, filepath.Join(dir, "dockerd.log"), func() bool {
		resp, err := c.get(ctx, "/_ping", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})

	src := testImage(t, "linux/amd64", map[string]string{"etc/real": "dockerd"})
	p := filepath.Join(dir, "load.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{"mamori-test/real:1": src})
	body, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/load?quiet=1", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("load: %s", resp.Status)
	}

	img, err := Open(ctx, "docker:mamori-test/real:1", WithDockerHost(sock), WithWorkDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if got := readLayerFiles(t, img.Image())["etc/real"]; got != "dockerd" {
		t.Errorf("content %q", got)
	}
	want, _ := src.ConfigName()
	if img.ID() != want.String() {
		t.Errorf("ID %s want %s", img.ID(), want)
	}
	if rt := img.RepoTags(); len(rt) != 1 || rt[0] != "mamori-test/real:1" {
		t.Errorf("RepoTags %v", rt)
	}
	info, err := LayerInfo(img.Image())
	if err != nil || len(info) != 1 || info[0].CreatedBy != "RUN step 0" {
		t.Errorf("LayerInfo %+v %v", info, err)
	}
	_, err = Open(ctx, "docker:mamori-test/absent:1", WithDockerHost(sock), WithWorkDir(dir))
	wantErr(t, err, ErrNotFound, "")
}

// stopProcess ends a daemon the test started: SIGTERM to its process group,
// then SIGKILL after 20 s.
func stopProcess(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// waitFor polls ready until it is true or ctx ends (then the daemon's log is
// shown).
func waitFor(t *testing.T, ctx context.Context, logPath string, ready func() bool) {
	t.Helper()
	for !ready() {
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(logPath)
			t.Fatalf("daemon did not come up: %v\n%s", ctx.Err(), b)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
