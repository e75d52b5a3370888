package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/testnet"
)

// The e2e harness: the real mamori binary (server and agent), a network
// namespace joined to the host by a veth pair the test creates (TEST-NET-1
// addresses: nothing leaves the host), and the test's own mounts.

// repoRoot is the module root (this file is internal/agent/modules/host/...).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "..", "..")
}

// buildMamori builds ./cmd/mamori into dir.
func buildMamori(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "mamori")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/mamori")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mamori: %v\n%s", err, b)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func runCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns is a network namespace the test made, joined to the host's by a
// veth pair: hostAddr on the host's end, peerAddr in the namespace.
type netns struct {
	name string
	f    *os.File
}

// The veth's /30 in TEST-NET-2 (RFC 5737), a random one of its 64: this
// machine's own interface may be on TEST-NET-1, so the host's end must not
// be (a second 192.0.2.0/24 route would take its traffic).
var hostAddr, peerAddr = func() (string, string) {
	b := make([]byte, 1)
	rand.Read(b)
	base := 4 * (int(b[0]) % 64)
	return fmt.Sprintf("198.51.100.%d", base+1), fmt.Sprintf("198.51.100.%d", base+2)
}()

func newNetns(t testing.TB) *netns {
	t.Helper()
	id := randHex(3)
	name := "mamori-e2e-" + id
	runCmd(t, "ip", "netns", "add", name)
	n := &netns{name: name}
	t.Cleanup(func() {
		if n.f != nil {
			n.f.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	n.f = f
	hostIf, peerIf := "mmh"+id, "mmp"+id
	runCmd(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	runCmd(t, "ip", "addr", "add", hostAddr+"/30", "dev", hostIf)
	runCmd(t, "ip", "link", "set", hostIf, "up")
	runCmd(t, "ip", "-n", name, "addr", "add", peerAddr+"/30", "dev", peerIf)
	runCmd(t, "ip", "-n", name, "link", "set", peerIf, "up")
	runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
	return n
}

// do runs f on an OS thread switched into the namespace (sockets f makes
// belong to it).
func (n *netns) do(f func() error) error { return testnet.DoFile(n.f, f) }

// listen opens a TCP listener in the namespace that greets with "hi".
func (n *netns) listen(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
}

// reach dials addr from the host's namespace and reads the greeting.
func reach(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil {
		return err
	}
	return nil
}

// testServer is a real `mamori server` (TLS, its self-signed certificate
// trusted through its CA file) on the host's end of the veth.
type testServer struct {
	url, dir, admin, ca string
	cmd                 *exec.Cmd
	log                 *syncBuffer
	c                   *client.Client
}

func startServer(t testing.TB, bin string) *testServer {
	t.Helper()
	s := &testServer{dir: t.TempDir(), admin: "mmr_" + randHex(24), log: &syncBuffer{}}
	port := freePort(t, hostAddr)
	s.url = fmt.Sprintf("https://%s:%d", hostAddr, port)
	s.ca = filepath.Join(s.dir, "tls-cert.pem")
	s.cmd = exec.Command(bin, "server", "--listen", fmt.Sprintf("%s:%d", hostAddr, port), "--data-dir", s.dir,
		"--db-dir", filepath.Join(s.dir, "db"), "--auth-failures-per-minute", "0")
	s.cmd.Env = append(os.Environ(), "MAMORI_BOOTSTRAP_TOKEN="+s.admin)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", tailLines(s.log.String(), 60))
		}
	})
	waitFor(t, "the server", 60*time.Second, func() bool {
		if _, err := os.Stat(s.ca); err != nil {
			return false
		}
		c, err := client.New(s.url, s.admin, client.WithCAFile(s.ca), client.WithRetries(1, 0))
		if err != nil {
			return false
		}
		if err := c.CheckConnection(context.Background()); err != nil {
			return false
		}
		s.c = c
		return true
	})
	return s
}

func freePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// do sends an admin request (JSON) and decodes the answer into out.
func (s *testServer) do(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	hc := httpClient(t, s.ca)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(bytes.Buffer)
	b.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v %s", method, path, err, b)
		}
	}
}

var (
	hcMu    sync.Mutex
	hcCache = map[string]*http.Client{}
)

