package client

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
)

const testToken = "mmr_client-test-token-0123456789abcdefghijkl"

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		url, token string
		opts       []Option
		want       error
		msg        string
	}{
		{"https://s:8443", "", nil, ErrUnauthorized, "no token"},
		{"https://s:8443", "a b", nil, ErrUnauthorized, "white space"},
		{"http://192.0.2.1:8443", testToken, nil, ErrInsecureURL, "plain HTTP"},
		{"ftp://s", testToken, nil, nil, "scheme must be https"},
		{"https://u:p@s", testToken, nil, nil, "no credentials"},
		{"https://s", testToken, []Option{WithPinnedCertificate("abcd")}, nil, "64 hex digits"},
		{"https://s", testToken, []Option{WithRetries(0, 0)}, nil, "invalid retries"},
		{"https://s", testToken, []Option{WithCAFile(filepath.Join(t.TempDir(), "none.pem"))}, nil, "CA file"},
		{"https://s", testToken, []Option{WithHTTPClient(http.DefaultClient), WithCAFile("x")}, nil, "excludes"},
	} {
		_, err := New(c.url, c.token, c.opts...)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("New(%q): %v, want %v / %q", c.url, err, c.want, c.msg)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8443", "http://localhost:1", "http://[::1]:2", "https://mamori.example.com/prefix/"} {
		if _, err := New(u, testToken); err != nil {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}

// tlsServer serves h over TLS and returns its certificate's PEM file and SHA-256.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, string, string) {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	der := ts.Certificate().Raw
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return ts, f, hex.EncodeToString(sum[:])
}

func whoamiHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken || r.URL.Path != api.PathWhoami {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"bad token"}`)
			return
		}
		json.NewEncoder(w).Encode(api.Whoami{TokenID: 7, Name: "agent-1", Role: "agent", Via: "token", Cluster: "prod"})
	})
}

func TestTLS(t *testing.T) {
	ts, caFile, fp := tlsServer(t, whoamiHandler(t))
	ctx := context.Background()
	// System roots: the test certificate is not trusted, and that is not retried.
	c, err := New(ts.URL, testToken, WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Whoami(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	for name, opt := range map[string]Option{
		"ca file": WithCAFile(caFile),
		"pin":     WithPinnedCertificate(strings.ToUpper(fp[:2]) + ":" + fp[2:]),
	} {
		c, err := New(ts.URL, testToken, opt)
		if err != nil {
			t.Fatal(err)
		}
		w, err := c.Whoami(ctx)
		if err != nil || w.Name != "agent-1" || w.Cluster != "prod" {
			t.Errorf("%s: %+v %v", name, w, err)
		}
	}
	wrong := strings.Repeat("0", 64)
	c, err = New(ts.URL, testToken, WithPinnedCertificate(wrong), WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Whoami(ctx); err == nil || !strings.Contains(err.Error(), "not the pinned") {
		t.Errorf("wrong pin: %v", err)
	}
}

func TestErrorsCarryServerMessage(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case api.PathAgentHeartbeat:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"agent not registered"}`)
		case api.PathWhoami:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"role agent may not do this"}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "plain text\x00\xff problem")
		}
	}))
	defer ts.Close()
	c, err := New(ts.URL, testToken, WithRetries(5, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.AgentHeartbeat(ctx, api.AgentReport{Node: "n1"})
	var e *Error
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrRejected) || errors.Is(err, ErrUnauthorized) ||
		!errors.As(err, &e) || e.Message != "agent not registered" || e.StatusCode != 404 {
		t.Errorf("heartbeat: %v", err)
	}
	if _, err := c.Whoami(ctx); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "role agent may not do this") {
		t.Errorf("whoami: %v", err)
	}
	if _, err := c.AgentConfig(ctx); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "plain text") {
		t.Errorf("config: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3: a 4xx is never retried", n)
	}
}

