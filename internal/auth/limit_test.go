package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t testing.TB, l FailureLimit, c *fakeClock) *FailureLimiter {
	t.Helper()
	lim, err := NewFailureLimiter(l, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func TestFailureLimiterBucket(t *testing.T) {
	c := newClock()
	l := newLimiter(t, FailureLimit{}, c) // defaults: 10 in a row, then 10 a minute
	const k = "192.0.2.7"
	for i := 1; i <= DefaultFailureBurst; i++ {
		if r := l.Check(k); r != nil {
			t.Fatalf("attempt %d refused: %+v", i, r)
		}
		refused, wait := l.Fail(k)
		if refused != (i == DefaultFailureBurst) {
			t.Fatalf("failure %d: nowRefused %v", i, refused)
		}
		if i == DefaultFailureBurst && wait != 6*time.Second {
			t.Fatalf("retry after %v, want 6s", wait)
		}
	}
	r := l.Check(k)
	if r == nil || r.RetryAfter != 6*time.Second || !r.Log || r.Refused != 1 {
		t.Fatalf("after the burst: %+v", r)
	}
	// Further refusals within the minute are counted, not logged.
	for range 5 {
		if r := l.Check(k); r == nil || r.Log {
			t.Fatalf("refusal: %+v", r)
		}
	}
	if l.Check("192.0.2.8") != nil {
		t.Fatal("another address is refused")
	}
	c.Advance(5 * time.Second)
	if r := l.Check(k); r == nil || r.RetryAfter != time.Second {
		t.Fatalf("after 5 s: %+v, want refused for 1 s more", r)
	}
	c.Advance(time.Second)
	if r := l.Check(k); r != nil {
		t.Fatalf("after 6 s: %+v, want one attempt", r)
	}
	if refused, _ := l.Fail(k); !refused {
		t.Fatal("the refilled token was not spent")
	}
	c.Advance(30 * time.Second)
	if r := l.Check(k); r != nil {
		t.Fatalf("after 30 s more: %+v", r)
	}
	if s := l.Stats(); s.Tracked != 1 {
		t.Fatalf("tracked %d, want 1 (bucket 5/10)", s.Tracked)
	}
	c.Advance(30 * time.Second)
	if r := l.Check(k); r != nil || l.Stats().Tracked != 0 {
		t.Fatalf("a full bucket is still tracked: %+v %+v", r, l.Stats())
	}
}

// Failures that passed the check concurrently are charged as debt (up to
// maxLockout), so parallel guessing buys no extra tries in the long run.
func TestFailureLimiterDebt(t *testing.T) {
	c := newClock()
	l := newLimiter(t, FailureLimit{PerMinute: 60, Burst: 2}, c)
	const k = "192.0.2.7"
	for range 12 { // 12 attempts checked before any failed
		l.Fail(k)
	}
	r := l.Check(k)
	if r == nil || r.RetryAfter != 11*time.Second {
		t.Fatalf("after 12 failures with burst 2: %+v, want 11 s", r)
	}
	for range 10_000 {
		l.Fail(k)
	}
	if r := l.Check(k); r == nil || r.RetryAfter != maxLockout {
		t.Fatalf("debt not bounded: %+v, want %v", r, maxLockout)
	}
}

func TestFailureLimiterConfig(t *testing.T) {
	for _, bad := range []FailureLimit{{PerMinute: -1}, {Burst: -1}, {MaxClients: -1}} {
		if _, err := NewFailureLimiter(bad, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestFailureLimiterKey(t *testing.T) {
	l := newLimiter(t, FailureLimit{}, newClock())
	for addr, want := range map[string]string{
		"192.0.2.1:1234":                 "192.0.2.1",
		"[::ffff:192.0.2.1]:1234":        "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":     "2001:db8:1:2::/64",
		"[fe80::1%eth0]:443":             "fe80::/64",
		"@":                              "@",
		"192.0.2.1":                      "192.0.2.1", // no port: kept as is
		"[2001:db8:1:3:3:4:5:6]:1":       "2001:db8:1:3::/64",
		"[::1]:8443":                     "::/64",
		"127.0.0.1:8443":                 "127.0.0.1",
		"[2001:db8::1]:1":                "2001:db8::/64",
		"[2001:db8:0:0:1::]:1":           "2001:db8::/64",
		"[2001:db8:0:1::]:1":             "2001:db8:0:1::/64",
		"[2001:0db8:0000:0000::1]:65535": "2001:db8::/64",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := l.Key(r); got != want {
			t.Errorf("Key(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestFailureLimiterMemory: a spray of 100k distinct addresses keeps at
// most MaxClients entries, and a guesser that keeps knocking while
// throttled is not pushed out by the spray: it gets no more tries than
// the refill gives.
func TestFailureLimiterMemory(t *testing.T) {
	c := newClock()
	l := newLimiter(t, FailureLimit{}, c) // DefaultMaxClients
	const knocker = "198.51.100.1"
	for range DefaultFailureBurst {
		l.Fail(knocker)
	}
	start, tries := c.Now(), 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		key := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff)
		if l.Check(key) != nil {
			t.Fatalf("%s refused before failing", key)
		}
		l.Fail(key)
		if i%100 == 0 && l.Check(knocker) == nil {
			tries++
			l.Fail(knocker)
		}
		if i%10_000 == 0 { // 10 s in all: more addresses fail within 6 s than the cap holds
			c.Advance(time.Second)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if allowed := int(c.Now().Sub(start) / (6 * time.Second)); tries > allowed {
		t.Errorf("the knocking address had %d tries in %v, the refill allows %d: it was forgotten", tries, c.Now().Sub(start), allowed)
	}
	s := l.Stats()
	if s.Tracked > DefaultMaxClients {
		t.Fatalf("tracked %d addresses, cap %d", s.Tracked, DefaultMaxClients)
	}
	if s.Evicted == 0 {
		t.Fatal("no eviction counted")
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew %d bytes for %d tracked addresses", grown, s.Tracked)
	}
	t.Logf("100k addresses: %d tracked, %d evicted, heap %+d bytes", s.Tracked, s.Evicted, int64(after.HeapAlloc)-int64(before.HeapAlloc))
	// Once every bucket has refilled, Sweep forgets them all.
	c.Advance(2 * time.Minute)
	l.Sweep()
	if s := l.Stats(); s.Tracked != 0 {
		t.Fatalf("after Sweep: %d tracked", s.Tracked)
	}
}

func TestFailureLimiterConcurrent(t *testing.T) {
	l := newLimiter(t, FailureLimit{MaxClients: 50}, newClock())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := strconv.Itoa((g*7 + i) % 200)
				if l.Check(k) == nil {
					l.Fail(k)
				}
				if i%500 == 0 {
					l.Sweep()
				}
			}
		}()
	}
	wg.Wait()
	if s := l.Stats(); s.Tracked > 50 {
		t.Fatalf("tracked %d, cap 50", s.Tracked)
	}
}

// TestMiddlewareThrottlesFailedTokens: a burst of bad tokens from one
// address gets 429 with Retry-After and a JSON error, for a valid token too;
// another address is unaffected; valid tokens never count; the address
// recovers once the bucket refills; the log names the address, never a token.
func TestMiddlewareThrottlesFailedTokens(t *testing.T) {
	st := openStore(t)
	c := newClock()
	lim := newLimiter(t, FailureLimit{}, c)
	logs := &strings.Builder{}
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	a, err := New(st, WithFailureLimiter(lim), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good, rec, _ := NewToken("ci", RoleViewer, "", time.Time{})
	if _, err := st.CreateToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(RequireAction(ActionRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	do := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/images", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+token)
		// Not trusted: the limiter counts the connection's address.
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", time.Now().UnixNano()%250))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const attacker, other, ci = "192.0.2.66:40000", "192.0.2.77:40000", "192.0.2.88:40000"
	// Successful requests are never counted.
	for range 3 * DefaultFailureBurst {
		if w := do(ci, good); w.Code != 204 {
			t.Fatalf("valid token: %d", w.Code)
		}
	}
	var bad []string
	for i := range DefaultFailureBurst {
		b, _ := GenerateToken()
		bad = append(bad, b)
		if w := do(attacker, b); w.Code != 401 {
			t.Fatalf("bad token %d: %d, want 401", i, w.Code)
		}
	}
	for _, tok := range []string{"garbage-token-that-is-long-enough-to-check", good} {
		w := do(attacker, tok)
		var body map[string]string
		if w.Code != 429 || w.Header().Get("Retry-After") != "6" || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] == "" {
			t.Fatalf("throttled address: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	if w := do(other, good); w.Code != 204 {
		t.Fatalf("another address with a valid token: %d", w.Code)
	}
	if w := do(ci, bad[0]); w.Code != 401 {
		t.Fatalf("the CI address's first failure: %d, want 401 (successes were counted)", w.Code)
	}
	c.Advance(6 * time.Second)
	if w := do(attacker, good); w.Code != 204 {
		t.Fatalf("after the refill: %d", w.Code)
	}
	// A request without credentials is not an authentication attempt.
	for range 2 * DefaultFailureBurst {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = other
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 401 {
			t.Fatalf("anonymous: %d", w.Code)
		}
	}
	if w := do(other, good); w.Code != 204 {
		t.Fatalf("anonymous requests were counted: %d", w.Code)
	}

	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "too many failed authentications") || !strings.Contains(out, "client=192.0.2.66") ||
		!strings.Contains(out, "authentication refused") {
		t.Errorf("log misses the throttling:\n%s", out)
	}
	for _, tok := range append(bad, good) {
		if strings.Contains(out, tok) || strings.Contains(out, tok[:20]) {
			t.Fatalf("a token is in the log:\n%s", out)
		}
	}
}

func TestLoginThrottled(t *testing.T) {
	st := openStore(t)
	c := newClock()
	lim := newLimiter(t, FailureLimit{Burst: 3}, c)
	a, err := New(st, WithFailureLimiter(lim), WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	good, rec, _ := NewToken("me", RoleAdmin, "", time.Time{})
	if _, err := st.CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	login := func(tok string) error {
		req := httptest.NewRequest("POST", "/login", nil)
		req.RemoteAddr = "192.0.2.5:5555"
		_, err := a.Login(httptest.NewRecorder(), req, tok)
		return err
	}
	for range 3 {
		b, _ := GenerateToken()
		if err := login(b); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("bad login: %v", err)
		}
	}
	var te *ThrottledError
	if err := login(good); !errors.As(err, &te) || !errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnauthenticated) || te.RetryAfterSeconds() != "6" {
		t.Fatalf("throttled login: %v", err)
	}
	c.Advance(6 * time.Second)
	if err := login(good); err != nil {
		t.Fatalf("login after the refill: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
