package console

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mamori/internal/auth"
	"mamori/internal/policy"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

// chromiumPath is Debian's chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds the whole click-through; a healthy run takes a few seconds.
const browserTimeout = 3 * time.Minute

// TestBrowser clicks through the console in headless Chromium, as a user
// would, asserting what each page shows and saving full-page screenshots
// (to MAMORI_SCREENSHOT_DIR when set, else a temporary directory). It also
// fails on any console error, such as a Content-Security-Policy violation.
//
// It runs when MAMORI_TEST_BROWSER=1 (CI sets it), with Debian's chromium.
func TestBrowser(t *testing.T) {
	if os.Getenv("MAMORI_TEST_BROWSER") != "1" {
		t.Skip("set MAMORI_TEST_BROWSER=1 to run the headless Chromium test (needs Debian's chromium: apt-get install chromium)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("MAMORI_TEST_BROWSER=1 but %s is missing (apt-get install chromium): %v", chromiumPath, err)
	}
	shots := os.Getenv("MAMORI_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	e := newEnv(t)
	// A runtime event with hostile fields and a 64 KiB argv: if any of its
	// script ran, an alert dialog would stall the click-through.
	if _, err := e.st.InsertEvents(context.Background(), []store.EventRecord{hostileRuntimeEvent(time.Now().UTC())}); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)

	// Collect console errors, exceptions and browser log errors (a CSP
	// violation is one) from the whole click-through.
	var (
		mu       sync.Mutex
		problems []string
	)
	lctx, stopListen := context.WithCancel(ctx)
	msgs := chromedp.Console(lctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil || lctx.Err() != nil {
				return
			}
			if m.Source == "network" && strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "401") {
				continue // the wrong token below is refused with 401, on purpose
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s)", m, m.URL))
				mu.Unlock()
			}
		}
	}()

	b := &browser{t: t, ctx: ctx, base: e.srv.URL, dir: shots}
	b.do("viewport", chromedp.EmulateViewport(1440, 900))

	// Login: a wrong token first, then the admin token.
	b.do("open login", chromedp.Navigate(e.srv.URL+"/"), waitPage("login"))
	b.shot("01-login")
	b.do("bad token", chromedp.SendKeys(css("#token"), "mmr_not-a-real-token-but-long-enough-to-check"),
		chromedp.Click(css(`button[type=submit]`)), waitPage("login"))
	b.expectText(".login-card", "not valid")
	b.do("login", chromedp.SendKeys(css("#token"), e.tokens[auth.RoleAdmin]), chromedp.Click(css(`button[type=submit]`)), waitPage("images"))
	b.expectText("main", "Images scanned", "registry.local/payments/api:1.4.2", "Debian GNU/Linux 12 (bookworm)")
	b.expectText(".topbar", "console-admin", "admin")
	b.shot("02-images")

	// Image detail, its tabs.
	img := "/images/" + strconv.FormatInt(e.imgID, 10)
	b.do("open image", chromedp.Click(css(`a.primary[href="`+img+`"]`)), waitPage("image"))
	b.expectText("main", "DEBIAN-CVE-2023-38545", "libcurl4", "7.88.1-10+deb12u4", "Scan warnings")
	b.shot("03-image-vulnerabilities")
	b.do("packages tab", chromedp.Click(css(`nav.tabs a[href$="tab=packages"]`)), waitPage("image"))
	b.do("search packages", chromedp.SendKeys(css(`input[name=q]`), "ssl"), chromedp.Submit(css(`input[name=q]`)), waitPage("image"))
	b.expectText("main", "libssl3", "openssl")
	b.expectNoText("table.data", "zlib1g")
	b.shot("04-image-packages")
	b.do("secrets tab", chromedp.Click(css(`nav.tabs a[href$="tab=secrets"]`)), waitPage("image"))
	b.expectText("main", "AWS access key ID", "AKIA****(20 chars)", "GitHub personal access token")
	b.expectNoText("main", rawGitHubPAT)
	b.shot("05-image-secrets")
	b.do("malware tab", chromedp.Click(css(`nav.tabs a[href$="tab=malware"]`)), waitPage("image"))
	b.expectText("main", "EICAR test file", "tmp/eicar.com")
	b.do("misconfig tab", chromedp.Click(css(`nav.tabs a[href$="tab=misconfig"]`)), waitPage("image"))
	b.expectText("main", "Image runs as root")
	b.shot("06-image-misconfig")
	b.do("layers tab", chromedp.Click(css(`nav.tabs a[href$="tab=layers"]`)), waitPage("image"))
	b.expectText("main", "ADD file:bookworm-slim")

	// Vulnerabilities: filter by severity with the checkboxes.
	b.do("vulnerabilities", chromedp.Click(css(`nav.nav a[href="/vulnerabilities"]`)), waitPage("vulns"))
	b.expectText("#vuln-table", "DEBIAN-CVE-2023-4911", "DEBIAN-CVE-2011-3374")
	b.shot("07-vulnerabilities")
	b.do("filter critical", chromedp.Click(css(`input[name=severity][value=critical]`)),
		chromedp.Click(css(`form.toolbar button[type=submit]`)), waitPage("vulns"))
	b.expectURL("severity=critical")
	b.expectText("#vuln-table", "DEBIAN-CVE-2023-38545", "DEBIAN-CVE-2023-45853")
	b.expectNoText("#vuln-table", "DEBIAN-CVE-2023-4911", "High", "Medium")
	b.do("checkbox stays checked", chromedp.WaitVisible(css(`input[name=severity][value=critical]:checked`)))
	b.shot("08-vulnerabilities-critical")

	// Vulnerability detail.
	b.do("vulnerability detail", chromedp.Click(css(`#vuln-table a[href="/vulnerabilities/DEBIAN-CVE-2023-38545"]`)), waitPage("vuln"))
	b.expectText("main", "SOCKS5 heap buffer overflow", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"registry.local/payments/api:1.4.2", "7.88.1-10+deb12u3", "Affected workloads", "No cluster reports workloads yet")
	b.shot("09-vulnerability-detail")

	// Events: every source on one page; filter by minimum severity; open one.
	b.do("events", chromedp.Click(css(`nav.nav a[href="/events"]`)), waitPage("events"))
	b.expectText("#event-table", "Shell started in a container", "Executable not in the image", "Image tag latest", "bastion", hostileEventMessage)
	b.shot("16-events")
	b.do("filter critical events", chromedp.SetValue(css(`select[name=severity]`), "critical"),
		chromedp.Click(css(`form.toolbar button[type=submit]`)), waitPage("events"))
	b.expectURL("severity=critical")
	b.expectText("#event-table", "Executable not in the image", "bastion")
	b.expectNoText("#event-table", "Shell started in a container", "Image tag latest")
	b.do("open event", chromedp.Click(css(`#event-table td.event-msg summary`)), chromedp.WaitVisible(css(`#event-table details[open] dl.kv`)))
	b.expectText("#event-table details[open]", "/tmp/xmrig", "prod agents")
	b.shot("17-events-critical")

	// ATT&CK matrix: a technique's cell opens the Events page filtered by it.
	b.do("attack", chromedp.Click(css(`nav.nav a[href="/attack"]`)), waitPage("attack"))
	b.expectText("#attack-matrix", "Initial Access", "Execution", "Impact", "T1059.004", "Unix Shell", "Escape to Host")
	b.shot("27-attack")
	b.do("attack 24h", chromedp.SetValue(css(`select[name=range]`), "24h"), chromedp.Click(css(`form.toolbar button[type=submit]`)), waitPage("attack"))
	b.expectURL("range=24h")
	b.do("open technique", chromedp.Click(css(`#attack-matrix a.attack-cell[href*="technique=T1059.004"]`)), waitPage("events"))
	b.expectURL("technique=T1059.004")
	b.expectText("#event-table", "Shell started in a container", "Terminal shell <i>in</i> a container")
	b.expectNoText("#event-table", "Executable not in the image", "Image tag latest")
	b.do("open hostile event", chromedp.Click(css(`#event-table tr:first-child td.event-msg summary`)),
		chromedp.WaitVisible(css(`#event-table details[open] code.cmdline`)))
	b.expectText("#event-table details[open]", "LAST-ARG!", `\x0a<img src=x onerror=alert(1)>`, `<svg onload=alert('ctr')>`)
	b.shot("29-events-hostile")

	// Registries: add one through the form, sync it.
	b.do("registries", chromedp.Click(css(`nav.nav a[href="/registries"]`)), waitPage("registries"))
	b.expectText("main", "No registries yet")
	b.do("add registry", chromedp.Click(css(`.page-head a[href="/registries/new"]`)), waitPage("registry_form"))
	b.do("fill registry",
		chromedp.SendKeys(css("#name"), "harbor-prod"), chromedp.SendKeys(css("#url"), "https://harbor.example.com"),
		chromedp.SendKeys(css("#username"), "robot$scanner"), chromedp.SendKeys(css("#password"), "registry-password-1"),
		chromedp.SendKeys(css("#repository_filter"), "payments/*, web/*"), chromedp.SendKeys(css("#tag_filter"), "v*"))
	b.shot("10-registry-form")
	b.do("save registry", chromedp.Submit(css("#name")), waitPage("registries"))
	b.expectText("main", "harbor-prod", "https://harbor.example.com", "robot$scanner", "every 1 day", "never synced")
	b.expectNoText("body", "registry-password-1")
	b.do("sync now", chromedp.Click(css(`form[action$="/sync"] button`)), waitPage("registries"))
	b.expectText("main", "Sync started")
	b.shot("11-registries")

	// Policies: apply the default policy through the form, open it.
	b.do("policies", chromedp.Click(css(`nav.nav a[href="/policies"]`)), waitPage("policies"))
	b.expectText("main", "No policies yet")
	b.do("fill policy", chromedp.SetValue(css("#pol-file"), "default.yaml"), chromedp.SetValue(css("#pol-doc"), string(policy.DefaultPolicyYAML())))
	b.do("apply policy", chromedp.Submit(css("#pol-file")), waitPage("policy"))
	b.expectText("main", "Policy created", "pss-baseline", "podSecurity (baseline)", "critical-vulnerabilities", "No cluster enforces this policy")
	b.shot("18-policy")

	// Runtime rulesets: the catalogue, a rule's condition, each policy's
	// rulesets with the rules' actions, the policies without runtime rules.
	if _, err := policies.New(e.st, nil, nil).Apply(context.Background(), "runtime.yaml", []byte(consoleRuntimePolicy)); err != nil {
		t.Fatal(err)
	}
	b.do("rulesets", chromedp.Click(css(`nav.nav a[href="/rulesets"]`)), waitPage("rulesets"))
	b.expectText("#rules-table thead", "runtime", "namespaces payments", "agent's own rule files")
	b.expectText("#rule-crypto-miner-binary", "terminate")
	b.expectText("#host-groups", "default")
	b.expectText("#rules-table", "Terminal shell in a container", "terminal-shell-in-container", "T1059.004", "Crypto-miner executed")
	b.expectText("main", "Policies without runtime rulesets: default")
	b.do("open rule", chromedp.Click(css(`#rule-terminal-shell-in-container summary`)),
		chromedp.WaitVisible(css(`#rule-terminal-shell-in-container pre.rule-cond`)))
	b.expectText("#rule-terminal-shell-in-container", "proc.tty")
	b.shot("28-rulesets")

	// Artifact Scanner: mint a CI token.
	b.do("scanner", chromedp.Click(css(`nav.nav a[href="/scanner"]`)), waitPage("scanner"))
	b.expectText("main", "mamori image --input image.tar --server "+e.srv.URL+` --token "$MAMORI_TOKEN"`, "MAMORI_TOKEN")
	b.shot("12-scanner")
	b.do("mint CI token", chromedp.SendKeys(css("#tok-name"), "ci-payments"), chromedp.Submit(css("#tok-name")), waitPage("scanner"))
	b.expectText("main", "Token “ci-payments” created", "export MAMORI_TOKEN=mmr_")
	b.shot("13-scanner-token")

	// Tokens.
	b.do("tokens", chromedp.Click(css(`nav.nav a[href="/settings/tokens"]`)), waitPage("tokens"))
	b.expectText("main", "console-admin", "console-viewer", "ci-payments", "operator", "Create a token")
	b.shot("14-tokens")

	// The same pages at 1024 wide.
	b.do("1024 wide", chromedp.EmulateViewport(1024, 768))
	for _, p := range []struct{ path, page, name string }{
		{"/images", "images", "20-images-1024"},
		{img, "image", "21-image-1024"},
		{"/vulnerabilities", "vulns", "22-vulnerabilities-1024"},
		{"/vulnerabilities/DEBIAN-CVE-2023-38545", "vuln", "23-vulnerability-1024"},
		{"/events", "events", "26-events-1024"},
		{"/attack", "attack", "30-attack-1024"},
		{"/rulesets", "rulesets", "31-rulesets-1024"},
		{"/scanner", "scanner", "24-scanner-1024"},
		{"/settings/tokens", "tokens", "25-tokens-1024"},
	} {
		b.do("open "+p.path, chromedp.Navigate(e.srv.URL+p.path), waitPage(p.page))
		b.noHorizontalOverflow(p.path)
		b.shot(p.name)
	}

	// A viewer sees the same data and no write controls.
	b.do("logout", chromedp.EmulateViewport(1440, 900), chromedp.Click(css(`form[action="/logout"] button`)), waitPage("login"))
	b.do("login viewer", chromedp.SendKeys(css("#token"), e.tokens[auth.RoleViewer]),
		chromedp.Click(css(`button[type=submit]`)), waitPage("images"))
	b.do("viewer registries", chromedp.Navigate(e.srv.URL+"/registries"), waitPage("registries"))
	b.expectText("main", "harbor-prod")
	b.expectNoText("main", "Add registry", "Sync now", "Delete")
	b.shot("15-registries-viewer")

	stopListen()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser reported: %s", p)
	}
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	// The first Run starts the browser; its context must have no deadline
	// (the deadline would stop the browser), so bound the steps after it.
	if err := chromedp.Do(ctx); err != nil {
		cancelC()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return tctx
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location()) // best effort, for the message
		b.t.Fatalf("%s (at %s): %v", step, loc, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(css(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func (b *browser) expectText(sel string, want ...string) {
	b.t.Helper()
	s := b.text(sel)
	for _, w := range want {
		if !strings.Contains(s, w) {
			b.t.Errorf("%s: %q not shown", sel, w)
		}
	}
}

func (b *browser) expectNoText(sel string, bad ...string) {
	b.t.Helper()
	s := b.text(sel)
	for _, w := range bad {
		if strings.Contains(s, w) {
			b.t.Errorf("%s: %q shown", sel, w)
		}
	}
}

func (b *browser) expectURL(sub string) {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, sub) {
		b.t.Errorf("at %q (%v), want a URL with %q", loc, err, sub)
	}
}

func (b *browser) noHorizontalOverflow(path string) {
	b.t.Helper()
	over, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		b.t.Fatal(err)
	}
	if over {
		b.t.Errorf("%s: the page scrolls sideways at this width", path)
	}
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// markDoc marks the current document so that waitPage can tell a new page
// load from the page that was already there.
var markDoc = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := chromedp.Evaluate[bool](`window.__mamoriOld = true`)(ctx, t)
	return err
})

// waitPage waits for a new document (not the one markDoc marked) whose body
// has data-page=name, fully loaded, then marks it.
func waitPage(name string) chromedp.Action[chromedp.Void] {
	expr := `!window.__mamoriOld && document.readyState === "complete" && !!document.body && document.body.dataset.page === ` + strconv.Quote(name)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			// Errors while the page navigates (context destroyed) are retried.
			if ok, err := chromedp.Evaluate[bool](expr)(ctx, t); err == nil && ok {
				_, err := markDoc(ctx, t)
				return err
			}
			select {
			case <-ctx.Done():
				page, _ := chromedp.Evaluate[string](`document.body ? String(document.body.dataset.page) : ""`)(context.Background(), t)
				return fmt.Errorf("waiting for page %q (showing %q): %w", name, page, ctx.Err())
			case <-time.After(40 * time.Millisecond):
			}
		}
	})
}