func TestRetries(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"try later"}`)
		case n == 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			json.NewEncoder(w).Encode(api.Agent{ID: 1, Node: "n1"})
		}
	}))
	defer ts.Close()
	c, err := New(ts.URL, testToken, WithRetries(5, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a, err := c.RegisterAgent(context.Background(), api.AgentReport{Node: "n1"})
	if err != nil || a.Node != "n1" || calls.Load() != 3 {
		t.Fatalf("register: %+v %v after %d calls", a, err, calls.Load())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("took %v: Retry-After 1 not honoured", d)
	}

	// Out of attempts: the last error, with the server's message.
	calls.Store(0)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"error":"upstream down"}`)
	}))
	defer down.Close()
	c, _ = New(down.URL, testToken, WithRetries(3, time.Millisecond))
	if _, err := c.ClusterConfig(context.Background()); err == nil || !strings.Contains(err.Error(), "upstream down") || calls.Load() != 3 {
		t.Errorf("down: %v after %d calls", err, calls.Load())
	}

	// Cancelling the context stops the backoff at once.
	calls.Store(0)
	c, _ = New(down.URL, testToken, WithRetries(10, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start = time.Now()
	if _, err := c.ClusterHeartbeat(ctx, api.ClusterReport{}); !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled: %v after %v", err, time.Since(start))
	}

	// A connection error is retried too (then reported).
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	c, _ = New(url, testToken, WithRetries(2, time.Millisecond))
	if _, err := c.Whoami(context.Background()); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("closed: %v", err)
	}
}

// TestIngestEventsBatches: events are split into batches under the
// server's limits, compressed, and the answers summed with rejection
// indexes relative to the caller's slice.
func TestIngestEventsBatches(t *testing.T) {
	var batches []int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathEvents || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		var b api.EventBatch
		if err := json.NewDecoder(body).Decode(&b); err != nil {
			t.Error(err)
			return
		}
		batches = append(batches, len(b.Events))
		out := api.EventIngestResult{Rejected: []api.EventRejection{}}
		for i, e := range b.Events {
			switch {
			case strings.HasSuffix(e.ID, "7"):
				out.Rejected = append(out.Rejected, api.EventRejection{Index: i, ID: e.ID, Error: "bad"})
			case strings.HasSuffix(e.ID, "5"):
				out.Duplicates++
			default:
				out.Accepted++
			}
		}
		json.NewEncoder(w).Encode(out)
	}))
	defer ts.Close()
	c, err := New(ts.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]model.Event, 2500)
	for i := range evs {
		evs[i] = model.Event{ID: fmt.Sprintf("ev-%d", i), Time: time.Now(), Source: model.SourceRuntime, Action: model.ActionLog}
	}
	// A few huge events force a split by size too.
	big := strings.Repeat("x", model.MaxEventMessageLen)
	for i := 2100; i < 2500; i++ {
		evs[i].Message = big
		evs[i].Details = map[string]string{"a": strings.Repeat("y", 4000)}
		evs[i].Process = &model.Process{Args: []string{strings.Repeat("z", 4000), strings.Repeat("z", 4000)}}
	}
	res, err := c.IngestEvents(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) < 4 || batches[0] != api.MaxEventBatch || batches[1] != api.MaxEventBatch {
		t.Errorf("batches %v: want two of %d, then more split by size", batches, api.MaxEventBatch)
	}
	sum := 0
	for _, n := range batches {
		sum += n
	}
	if sum != len(evs) || res.Accepted+res.Duplicates+len(res.Rejected) != len(evs) || len(res.Rejected) != 250 || res.Duplicates != 250 {
		t.Errorf("sum %d, result accepted %d duplicates %d rejected %d", sum, res.Accepted, res.Duplicates, len(res.Rejected))
	}
	for _, r := range res.Rejected {
		if evs[r.Index].ID != r.ID {
			t.Fatalf("rejection index %d names %s, the event there is %s", r.Index, r.ID, evs[r.Index].ID)
		}
	}
}

func TestUploadScanValidatesFirst(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer ts.Close()
	c, _ := New(ts.URL, testToken)
	_, err := c.UploadScan(context.Background(), &model.Result{SchemaVersion: 99})
	if !errors.Is(err, model.ErrInvalid) || calls.Load() != 0 {
		t.Errorf("invalid result: %v after %d requests", err, calls.Load())
	}
	if _, err := c.UploadScan(context.Background(), nil); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("nil result: %v", err)
	}
}