func httpClient(t testing.TB, ca string) *http.Client {
	t.Helper()
	hcMu.Lock()
	defer hcMu.Unlock()
	if c, ok := hcCache[ca]; ok {
		return c
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", ca)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	hcCache[ca] = hc
	return hc
}

// token makes a machine token (role agent) bound to cluster ("" for none).
func (s *testServer) token(t testing.TB, name, cluster string) string {
	t.Helper()
	var tc api.TokenCreated
	s.do(t, http.MethodPost, api.PathTokens, api.TokenRequest{Name: name, Role: "agent", Cluster: cluster}, &tc)
	return tc.Token
}

// events lists the host events of a module for node (all pages).
func (s *testServer) events(t testing.TB, node, module string) []api.EventRecord {
	t.Helper()
	var out []api.EventRecord
	q := url.Values{api.EventParamNode: {node}, api.EventParamSource: {"host"}, api.EventParamLimit: {"1000"}}
	if module != "" {
		q.Set(api.EventParamModule, module)
	}
	for {
		p, err := s.c.ListEvents(context.Background(), q)
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

// waitEvent waits until the server holds an event of module for node
// that pred accepts.
func (s *testServer) waitEvent(t testing.TB, node, module, what string, d time.Duration, pred func(api.EventRecord) bool) api.EventRecord {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := s.events(t, node, module)
		for _, e := range evs {
			if pred(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			for _, e := range evs {
				t.Logf("%s event: %s %s %v %+v", module, e.Event.Rule.ID, e.Event.Message, e.Event.Details, e.Event.Change)
			}
			t.Fatalf("timed out after %s waiting for %s (%d %s events)", d, what, len(evs), module)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agentProc is a `mamori agent` process.
type agentProc struct {
	node  string
	dir   string
	cmd   *exec.Cmd
	log   *fileLog
	stats string // GET http://<stats>/stats, "" without
	done  chan struct{}
}

// startAgent runs `mamori agent` with a configuration file (the runtime
// module off: these are the host modules' tests), in netns when given.
func startAgent(t testing.TB, bin, node string, srv *testServer, token string, ns *netns, withStats bool) *agentProc {
	t.Helper()
	a := &agentProc{node: node, dir: t.TempDir(), done: make(chan struct{})}
	tok := filepath.Join(a.dir, "token")
	if err := os.WriteFile(tok, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("node: %s\nserver: {url: %q, tokenFile: %q, caFile: %q}\nspool: {dir: %q}\nevents: {file: %q}\nmodules: {runtime: {enabled: false}}\n",
		node, srv.url, tok, srv.ca, filepath.Join(a.dir, "state", "spool"), filepath.Join(a.dir, "events.jsonl"))
	if withStats {
		a.stats = fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		cfg += fmt.Sprintf("statsListen: %q\n", a.stats)
	}
	cfgFile := filepath.Join(a.dir, "agent.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "agent", "--config", cfgFile}
	if ns != nil {
		args = append([]string{"ip", "netns", "exec", ns.name}, args...)
	}
	a.cmd = exec.Command(args[0], args[1:]...)
	// A file, not a pipe: a child of the agent must not hold Wait.
	lf, err := os.Create(filepath.Join(a.dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a.log = &fileLog{path: lf.Name()}
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			t.Logf("agent %s log:\n%s", node, tailLines(a.log.String(), 120))
		}
	})
	return a
}

// stop ends the agent (SIGTERM, then SIGKILL after 20 s).
func (a *agentProc) stop(t testing.TB) {
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Errorf("agent %s did not stop on SIGTERM", a.node)
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	}
}

// pid is the agent's process (for `ip netns exec`, its child).
func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// moduleStats reads one module's stats from the stats endpoint.
func (a *agentProc) moduleStats(t testing.TB, module string, out any) bool {
	t.Helper()
	resp, err := http.Get("http://" + a.stats + "/stats")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var all struct {
		Modules map[string]json.RawMessage `json:"modules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return false
	}
	raw, ok := all.Modules[module]
	if !ok {
		return false
	}
	return json.Unmarshal(raw, out) == nil
}

// memory reads a process's VmRSS and VmHWM (KiB).
func memory(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
