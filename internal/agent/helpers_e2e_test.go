package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
)

// repoRoot is the module root (this file is internal/agent/helpers_e2e_test.go).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// goBuild builds a package of this module into dir (static, stripped) and
// returns the binary's path. Builds are cached by the go command.
func goBuild(t testing.TB, pkg, out string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// testServer is a real `mamori server` on loopback, started and stopped by
// the test (an outage is a SIGKILL and a start on the same data dir).
type testServer struct {
	bin, dir, addr, admin string
	cmd                   *exec.Cmd
	log                   *bytes.Buffer
	mu                    sync.Mutex
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startServer(t testing.TB, bin string) *testServer {
	t.Helper()
	s := &testServer{bin: bin, dir: t.TempDir(), addr: freePort(t), admin: "mamori_admin_" + newEventID()}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) url() string { return "http://" + s.addr }

func (s *testServer) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "server", "--insecure-http", "--listen", s.addr, "--data-dir", s.dir,
		"--db-dir", filepath.Join(s.dir, "db"), "--auth-failures-per-minute", "0")
	s.cmd.Env = append(os.Environ(), "MAMORI_BOOTSTRAP_TOKEN="+s.admin)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url() + api.PathHealth)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mamori server did not start: %v\n%s", err, s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill stops the server abruptly (an outage).
func (s *testServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *testServer) stop() { s.kill() }

// post sends an admin request and decodes the answer into out.
func (s *testServer) post(t testing.TB, path string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, s.url()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// token creates a machine token of role (agent, cluster ...), bound to
// cluster when not empty.
func (s *testServer) token(t testing.TB, name, role, cluster string) string {
	t.Helper()
	var tc api.TokenCreated
	s.post(t, api.PathTokens, api.TokenRequest{Name: name, Role: role, Cluster: cluster}, &tc)
	return tc.Token
}

// admin returns a client with the admin token.
func (s *testServer) adminClient(t testing.TB) *client.Client {
	c, err := client.New(s.url(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// events lists every event the server stored for node (all pages).
func (s *testServer) events(t testing.TB, node string) []api.EventRecord {
	t.Helper()
	c, err := client.New(s.url(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.EventRecord
	q := url.Values{api.EventParamNode: {node}, api.EventParamLimit: {"1000"}}
	for {
		p, err := c.ListEvents(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		q.Set(api.EventParamCursor, p.NextCursor)
	}
}

// eventLog reads the agent's JSON lines file as it grows.
type eventLog struct {
	path string
	mu   sync.Mutex
	off  int64
	all  []model.Event
	bad  []string
}

func (l *eventLog) refresh() {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil { // a partial line waits for the next refresh
			return
		}
		l.off += int64(len(line))
		var e model.Event
		if err := json.Unmarshal(line, &e); err != nil {
			l.bad = append(l.bad, fmt.Sprintf("%v: %.300s", err, line))
			continue
		}
		l.all = append(l.all, e)
	}
}

// find returns the events matching f.
func (l *eventLog) find(f func(*model.Event) bool) []model.Event {
	l.refresh()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []model.Event
	for i := range l.all {
		if f(&l.all[i]) {
			out = append(out, l.all[i])
		}
	}
	return out
}

// wait waits until f matches an event (or fails the test after timeout).
func (l *eventLog) wait(t testing.TB, timeout time.Duration, what string, f func(*model.Event) bool) model.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := l.find(f); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func inContainer(id string) func(*model.Event) bool {
	return func(e *model.Event) bool { return e.Container != nil && e.Container.ID == id }
}

func ruleIn(rule, id string) func(*model.Event) bool {
	return func(e *model.Event) bool { return e.Rule.ID == rule && e.Container != nil && e.Container.ID == id }
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return strings.TrimSpace(s)
}
