package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/store"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestGenerateToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || CheckToken(tok) != nil {
			t.Fatalf("token %q has the wrong shape", tok)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
		if p := DisplayPrefix(tok); p != tok[:8] {
			t.Fatalf("prefix %q", p)
		}
		if h := HashToken(tok); len(h) != 32 || bytes.Contains([]byte(tok), h) {
			t.Fatal("hash")
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 300), "mmr_" + strings.Repeat("a", 30) + " x", "mmr_" + strings.Repeat("é", 20)} {
		if CheckToken(bad) == nil {
			t.Errorf("CheckToken(%q) accepted", bad)
		}
	}
}

// TestAllowed is the permission table, stated independently of the code:
// the human roles are ordered; each machine role may do only its own
// actions (never read, ingest scans or administer).
func TestAllowed(t *testing.T) {
	const (
		P, R, I, A = ActionPublic, ActionRead, ActionIngest, ActionAdmin
		E, C, G    = ActionComponent, ActionCluster, ActionAgent
	)
	want := map[Role]map[Action]bool{
		RoleViewer:   {P: true, R: true, I: false, A: false, E: false, C: false, G: false},
		RoleOperator: {P: true, R: true, I: true, A: false, E: false, C: false, G: false},
		RoleAdmin:    {P: true, R: true, I: true, A: true, E: false, C: false, G: false},
		RoleCluster:  {P: true, R: false, I: false, A: false, E: true, C: true, G: false},
		RoleAgent:    {P: true, R: false, I: false, A: false, E: true, C: false, G: true},
		"":           {P: true, R: false, I: false, A: false, E: false, C: false, G: false},
		"root":       {P: true, R: false, I: false, A: false, E: false, C: false, G: false},
	}
	if len(want[RoleAdmin]) != len(Actions) {
		t.Fatalf("the table covers %d actions, there are %d", len(want[RoleAdmin]), len(Actions))
	}
	for role, acts := range want {
		for a, ok := range acts {
			if Allowed(role, a) != ok {
				t.Errorf("Allowed(%q, %q) = %v, want %v", role, a, !ok, ok)
			}
		}
		if Allowed(role, "unknown") {
			t.Errorf("Allowed(%q, unknown)", role)
		}
	}
	if !AtLeast(RoleAdmin, RoleViewer) || AtLeast(RoleViewer, RoleOperator) || AtLeast("x", "x") ||
		AtLeast(RoleCluster, RoleViewer) || AtLeast(RoleAgent, RoleAgent) {
		t.Error("AtLeast")
	}
	for a, who := range map[Action]string{P: "public", R: "viewer", I: "operator", A: "admin", E: "agent cluster", C: "cluster", G: "agent", "x": ""} {
		if got := Who(a); got != who {
			t.Errorf("Who(%s) = %q, want %q", a, got, who)
		}
	}
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%s): %v %v", r, got, err)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root)")
	}
}

// TestMachineTokens: cluster and agent tokens authenticate as bearer
// tokens with their cluster, but never start a console session; a token
// needs the cluster its role asks for.
func TestMachineTokens(t *testing.T) {
	st := openStore(t)
	a, _ := New(st)
	ctx := context.Background()
	if _, _, err := NewToken("c", RoleCluster, "", time.Time{}); err == nil {
		t.Error("a cluster token without its cluster")
	}
	if _, _, err := NewToken("v", RoleViewer, "prod", time.Time{}); err == nil {
		t.Error("a viewer token bound to a cluster")
	}
	if _, _, err := NewToken("x", "root", "", time.Time{}); err == nil {
		t.Error("an unknown role")
	}
	for _, role := range []Role{RoleCluster, RoleAgent} {
		tok, rec, err := NewToken(string(role), role, "prod", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		p, err := a.AuthenticateToken(ctx, tok)
		if err != nil || p.Role != role || p.Cluster != "prod" {
			t.Errorf("%s: %+v %v", role, p, err)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/login", nil)
		if _, err := a.Login(w, r, tok); !errors.Is(err, ErrForbidden) || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s console login: %v, cookies %v", role, err, w.Result().Cookies())
		}
	}
}

// consoleApp is a tiny console: a login form, a protected page and a
// state-changing form, all behind the Authenticator.
func consoleApp(a *Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.Login(w, r, r.PostFormValue("token")); err != nil {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /page", RequireSession(RoleViewer, "/login")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, CSRFToken(r))
	})))
	mux.Handle("POST /change", RequireSession(RoleAdmin, "/login")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "changed")
	})))
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Logout(w, r); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return a.Middleware(mux)
}

