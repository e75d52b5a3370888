package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/console"
)

// TestNoSecretInLogsOrResponses runs a whole flow — bootstrap, tokens,
// ingest, registries with passwords (created, updated, synced), console
// login and pages, revocation — capturing every log line and every
// response, and checks that no token, registry password or session ID
// appears anywhere but in the one response that creates it (and the
// generated bootstrap token only on stderr).
func TestNoSecretInLogsOrResponses(t *testing.T) {
	logs, stderr := &syncBuffer{}, &syncBuffer{}
	dataDir := t.TempDir()
	srv, err := New(context.Background(), Config{
		Listen: "127.0.0.1:0", DataDir: dataDir, InsecureHTTP: true, Version: "test",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stderr: stderr, Getenv: func(string) string { return "" },
		ConsoleFactory: func(d ConsoleDeps) (http.Handler, error) {
			return console.New(d.Store, d.Auth, console.WithLogger(d.Logger), console.WithRegistrySecrets(d.SealSecret), console.WithRegistrySync(d.StartSync))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	// The generated bootstrap token is on stderr, once.
	m := regexp.MustCompile(`mmr_[A-Za-z0-9_-]{43}`).FindAllString(stderr.String(), -1)
	if len(m) != 1 {
		t.Fatalf("bootstrap token printed %d times on stderr:\n%s", len(m), stderr.String())
	}
	admin := m[0]
	secrets := map[string]string{"bootstrap token": admin}
	var responses bytes.Buffer
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, path, token string, body any, hdr http.Header, record bool) (int, []byte, http.Header) {
		t.Helper()
		var r io.Reader
		ct := "application/json"
		switch b := body.(type) {
		case nil:
		case url.Values:
			r, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
		default:
			r = bytes.NewReader(mustJSON(t, b))
		}
		req, _ := http.NewRequest(method, base+path, r)
		if body != nil {
			req.Header.Set("Content-Type", ct)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if record {
			resp.Header.Write(&responses)
			responses.Write(b)
		}
		return resp.StatusCode, b, resp.Header
	}
	newToken := func(role auth.Role) (string, int64) {
		code, b, _ := call("POST", "/api/v1/tokens", admin, map[string]any{"name": fmt.Sprintf("%s-%d", role, time.Now().UnixNano()), "role": role}, nil, false)
		var r struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		if code != 201 || json.Unmarshal(b, &r) != nil || !strings.HasPrefix(r.Token, auth.TokenPrefix) {
			t.Fatalf("create token: %d %s", code, b)
		}
		return r.Token, r.ID
	}
	op, _ := newToken(auth.RoleOperator)
	viewer, viewerID := newToken(auth.RoleViewer)
	secrets["operator token"], secrets["viewer token"] = op, viewer

	if _, err := upload(ctx, base, op, testResult("flow-1", digestN(42), time.Now())); err != nil {
		t.Fatal(err)
	}
	pw1, pw2 := "first-Registry-pa55", "second-Registry-pa55"
	secrets["registry password"], secrets["changed registry password"] = pw1, pw2
	code, b, _ := call("POST", "/api/v1/registries", admin, map[string]any{"name": "corp", "url": "https://127.0.0.1:1", "username": "ci", "password": pw1}, nil, true)
	if code != 201 {
		t.Fatalf("create registry: %d %s", code, b)
	}
	var rv api.Registry
	_ = json.Unmarshal(b, &rv)
	call("PUT", fmt.Sprintf("/api/v1/registries/%d", rv.ID), admin, map[string]any{"name": "corp", "url": "https://127.0.0.1:1", "username": "ci", "password": pw2}, nil, true)
	if _, err := srv.SyncRegistry(ctx, rv.ID); err == nil {
		t.Error("sync of an unreachable registry succeeded")
	}
	for _, p := range []string{"/api/v1/registries", fmt.Sprintf("/api/v1/registries/%d", rv.ID), "/api/v1/tokens", "/api/v1/images", "/api/v1/scans", "/api/v1/whoami", "/api/v1/db"} {
		if code, b, _ := call("GET", p, admin, nil, nil, true); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	// Failed authentications are logged without the credential.
	call("GET", "/api/v1/images", "mmr_"+strings.Repeat("Z", 43), nil, nil, true)

	// Console: log in with the viewer token, load pages, log out.
	_, page, lhdr := call("GET", "/login", "", nil, nil, true)
	lm := regexp.MustCompile(`name="login_csrf" value="([^"]+)"`).FindSubmatch(page)
	var loginCookie string
	for _, c := range (&http.Response{Header: lhdr}).Cookies() {
		if c.Name == "mamori_login" {
			loginCookie = c.Value
		}
	}
	if lm == nil || loginCookie == "" {
		t.Fatalf("login page without its CSRF value: %.300s", page)
	}
	code, _, hdr := call("POST", "/login", "", url.Values{"token": {viewer}, "login_csrf": {string(lm[1])}},
		http.Header{"Origin": {base}, "Cookie": {"mamori_login=" + loginCookie}}, true)
	if code != http.StatusSeeOther {
		t.Fatalf("console login: %d", code)
	}
	var sess string
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == auth.CookieName {
			sess = c.Value
		}
	}
	if sess == "" {
		t.Fatal("no session cookie")
	}
	ck := http.Header{"Cookie": {auth.CookieName + "=" + sess}}
	for _, p := range []string{"/images", "/vulnerabilities", "/registries", "/settings/tokens", "/scanner"} {
		if code, b, _ := call("GET", p, "", nil, ck, true); code != 200 {
			t.Errorf("console %s: %d %.200s", p, code, b)
		}
	}
	// Revoke the viewer: its session ends.
	if code, _, _ := call("DELETE", fmt.Sprintf("/api/v1/tokens/%d", viewerID), admin, nil, nil, true); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := call("GET", "/images", "", nil, ck, true); code != http.StatusSeeOther {
		t.Errorf("console after revoke: %d, want redirect to login", code)
	}

	all := logs.String()
	resp := responses.String()
	for name, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("the %s appears in the server log", name)
		}
		if strings.Contains(resp, s) {
			t.Errorf("the %s appears in a response", name)
		}
	}
	if strings.Contains(all, sess) {
		t.Error("the session ID appears in the server log")
	}
	if strings.Count(stderr.String(), admin) != 1 {
		t.Error("the bootstrap token is not on stderr exactly once")
	}
	// The store holds no secret in the clear.
	st := srv.Store()
	toks, _ := st.ListTokens(context.Background())
	for _, tk := range toks {
		for name, s := range secrets {
			if bytes.Contains(tk.Hash, []byte(s)) || strings.Contains(tk.Prefix, s) {
				t.Errorf("token record %d holds the %s", tk.ID, name)
			}
		}
	}
	if len(logs.String()) == 0 {
		t.Fatal("no log captured: the test would prove nothing")
	}
}

// TestTLS: a self-signed ECDSA certificate is generated on first start
// (files 0600) and kept; a client pinning it uploads with verification on,
// one that does not is refused; HSTS is sent; plain HTTP off loopback and a
// changed server key are refused.
func TestTLS(t *testing.T) {
	dataDir := t.TempDir()
	mk := func() *Server {
		s, err := New(context.Background(), Config{DataDir: dataDir, Listen: "127.0.0.1:0", Getenv: func(k string) string {
			if k == EnvBootstrapToken {
				return "mmr_tls-test-token-0123456789abcdefghijklmnop"
			}
			return ""
		}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := mk()
	certFile := filepath.Join(dataDir, certFileName)
	for _, f := range []string{certFile, filepath.Join(dataDir, keyPEMName), filepath.Join(dataDir, keyFileName)} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	raw, _ := os.ReadFile(certFile)
	blk, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", cert.PublicKeyAlgorithm)
	}
	fp := s.CertFingerprint()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "https://" + ln.Addr().String()
	res := testResult("tls-1", digestN(77), time.Now())
	tok := "mmr_tls-test-token-0123456789abcdefghijklmnop"
	_, err = upload(ctx, base, tok, res, client.WithRetries(1, 0))
	var cerr *x509.UnknownAuthorityError
	if err == nil || !(errors.As(err, &cerr) || strings.Contains(err.Error(), "certificate")) {
		t.Errorf("upload without the CA: %v, want a certificate error", err)
	}
	rec, err := upload(ctx, base, tok, res, client.WithCAFile(certFile))
	if err != nil || rec.Status != "created" {
		t.Fatalf("upload pinning the CA: %+v %v", rec, err)
	}
	hc, _ := newPinnedClient(certFile)
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS under TLS")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Restart: the same certificate is kept.
	s2 := mk()
	if s2.CertFingerprint() != fp {
		t.Error("certificate regenerated on restart")
	}
	s2.Close()

	// Plain HTTP off loopback is refused, on loopback allowed.
	for listen, ok := range map[string]bool{"0.0.0.0:8080": false, ":8080": false, "192.0.2.10:80": false, "127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true} {
		err := checkLoopback(listen)
		if ok != (err == nil) {
			t.Errorf("insecure listen %s: %v", listen, err)
		}
		if !ok && !errors.Is(err, ErrInsecureListen) {
			t.Errorf("%s: %v, want ErrInsecureListen", listen, err)
		}
	}
	if _, err := New(context.Background(), Config{DataDir: t.TempDir(), Listen: "0.0.0.0:8080", InsecureHTTP: true}); !errors.Is(err, ErrInsecureListen) {
		t.Errorf("New with insecure non-loopback: %v", err)
	}
	// Another server key for the same store is refused.
	other := strings.Repeat("ab", 32)
	if _, err := New(context.Background(), Config{DataDir: dataDir, Listen: "127.0.0.1:0", Getenv: func(k string) string {
		if k == EnvServerKey {
			return other
		}
		return ""
	}}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("changed server key: %v, want ErrKeyMismatch", err)
	}
}

func newPinnedClient(caFile string) (*http.Client, error) {
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: tr}, nil
}
