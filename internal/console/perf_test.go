package console

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/store"
)

// Scale of the latency test: 100,000 vulnerability rows (vulnerability ×
// package × image), as in issue 5's acceptance numbers.
const (
	perfImages      = 50
	perfRowsPerImg  = 2000
	perfDistinctIDs = 20000
	perfPackages    = 400
	// perfBudget is the p95 the issue asks for.
	perfBudget = 200 * time.Millisecond
	// perfRuns per URL: enough for a p95 that is not the maximum of a handful.
	perfRuns = 40
	// perfAttempts: a page over budget is measured again this many times in all.
	perfAttempts = 3
)

var perfSeverities = []struct {
	sev  model.Severity
	upTo int // cumulative percent
}{
	{model.SeverityCritical, 5}, {model.SeverityHigh, 25}, {model.SeverityMedium, 65},
	{model.SeverityLow, 88}, {model.SeverityNegligible, 95}, {model.SeverityUnknown, 100},
}

// fillPerfStore ingests perfImages images whose vulnerability rows add up to
// perfImages × perfRowsPerImg, drawn from perfDistinctIDs advisories over
// perfPackages Debian packages (deterministic).
func fillPerfStore(tb testing.TB, st store.Store) {
	tb.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 100000))
	pkgs := make([]model.Package, perfPackages)
	for i := range pkgs {
		pkgs[i] = debPkg(fmt.Sprintf("lib%s%d", []string{"ssl", "xml", "curl", "z", "png", "gnutls", "krb5-", "sqlite"}[i%8], i), fmt.Sprintf("1.%d.%d-1+deb12u1", i%17, i%5), "")
	}
	advisory := func(n int) (string, model.Severity, float64, string) {
		r := rand.New(rand.NewPCG(uint64(n), 7))
		p := r.IntN(100)
		sev := model.SeverityUnknown
		for _, s := range perfSeverities {
			if p < s.upTo {
				sev = s.sev
				break
			}
		}
		score := float64(int(sev)*2) - r.Float64()*1.5
		fixed := ""
		if r.IntN(10) < 6 {
			fixed = "9.9.9-1+deb12u9"
		}
		return fmt.Sprintf("DEBIAN-CVE-%d-%05d", 2015+n%10, n), sev, score, fixed
	}
	start := time.Now()
	for img := 0; img < perfImages; img++ {
		seen := map[[2]int]bool{}
		vulns := make([]model.Vulnerability, 0, perfRowsPerImg)
		for len(vulns) < perfRowsPerImg {
			n, pi := rng.IntN(perfDistinctIDs), rng.IntN(perfPackages)
			if seen[[2]int{n, pi}] {
				continue
			}
			seen[[2]int{n, pi}] = true
			id, sev, score, fixed := advisory(n)
			vector := ""
			if sev == model.SeverityUnknown {
				score = 0
			} else {
				vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
			}
			v := debVuln(id, pkgs[pi], sev, score, vector, fixed, "Synthetic advisory "+id+" for the console latency test", strings.TrimPrefix(id, "DEBIAN-"))
			vulns = append(vulns, v)
		}
		res := &model.Result{
			SchemaVersion: model.SchemaVersion, Tool: model.Tool{Name: "mamori", Version: "perf"},
			ScanID: fmt.Sprintf("perf-%d", img), CreatedAt: time.Now().Add(-time.Duration(img) * time.Minute),
			Target: model.Target{Name: fmt.Sprintf("registry.local/team-%d/service-%d:1.0.%d", img%7, img, img), Type: model.TargetImage,
				Digest: fmt.Sprintf("sha256:%064x", img+1)},
			Inventory:       model.Inventory{OS: &model.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}, Packages: pkgs},
			Vulnerabilities: vulns,
		}
		if _, err := st.IngestScan(ctx, res); err != nil {
			tb.Fatalf("ingest perf image %d: %v", img, err)
		}
	}
	tb.Logf("ingested %d images × %d rows = %d vulnerability rows in %v", perfImages, perfRowsPerImg, perfImages*perfRowsPerImg, time.Since(start).Round(time.Millisecond))
}