type flow struct {
	t    *testing.T
	ts   *httptest.Server
	c    *http.Client
	seen bytes.Buffer // every response header and body
	mu   sync.Mutex
}

func (f *flow) send(method, path string, form url.Values, hdr http.Header) (*http.Response, string) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.ts.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	f.mu.Lock()
	resp.Header.Write(&f.seen)
	f.seen.Write(b)
	f.mu.Unlock()
	return resp, string(b)
}

func TestSessionsAndCSRF(t *testing.T) {
	st := openStore(t)
	var logs bytes.Buffer
	a, err := New(st, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	adminTok, rec, err := NewToken("admin", RoleAdmin, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	adminRec, err := st.CreateToken(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	viewerTok, rec, _ := NewToken("viewer", RoleViewer, "", time.Time{})
	if _, err := st.CreateToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(consoleApp(a))
	defer ts.Close()
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	newFlow := func() *flow {
		f := &flow{t: t, ts: ts}
		f.c = &http.Client{CheckRedirect: noRedirect}
		return f
	}
	f := newFlow()

	// Anonymous: the page redirects to the login, a change is refused.
	if resp, _ := f.send("GET", "/page", nil, nil); resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("anonymous page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A bad token does not log in.
	if resp, _ := f.send("POST", "/login", url.Values{"token": {"mmr_" + strings.Repeat("x", 43)}}, nil); resp.StatusCode != 401 {
		t.Fatalf("bad login: %d", resp.StatusCode)
	}
	// A cross-site login POST is refused before the handler (login CSRF).
	if resp, _ := f.send("POST", "/login", url.Values{"token": {adminTok}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}); resp.StatusCode != 403 {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
	resp, _ := f.send("POST", "/login", url.Values{"token": {adminTok}}, http.Header{"Origin": {ts.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if resp.StatusCode != 204 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || sess.Secure {
		t.Fatalf("session cookie %+v", sess)
	}
	// The session ID is stored hashed only.
	if _, err := st.GetSession(ctx, []byte(sess.Value), time.Now()); err == nil {
		t.Fatal("session found by its clear ID")
	}
	if _, err := st.GetSession(ctx, HashToken(sess.Value), time.Now()); err != nil {
		t.Fatalf("session by hash: %v", err)
	}
	cookie := http.Header{"Cookie": {sess.Name + "=" + sess.Value}}
	resp, csrf := f.send("GET", "/page", nil, cookie)
	if resp.StatusCode != 200 || len(csrf) < 40 {
		t.Fatalf("page with session: %d %q", resp.StatusCode, csrf)
	}
	with := func(extra http.Header) http.Header {
		h := cookie.Clone()
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  http.Header
		want int
	}{
		{"no CSRF token", url.Values{"x": {"1"}}, nil, 403},
		{"wrong CSRF token", url.Values{CSRFField: {strings.Repeat("A", 43)}}, nil, 403},
		{"garbage CSRF token", url.Values{CSRFField: {"%%%"}}, nil, 403},
		{"cross-site with token", url.Values{CSRFField: {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"foreign origin with token", url.Values{CSRFField: {csrf}}, http.Header{"Origin": {"https://evil.example"}}, 403},
		{"form token", url.Values{CSRFField: {csrf}}, http.Header{"Sec-Fetch-Site": {"same-origin"}}, 200},
		{"header token", nil, http.Header{CSRFHeader: {csrf}}, 200},
	} {
		resp, _ := f.send("POST", "/change", tc.form, with(tc.hdr))
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// A viewer's session may look but not change.
	resp, _ = f.send("POST", "/login", url.Values{"token": {viewerTok}}, nil)
	var vs *http.Cookie
	for _, c := range resp.Cookies() {
		vs = c
	}
	vh := http.Header{"Cookie": {vs.Name + "=" + vs.Value}}
	_, vcsrf := f.send("GET", "/page", nil, vh)
	vh.Set(CSRFHeader, vcsrf)
	if resp, _ := f.send("POST", "/change", nil, vh); resp.StatusCode != 403 {
		t.Errorf("viewer change: %d, want 403", resp.StatusCode)
	}
	// Another session's CSRF token does not work on this one.
	if resp, _ := f.send("POST", "/change", nil, with(http.Header{CSRFHeader: {vcsrf}})); resp.StatusCode != 403 {
		t.Errorf("CSRF token of another session: %d, want 403", resp.StatusCode)
	}
	// Revoking the token ends its sessions.
	if err := st.RevokeToken(ctx, adminRec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.send("GET", "/page", nil, cookie); resp.StatusCode != 303 {
		t.Errorf("page after revoke: %d, want a redirect to login", resp.StatusCode)
	}
	// Logout deletes the session.
	if resp, _ := f.send("POST", "/logout", nil, vh); resp.StatusCode != 200 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := f.send("GET", "/page", nil, vh); resp.StatusCode != 303 {
		t.Errorf("page after logout: %d", resp.StatusCode)
	}

	// Secrets never logged, never echoed except where they are created.
	all := logs.String() + f.seen.String()
	for name, secret := range map[string]string{"admin token": adminTok, "viewer token": viewerTok} {
		if strings.Contains(all, secret) {
			t.Errorf("the %s appears in a log line or a response", name)
		}
	}
	if strings.Contains(logs.String(), sess.Value) || strings.Contains(logs.String(), csrf) {
		t.Errorf("a session ID or CSRF token appears in the log")
	}
}

func TestSecureCookieUnderTLS(t *testing.T) {
	st := openStore(t)
	a, err := New(st, WithSecureCookies(true))
	if err != nil {
		t.Fatal(err)
	}
	tok, rec, _ := NewToken("a", RoleAdmin, "", time.Time{})
	if _, err := st.CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(consoleApp(a))
	defer ts.Close()
	c := ts.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	resp, err := c.PostForm(ts.URL+"/login", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Name != SecureCookieName || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies %+v", cs)
	}
}

func TestBearerTokens(t *testing.T) {
	st := openStore(t)
	a, _ := New(st)
	ctx := context.Background()
	tok, rec, _ := NewToken("op", RoleOperator, "", time.Time{})
	r, err := st.CreateToken(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	expTok, rec2, _ := NewToken("old", RoleAdmin, "", time.Now().Add(-time.Minute))
	if _, err := st.CreateToken(ctx, rec2); err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(RequireAction(ActionIngest)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFromRequest(r)
		json.NewEncoder(w).Encode(map[string]any{"role": p.Role, "via": p.Via})
	})))
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", 401},
		{"valid", "Bearer " + tok, 200},
		{"lowercase scheme", "bearer " + tok, 200},
		{"expired", "Bearer " + expTok, 401},
		{"basic", "Basic " + tok, 401},
		{"garbage", "Bearer garbage", 401},
	} {
		req := httptest.NewRequest("POST", "/x", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		// A bearer request skips CSRF even when cross-site: browsers never add the header.
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if tc.auth == "" {
			// anonymous cross-site POST is refused by the origin check first
			if w.Code != 403 {
				t.Errorf("%s: %d, want 403", tc.name, w.Code)
			}
			continue
		}
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d (%s)", tc.name, w.Code, tc.want, w.Body)
		}
	}
	got, err := st.GetToken(ctx, r.ID)
	if err != nil || got.LastUsedAt.IsZero() {
		t.Errorf("last use not recorded: %+v %v", got, err)
	}
}
