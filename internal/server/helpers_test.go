package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/store/pgtest"
)

// pgServer is the PostgreSQL server shared by this package's tests when
// MAMORI_TEST_POSTGRES=1.
var pgServer *pgtest.Server

func TestMain(m *testing.M) {
	runChildIfAsked()
	if pgtest.Enabled() {
		s, err := pgtest.Launch()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			os.Exit(1)
		}
		pgServer = s
	}
	code := m.Run()
	if pgServer != nil {
		if err := pgServer.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// engines runs fn against SQLite, and PostgreSQL when enabled.
func engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) {
		if pgServer == nil {
			t.Skipf("PostgreSQL tests are off: set %s=1 (needs Debian's postgresql package)", pgtest.EnvVar)
		}
		fn(t, pgServer.NewDatabase(t))
	})
}

// syncBuffer is a goroutine-safe log sink.
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

// testEnv is a server under test behind an httptest.Server.
type testEnv struct {
	t      testing.TB
	srv    *Server
	ts     *httptest.Server
	admin  string // the bootstrap admin token
	logs   *syncBuffer
	stderr *syncBuffer
	cfg    Config
}

type envOption func(*Config)

func newEnv(t testing.TB, dsn string, opts ...envOption) *testEnv {
	t.Helper()
	admin, err := auth.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	logs, stderr := &syncBuffer{}, &syncBuffer{}
	cfg := Config{
		Listen:       "127.0.0.1:0",
		DataDir:      t.TempDir(),
		DB:           dsn,
		InsecureHTTP: true,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:      "test",
		Stderr:       stderr,
		Getenv: func(k string) string {
			if k == EnvBootstrapToken {
				return admin
			}
			return ""
		},
		SchedulerTick: time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testEnv{t: t, srv: srv, ts: ts, admin: admin, logs: logs, stderr: stderr, cfg: cfg}
}

// token creates a token of role through the API and returns it with its ID.
func (e *testEnv) token(role auth.Role) (string, int64) {
	e.t.Helper()
	return e.clusterToken(role, "")
}

// clusterToken creates a token bound to cluster (which must exist).
func (e *testEnv) clusterToken(role auth.Role, cluster string) (string, int64) {
	e.t.Helper()
	name := fmt.Sprintf("%s-%d", role, time.Now().UnixNano())
	code, body := e.do("POST", "/api/v1/tokens", e.admin, map[string]any{"name": name, "role": role, "cluster": cluster})
	if code != http.StatusCreated {
		e.t.Fatalf("create token: %d %s", code, body)
	}
	var r struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatal(err)
	}
	return r.Token, r.ID
}

// do sends a request; body is JSON-encoded unless it is a []byte or nil.
func (e *testEnv) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	resp := e.request(method, path, token, body, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (e *testEnv) request(method, path, token string, body any, hdr http.Header) *http.Response {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// testResult is a valid scan result of an image: a Debian package with one
// vulnerability, an npm package, a secret and a misconfiguration finding.
func testResult(scanID, digest string, created time.Time) *model.Result {
	pkg := model.Package{Name: "openssl", Version: "3.0.11-1~deb12u1", Type: "deb", Ecosystem: "Debian:12",
		PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12", Cataloger: "dpkg",
		Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status", LayerDiffID: "sha256:" + strings.Repeat("a", 64)}}}
	npm := model.Package{Name: "lodash", Version: "4.17.20", Type: "npm", Ecosystem: "npm",
		PURL: "pkg:npm/lodash@4.17.20", Cataloger: "npm",
		Locations: []model.PackageLocation{{Path: "srv/app/node_modules/lodash/package.json", LayerDiffID: "sha256:" + strings.Repeat("b", 64)}}}
	score := 9.8
	_ = score
	return &model.Result{
		SchemaVersion: model.SchemaVersion,
		Tool:          model.Tool{Name: "mamori", Version: "test"},
		ScanID:        scanID,
		CreatedAt:     created.UTC().Truncate(time.Second),
		Target: model.Target{Name: "registry.example.com/shop/app:1.0", Type: model.TargetImage, Digest: digest,
			ImageID: "sha256:" + strings.Repeat("c", 64), RepoTags: []string{"registry.example.com/shop/app:1.0"}, Platform: "linux/amd64",
			Layers: []model.Layer{{DiffID: "sha256:" + strings.Repeat("a", 64), Size: 1000}}, Size: 1000},
		Scanners: []string{"vuln", "secret", "misconfig"},
		Inventory: model.Inventory{
			OS:       &model.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			Packages: []model.Package{pkg, npm},
		},
		Vulnerabilities: []model.Vulnerability{{
			ID: "DEBIAN-CVE-2023-5678", Aliases: []string{"CVE-2023-5678"},
			Package:      model.PackageRef{Name: "openssl", Version: pkg.Version, Type: "deb", Ecosystem: "Debian:12", PURL: pkg.PURL, Path: "var/lib/dpkg/status"},
			FixedVersion: "3.0.13-1~deb12u1", Severity: model.SeverityHigh,
			CVSS:    []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}},
			Summary: "openssl: excessive time spent in DH check", Details: "Generating excessively long X9.42 DH keys ...",
			References: []string{"https://www.openssl.org/news/secadv/20231106.txt"}, DataSource: "Debian:12",
		}, {
			ID: "GHSA-29mw-wpgm-hmr9", Aliases: []string{"CVE-2020-28500"},
			Package:      model.PackageRef{Name: "lodash", Version: "4.17.20", Type: "npm", Ecosystem: "npm", PURL: npm.PURL, Path: "srv/app/node_modules/lodash/package.json"},
			FixedVersion: "4.17.21", Severity: model.SeverityMedium,
			CVSS:    []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", Score: 5.3}},
			Summary: "Regular Expression Denial of Service (ReDoS) in lodash", DataSource: "npm",
		}},
		Findings: []model.Finding{
			{Kind: model.KindSecret, ID: "stripe-secret-key", Title: "Stripe secret key", Severity: model.SeverityCritical,
				Location: model.Location{Path: "srv/app/.env", StartLine: 3}, Evidence: "sk_live_****"},
			{Kind: model.KindMisconfig, ID: "MSC-IMG-001", Title: "Image runs as root", Severity: model.SeverityMedium,
				Location: model.Location{Config: "User"}},
		},
	}
}

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload sends res with a new client of serverURL (the one typed client).
func upload(ctx context.Context, serverURL, token string, res *model.Result, opts ...client.Option) (client.Receipt, error) {
	c, err := client.New(serverURL, token, opts...)
	if err != nil {
		return client.Receipt{}, err
	}
	return c.UploadScan(ctx, res)
}
