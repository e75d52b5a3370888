package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mamori/internal/auth"
	"mamori/internal/compliance/posture"
	"mamori/internal/store"
)

// TestComplianceBrowser clicks through the Compliance page in headless
// Chromium: the score chart of stored snapshots, the standards' tabs, a
// control's drill-down and an evidence link into the console, with
// screenshots (MAMORI_SCREENSHOT_DIR) and no console error or CSP
// violation. MAMORI_TEST_BROWSER=1, as TestBrowser.
func TestComplianceBrowser(t *testing.T) {
	if os.Getenv("MAMORI_TEST_BROWSER") != "1" {
		t.Skip("set MAMORI_TEST_BROWSER=1 to run the headless Chromium test")
	}
	shots := os.Getenv("MAMORI_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	bctx := context.Background()
	// Three postures over time: the chart has three points per group.
	for i, ns := range []posture.Namespace{{Name: "shop", Pods: 2}, {Name: "shop", Pods: 2, DefaultDenyIngress: true},
		{Name: "shop", Pods: 2, DefaultDenyIngress: true, DefaultDenyEgress: true, Policies: []string{"deny-all"}}} {
		b, _ := json.Marshal(posture.Cluster{Cluster: "prod", CollectedAt: time.Now(), BindingsReviewed: 12, Namespaces: []posture.Namespace{ns}})
		if err := e.st.PutClusterPosture(bctx, store.ClusterPosture{Cluster: "prod", CollectedAt: time.Now(), ReceivedAt: time.Now(), Body: string(b)}); err != nil {
			t.Fatal(err)
		}
		c, err := New(e.st, e.authn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.opt.services.Assessments.Reassess(bctx, fmt.Sprintf("test %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newBrowser(t)
	var mu sync.Mutex
	var problems []string
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for m, err := range chromedp.Console(lctx) {
			if err != nil || lctx.Err() != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.Text)
				mu.Unlock()
			}
		}
	}()
	b := &browser{t: t, ctx: ctx, base: e.srv.URL, dir: shots}
	b.do("viewport", chromedp.EmulateViewport(1440, 900))
	b.do("open login", chromedp.Navigate(e.srv.URL+"/login"), waitPage("login"))
	b.do("login", chromedp.SendKeys(css("#token"), e.tokens[auth.RoleOperator]), chromedp.Click(css(`button[type=submit]`)), waitPage("images"))
	b.do("compliance", chromedp.Click(css(`nav.nav a[href="/compliance"]`)), waitPage("compliance"))
	b.expectText("main", "NIST SP 800-190", "Score per group over time", "3 snapshots", "4.3.3", "not assessed: agent not deployed")
	b.do("chart drawn", chromedp.WaitVisible(css(`#score-chart svg polyline`)))
	b.shot("compliance-01-nist")
	b.do("drill down", chromedp.Click(css(`a[href="/compliance/controls/4.1.1?standard=nist-800-190"]`)), waitPage("compliance_control"))
	b.expectText("main", "Image vulnerabilities", "Countermeasure", "Evidence", "registry.local/payments/api:1.4.2")
	b.noHorizontalOverflow("/compliance/controls/4.1.1")
	b.shot("compliance-02-control-4.1.1")
	b.do("evidence link", chromedp.Click(css(`#evidence-table a[href^="/images/"]`)), waitPage("image"))
	b.do("back", chromedp.Navigate(e.srv.URL+"/compliance?standard=cis-kubernetes"), waitPage("compliance"))
	b.expectText("main", "CIS-K8s-4.2.1", "control-plane")
	b.shot("compliance-03-cis-kubernetes")
	b.do("re-assess", chromedp.Click(css(`#reassess`)), waitPage("compliance"))
	b.expectText(".flash", "re-assessed")
	b.do("narrow", chromedp.EmulateViewport(1024, 900), chromedp.Navigate(e.srv.URL+"/compliance"), waitPage("compliance"))
	b.noHorizontalOverflow("/compliance")
	b.shot("compliance-04-narrow")
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("browser console: %v", problems)
	}
}