// perfURLs are the pages measured: the vulnerabilities list with each kind
// of filter and a deep page, a detail page, and the images dashboard.
var perfURLs = []string{
	"/vulnerabilities",
	"/vulnerabilities?severity=critical&severity=high",
	"/vulnerabilities?q=CVE-2019-01",
	"/vulnerabilities?q=libxml",
	"/vulnerabilities?cvssMin=7&cvssMax=9.5&fixable=true",
	"/vulnerabilities?sort=images",
	"/vulnerabilities?sort=cvss&reverse=true",
	"/vulnerabilities?page=200",
	"/vulnerabilities/DEBIAN-CVE-2015-00010",
	"/images",
}

// TestVulnerabilitiesPageLatency100k measures the console pages over a
// SQLite store holding 100,000 vulnerability rows, through HTTP with a
// logged-in session, and fails when a page's p95 is over 200 ms. Filling
// the store takes minutes (100,000 rows through IngestScan), so it runs only
// with MAMORI_TEST_PERF=1.
func TestVulnerabilitiesPageLatency100k(t *testing.T) {
	if os.Getenv("MAMORI_TEST_PERF") != "1" {
		t.Skip("set MAMORI_TEST_PERF=1 to run the 100,000-row latency test (it ingests for a few minutes)")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mamori.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fillPerfStore(t, st)
	e := perfEnv(t, st)
	c := e.login(auth.RoleViewer)

	for _, u := range perfURLs {
		// Warm up once (first query plans, page cache).
		if code, body, _ := c.get(u); code != http.StatusOK {
			t.Fatalf("GET %s: %d", u, code)
		} else if strings.HasPrefix(u, "/vulnerabilities?") && !strings.Contains(body, "Showing") {
			t.Fatalf("GET %s: no rows", u)
		}
		// A page over budget is measured again, up to perfAttempts times:
		// the test shares the machine with the other packages' tests, and a
		// burst of their work is not the page's latency. It fails when
		// every attempt is over budget.
		var p95 time.Duration
		for attempt := 1; attempt <= perfAttempts; attempt++ {
			lat := make([]time.Duration, 0, perfRuns)
			for i := 0; i < perfRuns; i++ {
				t0 := time.Now()
				code, _, _ := c.get(u)
				lat = append(lat, time.Since(t0))
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d", u, code)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			var p50 time.Duration
			p50, p95 = lat[len(lat)/2], lat[(len(lat)*95+99)/100-1]
			t.Logf("%-55s p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms (attempt %d)", u, ms(p50), ms(p95), ms(lat[len(lat)-1]), attempt)
			if p95 <= perfBudget {
				break
			}
		}
		if p95 > perfBudget {
			t.Errorf("GET %s: p95 %v over the %v budget in each of %d attempts", u, p95, perfBudget, perfAttempts)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perfEnv serves a console over st with one token per role.
func perfEnv(tb testing.TB, st store.Store) *env {
	tb.Helper()
	t, _ := tb.(*testing.T)
	a, err := auth.New(st)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{t: t, st: st, authn: a, tokens: map[auth.Role]string{}}
	for _, role := range []auth.Role{auth.RoleViewer} {
		tok, rec, err := auth.NewToken("perf-"+string(role), role, "", time.Time{})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := st.CreateToken(context.Background(), rec); err != nil {
			tb.Fatal(err)
		}
		e.tokens[role] = tok
	}
	c, err := New(st, a)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = newTestServerTB(tb, c)
	return e
}

// BenchmarkVulnerabilitiesPage100k renders the default vulnerabilities page
// (the handler alone, no network) over 100,000 rows.
func BenchmarkVulnerabilitiesPage100k(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "mamori.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fillPerfStore(b, st)
	a, err := auth.New(st)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(st, a)
	if err != nil {
		b.Fatal(err)
	}
	tok, rec, _ := auth.NewToken("bench", auth.RoleViewer, "", time.Time{})
	if _, err := st.CreateToken(ctx, rec); err != nil {
		b.Fatal(err)
	}
	for _, u := range []string{"/vulnerabilities", "/vulnerabilities?severity=critical&q=libssl", "/images"} {
		b.Run(url.PathEscape(u), func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				rw := &discardWriter{h: http.Header{}}
				c.ServeHTTP(rw, req)
				if rw.code != http.StatusOK {
					b.Fatalf("GET %s: %d", u, rw.code)
				}
			}
		})
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }

// TestAttackPageLatency100k measures the ATT&CK matrix and the Events page
// it links to over a SQLite store holding 100,000 events (70% with a
// technique, over 30 days, 3 clusters, 12 namespaces, 20 nodes), through
// HTTP with a logged-in session, and fails when a page's p95 is over the
// console's 200 ms budget. It runs with MAMORI_TEST_PERF=1 (filling takes
// about a minute).
func TestAttackPageLatency100k(t *testing.T) {
	if os.Getenv("MAMORI_TEST_PERF") != "1" {
		t.Skip("set MAMORI_TEST_PERF=1 to run the 100,000-event latency test")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mamori.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(3, 100000))
	pairs := [][2]string{{"TA0002", "T1059.004"}, {"TA0040", "T1496"}, {"TA0004", "T1611"}, {"TA0006", "T1552.001"},
		{"TA0003", "T1525"}, {"TA0011", "T1105"}, {"TA0005", "T1070.002"}, {"TA0007", "T1046"}, {"TA0002", "T1609"}, {"TA0004", "T1548.001"}}
	start := time.Now()
	batch := make([]store.EventRecord, 0, 1000)
	for i := range 100_000 {
		cl := []string{"prod", "staging", "edge"}[rng.IntN(3)]
		e := model.Event{ID: fmt.Sprintf("perf-%06d", i), Time: now.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))),
			Source: model.SourceRuntime, Module: "sensor", Cluster: cl, Node: fmt.Sprintf("%s-node-%02d", cl, rng.IntN(20)),
			Namespace: fmt.Sprintf("team-%02d", rng.IntN(12)), Pod: fmt.Sprintf("app-%d", rng.IntN(500)),
			Container: &model.ContainerRef{ID: fmt.Sprintf("%012x", rng.Uint64()), Name: "app", Image: "registry.local/app:1"},
			Severity:  model.SeverityHigh, Action: model.ActionLog, Message: "runtime detection",
			Process: &model.Process{PID: 100 + i, Exe: "/bin/sh", Args: []string{"sh", "-c", "id"}}}
		if rng.IntN(10) < 7 {
			p := pairs[min(int(float64(len(pairs))*rng.Float64()*rng.Float64()), len(pairs)-1)]
			e.Tactic, e.Technique, e.Rule.ID = p[0], p[1], "rule-"+p[1]
		} else {
			e.Source, e.Module, e.Rule.ID, e.Process, e.Container = model.SourceAdmission, "webhook", "pss-baseline", nil, nil
		}
		batch = append(batch, store.EventRecord{Event: e, ReceivedAt: now})
		if len(batch) == cap(batch) {
			if _, err := st.InsertEvents(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	t.Logf("stored 100,000 events in %v", time.Since(start).Round(time.Millisecond))
	e := perfEnv(t, st)
	c := e.login(auth.RoleViewer)
	for _, u := range []string{"/attack", "/attack?range=24h", "/attack?range=30d", "/attack?range=all",
		"/attack?range=30d&cluster=prod", "/attack?range=all&cluster=prod&namespace=team-03", "/attack?range=7d&node=edge-node-07",
		"/events?technique=T1059.004&tactic=TA0002", "/events?technique=T1496&cluster=prod&since=" + now.Add(-7*24*time.Hour).Format(time.RFC3339),
		"/rulesets"} {
		if code, _, _ := c.get(u); code != http.StatusOK {
			t.Fatalf("GET %s: %d", u, code)
		}
		lat := make([]time.Duration, 0, perfRuns)
		for range perfRuns {
			t0 := time.Now()
			code, _, _ := c.get(u)
			lat = append(lat, time.Since(t0))
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d", u, code)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p95 := lat[len(lat)/2], lat[(len(lat)*95+99)/100-1]
		t.Logf("%-70s p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms", u, ms(p50), ms(p95), ms(lat[len(lat)-1]))
		if p95 > perfBudget {
			t.Errorf("GET %s: p95 %v over the %v budget", u, p95, perfBudget)
		}
	}
}
