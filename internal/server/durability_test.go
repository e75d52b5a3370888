package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/store"
)

// envChild makes the test binary run a server instead of tests (the
// fallback when cmd/mamori has no server command yet).
const envChild = "MAMORI_SERVER_TEST_CHILD"

// runChildIfAsked runs `mamori server` semantics in this process when the
// test binary was started as a child server; it never returns then.
func runChildIfAsked() {
	if os.Getenv(envChild) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := New(ctx, Config{
		Listen: os.Getenv("CHILD_LISTEN"), DataDir: os.Getenv("CHILD_DATA_DIR"), DB: os.Getenv("CHILD_DB"),
		InsecureHTTP: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Version: "child",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serverBinary returns a command line starting a real server process:
// `mamori server` built from cmd/mamori when it has the server command,
// else this test binary in child mode.
func serverBinary(t *testing.T) func(listen, dataDir, db string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mamori")
	build := exec.Command("go", "build", "-o", bin, "mamori/cmd/mamori")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err == nil {
		if err := exec.Command(bin, "server", "--help").Run(); err == nil {
			t.Logf("server process: %s server (built from cmd/mamori)", bin)
			return func(listen, dataDir, db string) *exec.Cmd {
				args := []string{"server", "--insecure-http", "--listen", listen, "--data-dir", dataDir, "--db-dir", filepath.Join(dataDir, "nodb")}
				if db != "" {
					args = append(args, "--db", db)
				}
				return exec.Command(bin, args...)
			}
		}
		t.Logf("cmd/mamori has no server command yet: using the test binary as the server process")
	} else {
		t.Logf("cmd/mamori does not build (%v): using the test binary as the server process\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(listen, dataDir, db string) *exec.Cmd {
		c := exec.Command(self, "-test.run=^$")
		c.Env = append(os.Environ(), envChild+"=1", "CHILD_LISTEN="+listen, "CHILD_DATA_DIR="+dataDir, "CHILD_DB="+db)
		return c
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

func startProc(t *testing.T, mk func(string, string, string) *exec.Cmd, listen, dataDir, db, token string) *proc {
	t.Helper()
	p := &proc{cmd: mk(listen, dataDir, db), stderr: &syncBuffer{}, exited: make(chan struct{})}
	if p.cmd.Env == nil {
		p.cmd.Env = os.Environ()
	}
	p.cmd.Env = append(p.cmd.Env, EnvBootstrapToken+"="+token)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("server exited: %v\n%s", p.err, p.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("server did not become healthy\n%s", p.stderr.String())
	return nil
}

// bigResult is a scan result with n packages (about 250 bytes each), so
// that an ingest takes long enough for a kill to land in the middle.
func bigResult(i, n int) *model.Result {
	res := testResult(fmt.Sprintf("dur-%04d", i), digestN(500000+i), time.Now())
	for k := 0; k < n; k++ {
		res.Inventory.Packages = append(res.Inventory.Packages, model.Package{
			Name: fmt.Sprintf("pkg-%d-%d", i, k), Version: "1.0." + fmt.Sprint(k), Type: "npm", Ecosystem: "npm",
			PURL: fmt.Sprintf("pkg:npm/pkg-%d-%d@1.0.%d", i, k, k), Cataloger: "npm",
			Locations: []model.PackageLocation{{Path: fmt.Sprintf("srv/node_modules/pkg-%d-%d/package.json", i, k)}},
		})
	}
	return res
}

// TestDurabilityKill9 is the must-show: a real server process ingesting
// concurrently is killed with SIGKILL mid-stream and restarted; every scan
// it acknowledged is there, and retrying every upload creates no duplicate.
func TestDurabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	mk := serverBinary(t)
	engines(t, func(t *testing.T, dsn string) {
		token, err := auth.GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		dataDir := t.TempDir()
		listen := freePort(t)
		p := startProc(t, mk, listen, dataDir, dsn, token)

		const workers, perWorker, pkgs = 6, 40, 1500
		var (
			mu       sync.Mutex
			acked    = map[string]bool{}
			attempts = map[string]*model.Result{}
			wg       sync.WaitGroup
		)
		bodies := make([][]byte, workers*perWorker)
		results := make([]*model.Result, workers*perWorker)
		for i := range results {
			results[i] = bigResult(i, pkgs)
			bodies[i] = mustJSON(t, results[i])
		}
		hc := &http.Client{Timeout: 30 * time.Second}
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < perWorker; k++ {
					i := w*perWorker + k
					mu.Lock()
					attempts[results[i].ScanID] = results[i]
					mu.Unlock()
					req, _ := http.NewRequest("POST", "http://"+listen+"/api/v1/scans", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := hc.Do(req)
					if err != nil {
						return // the server is gone
					}
					var out struct {
						Status string `json:"status"`
					}
					derr := json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if derr == nil && (resp.StatusCode == 201 || resp.StatusCode == 200) {
						mu.Lock()
						acked[results[i].ScanID] = true
						mu.Unlock()
					}
				}
			}()
		}
		// Kill -9 once a fair number of ingests were acknowledged, while
		// the workers are still sending.
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 30 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		wg.Wait()
		mu.Lock()
		nAcked, nAttempted := len(acked), len(attempts)
		mu.Unlock()
		t.Logf("killed -9 after %d acknowledged of %d attempted ingests (%d packages each)", nAcked, nAttempted, pkgs)
		if nAcked == 0 || nAttempted == nAcked {
			t.Fatalf("the kill did not land mid-stream: %d acked of %d attempted", nAcked, nAttempted)
		}

		// Restart on the same data; every acknowledged scan must be there.
		p = startProc(t, mk, listen, dataDir, dsn, token)
		stored := listScanIDs(t, listen, token)
		for id := range acked {
			if stored[id] != 1 {
				t.Errorf("acknowledged scan %s: stored %d times after restart, want 1", id, stored[id])
			}
		}
		// Retry every attempted upload: acknowledged ones are duplicates,
		// and nothing is stored twice.
		dups := 0
		for id, res := range attempts {
			rec, err := upload(context.Background(), "http://"+listen, token, res, client.WithRetries(3, 100*time.Millisecond))
			if err != nil {
				t.Fatalf("retry %s: %v", id, err)
			}
			if acked[id] && !rec.Duplicate {
				t.Errorf("retry of acknowledged %s was not a duplicate: %+v", id, rec)
			}
			if rec.Duplicate {
				dups++
			}
		}
		stored = listScanIDs(t, listen, token)
		if len(stored) != nAttempted {
			t.Errorf("%d distinct scans stored, want %d", len(stored), nAttempted)
		}
		for id, n := range stored {
			if n != 1 {
				t.Errorf("scan %s stored %d times", id, n)
			}
		}
		t.Logf("after restart: all %d acknowledged scans present; %d retries answered duplicate; %d scans stored, none twice", nAcked, dups, len(stored))

		// Graceful shutdown on SIGTERM: exit status 0.
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("SIGTERM: exit %v\n%s", p.err, p.stderr.String())
			}
		case <-time.After(40 * time.Second):
			t.Errorf("no exit within 40 s of SIGTERM")
		}
		if strings.Contains(p.stderr.String(), token) {
			t.Errorf("the token appears in the server's stderr")
		}
	})
}

// listScanIDs returns how many times each scan ID is stored.
func listScanIDs(t *testing.T, listen, token string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for off := 0; ; off += store.MaxLimit {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/scans?limit=%d&offset=%d", listen, store.MaxLimit, off), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p store.ScanPage
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("list scans: %d %v", resp.StatusCode, err)
		}
		for _, s := range p.Scans {
			out[s.ScanID]++
		}
		if len(p.Scans) < store.MaxLimit {
			return out
		}
	}
}
