package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/console"
)

// testClock is a settable clock for the failure limiter.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAuthFailureThrottling: with the default limit, a burst of bad tokens
// from one address gets 429 with Retry-After and a JSON error on every
// route, for a valid token too; a valid token from another address works;
// X-Forwarded-For does not buy a fresh address; the address recovers when
// the bucket refills (the clock is the test's); the console login is
// throttled by the same limiter; the log names the address, never a token.
func TestAuthFailureThrottling(t *testing.T) {
	clk := &testClock{t: time.Now()}
	e := newEnv(t, "", func(c *Config) {
		c.clock = clk.Now
		c.ConsoleFactory = func(d ConsoleDeps) (http.Handler, error) {
			return console.New(d.Store, d.Auth, console.WithLogger(d.Logger))
		}
	})
	viewer, _ := e.token("viewer") // a success: not counted
	var bad []string
	xff := http.Header{"X-Forwarded-For": {"203.0.113.1"}}
	for i := range auth.DefaultFailureBurst {
		b, err := auth.GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, b)
		xff.Set("X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
		resp := e.request("GET", "/api/v1/images", b, nil, xff)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("bad token %d: %d, want 401", i, resp.StatusCode)
		}
	}
	check429 := func(what string, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		var body map[string]string
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "6" || json.Unmarshal(b, &body) != nil || body["error"] == "" ||
			resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d Retry-After %q %s", what, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	for _, rt := range e.srv.Routes() {
		check429(rt.Method+" "+rt.Pattern+" with a bad token", e.request(rt.Method, strings.ReplaceAll(rt.Pattern, "{id}", "1"), bad[0], nil, nil))
	}
	check429("a valid token from the throttled address", e.request("GET", "/api/v1/images", e.admin, nil, nil))
	xff.Set("X-Forwarded-For", "198.51.100.200")
	check429("a fresh X-Forwarded-For", e.request("GET", "/api/v1/images", bad[1], nil, xff))

	// Another address: the handler directly, with its own remote address.
	req := httptest.NewRequest("GET", "/api/v1/whoami", nil)
	req.RemoteAddr = "192.0.2.10:51000"
	req.Header.Set("Authorization", "Bearer "+viewer)
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("valid token from another address: %d %s", w.Code, w.Body)
	}
	// Anonymous requests are not authentication attempts and still get their 401.
	if code, _ := e.do("GET", "/api/v1/images", "", nil); code != 401 {
		t.Errorf("anonymous from the throttled address: %d, want 401", code)
	}

	// The console login from the throttled address: 429 with Retry-After,
	// the token not even checked.
	code, hdr, page := consoleLogin(t, e, e.admin)
	if code != 429 || hdr.Get("Retry-After") != "6" || !strings.Contains(page, "Too many failed logins") {
		t.Errorf("console login from the throttled address: %d %q %.300s", code, hdr.Get("Retry-After"), page)
	}

	clk.Advance(6 * time.Second)
	if code, body := e.do("GET", "/api/v1/images", e.admin, nil); code != 200 {
		t.Fatalf("after the refill: %d %s", code, body)
	}
	if code, _, _ := consoleLogin(t, e, bad[2]); code != 401 {
		t.Fatalf("console login with a bad token after the refill: %d, want 401", code)
	}
	// That failure spent the refilled token.
	if code, _, _ := consoleLogin(t, e, e.admin); code != 429 {
		t.Fatalf("console login after a failed one: %d, want 429", code)
	}
	clk.Advance(time.Minute)
	if code, _, _ := consoleLogin(t, e, e.admin); code != http.StatusSeeOther {
		t.Fatalf("console login after a minute: %d, want 303", code)
	}

	logs := e.logs.String()
	if !strings.Contains(logs, "too many failed authentications") || !strings.Contains(logs, "client=127.0.0.1") {
		t.Errorf("the throttling is not logged:\n%s", logs)
	}
	for _, tok := range append(bad, e.admin, viewer) {
		if strings.Contains(logs, tok[len(auth.TokenPrefix):]) {
			t.Fatal("a token is in the log")
		}
	}
}

// consoleLogin loads the login form and posts token, returning the answer.
func consoleLogin(t *testing.T, e *testEnv, token string) (int, http.Header, string) {
	t.Helper()
	resp := e.request("GET", "/login", "", nil, nil)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="login_csrf" value="([^"]+)"`).FindSubmatch(page)
	var ck string
	for _, c := range resp.Cookies() {
		if c.Name == "mamori_login" {
			ck = c.Value
		}
	}
	if m == nil || ck == "" {
		t.Fatalf("login form: %d %.300s", resp.StatusCode, page)
	}
	form := url.Values{"token": {token}, "login_csrf": {string(m[1])}}
	req, err := http.NewRequest("POST", e.ts.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.ts.URL)
	req.Header.Set("Cookie", "mamori_login="+ck)
	cl := *e.ts.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAuthFailureLimitDisabled: Disabled turns throttling off.
func TestAuthFailureLimitDisabled(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.AuthFailureLimit.Disabled = true })
	bad, _ := auth.GenerateToken()
	for i := range 3 * auth.DefaultFailureBurst {
		if code, _ := e.do("GET", "/api/v1/images", bad, nil); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i, code)
		}
	}
	if e.srv.limiter != nil {
		t.Fatal("a limiter while disabled")
	}
	if _, err := New(t.Context(), Config{DataDir: t.TempDir(), InsecureHTTP: true, Listen: "127.0.0.1:0",
		AuthFailureLimit: auth.FailureLimit{Burst: -1}, Getenv: func(string) string { return "" }, Stderr: io.Discard}); err == nil {
		t.Fatal("a negative burst was accepted")
	}
}
