package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/google/go-containerregistry/pkg/name"

	"mamori/internal/api"
	"mamori/internal/model"
)

type fakeView struct{}

func (fakeView) NamespaceLabels(context.Context, string) map[string]string {
	return map[string]string{"env": "prod"}
}
func (fakeView) PodLabels(context.Context, string, string) map[string]string {
	return map[string]string{"app": "web"}
}

const testPolicy = `apiVersion: mamori.dev/v1
kind: Policy
name: t
unknownImages: {action: allow}
admission:
  - {name: baseline, action: block, podSecurity: {level: baseline}}
  - {name: nonroot, action: log, runAsNonRoot: {}}
  - {name: no-exec, action: block, podAccess: {operations: [exec]}}
  - {name: critical, action: block, vulnerabilities: {severity: critical}}
exceptions:
  - {name: legacy, reason: migrating (SEC-1), namespaces: [legacy], rules: [baseline]}
`

type testDecider struct {
	*decider
	lookups atomic.Int64
	fail    atomic.Bool
	sent    []model.Event
}

func newTestDecider(t *testing.T, failure string) *testDecider {
	t.Helper()
	td := &testDecider{}
	st, err := compile(api.ComponentPolicy{Name: "t", Version: 3, Digest: "d", Document: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	pol := newPolicies("", nil, slog.New(slog.DiscardHandler))
	pol.cur.Store(st)
	lookup := func(_ context.Context, refs []string) (api.ImageLookupResult, error) {
		td.lookups.Add(1)
		if td.fail.Load() {
			return api.ImageLookupResult{}, errors.New("connection refused")
		}
		out := api.ImageLookupResult{}
		for _, r := range refs {
			d := api.ImageScanData{Ref: r}
			if strings.HasPrefix(r, "scanned/") {
				d.Found, d.Digest, d.ScanID = true, "sha256:"+strings.Repeat("a", 64), "s1"
				d.Result = &model.Result{Target: model.Target{Name: r, Type: model.TargetImage}, CreatedAt: time.Now()}
				if strings.Contains(r, "vuln") {
					d.Result.Vulnerabilities = []model.Vulnerability{{ID: "CVE-2026-1", Severity: model.SeverityCritical,
						Package: model.PackageRef{Name: "openssl", Version: "1"}}}
				}
			}
			out.Images = append(out.Images, d)
		}
		return out, nil
	}
	now := time.Now
	td.decider = &decider{pol: pol, img: newImages(lookup, time.Minute, time.Hour, now), view: fakeView{},
		cache: newDecisionCache(time.Minute, 100, now), events: newEventSender(func(_ context.Context, evs []model.Event) (api.EventIngestResult, error) {
			td.sent = append(td.sent, evs...)
			return api.EventIngestResult{Accepted: len(evs)}, nil
		}, 100, slog.New(slog.DiscardHandler)),
		failure: failure, exclude: map[string]bool{"kube-system": true}, log: slog.New(slog.DiscardHandler), now: now, stats: &Stats{}}
	return td
}

func podReq(ns, image, sc string) *admissionv1.AdmissionRequest {
	obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":%q},"spec":{"containers":[{"name":"c","image":%q%s}]}}`, ns, image, sc)
	return &admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Name: "p", Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: []byte(obj)}, UserInfo: authenticationv1.UserInfo{Username: "alice"}}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	td := newTestDecider(t, FailurePolicyIgnore)
	priv := `,"securityContext":{"privileged":true}`
	nonroot := `,"securityContext":{"runAsNonRoot":true}`
	cases := []struct {
		name    string
		req     *admissionv1.AdmissionRequest
		allowed bool
		msg     []string // in the denial or the warnings
	}{
		{"compliant", podReq("shop", "scanned/web:1", nonroot), true, nil},
		{"restricted only warns", podReq("shop", "scanned/web:1", ""), true, []string{`rule "nonroot"`, "runAsNonRoot"}},
		{"privileged denied", podReq("shop", "scanned/web:1", priv), false,
			[]string{`policy "t" rule "baseline": privileged at spec.containers[0].securityContext.privileged`}},
		{"critical vulnerability denied", podReq("shop", "scanned/vuln:1", nonroot), false, []string{`rule "critical"`, "CVE-2026-1"}},
		{"unknown image allowed and logged", podReq("shop", "new/app:1", nonroot), true, []string{"never scanned"}},
		{"exception in force", podReq("legacy", "scanned/web:1", priv+``), true, []string{"waived", `"legacy"`, "migrating"}},
		{"excluded namespace", podReq("kube-system", "scanned/web:1", priv), true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := td.Decide(ctx, c.req)
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, c.allowed, resp)
			}
			text := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				text += "\n" + resp.Result.Message
			}
			for _, m := range c.msg {
				if !strings.Contains(text, m) {
					t.Errorf("%q not in %q", m, text)
				}
			}
			if c.msg == nil && text != "" {
				t.Errorf("unexpected text %q", text)
			}
		})
	}
	// exec: denied, naming the rule; an event records it.
	exec := &admissionv1.AdmissionRequest{UID: "u2", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, SubResource: "exec", Namespace: "shop", Name: "p",
		Operation: admissionv1.Connect, Object: runtime.RawExtension{Raw: []byte(`{"kind":"PodExecOptions","container":"c","command":["sh"]}`)}}
	if resp := td.Decide(ctx, exec); resp.Allowed || !strings.Contains(resp.Result.Message, `rule "no-exec"`) {
		t.Fatalf("exec: %+v", resp)
	}
	// Pods of one template: one lookup and one evaluation, then the cache.
	hits := td.stats.CacheHits.Load()
	for i := 0; i < 5; i++ {
		td.Decide(ctx, podReq("shop", "scanned/web:2", nonroot))
	}
	if got := td.stats.CacheHits.Load() - hits; got != 4 {
		t.Errorf("cache hits %d, want 4", got)
	}
	// Dry run: the same decision, no event.
	dry := podReq("shop", "scanned/web:1", priv)
	yes := true
	dry.DryRun = &yes
	td.events.queue = nil
	if resp := td.Decide(ctx, dry); resp.Allowed || td.events.queued() != 0 {
		t.Fatalf("dry run: %+v, %d events queued", resp, td.events.queued())
	}
	if err := td.events.flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServerUnreachable: decisions come from the cache, then the failure policy.
func TestServerUnreachable(t *testing.T) {
	ctx := context.Background()
	for _, fp := range []string{FailurePolicyIgnore, FailurePolicyFail} {
		t.Run(fp, func(t *testing.T) {
			td := newTestDecider(t, fp)
			nonroot := `,"securityContext":{"runAsNonRoot":true}`
			if resp := td.Decide(ctx, podReq("shop", "scanned/vuln:1", nonroot)); resp.Allowed {
				t.Fatal("a critical vulnerability allowed with the server up")
			}
			td.fail.Store(true)
			td.cache = newDecisionCache(time.Minute, 100, time.Now) // no decision cache: image data only
			td.img.ttl = 0                                          // every entry past its TTL: the stale window serves
			if resp := td.Decide(ctx, podReq("shop", "scanned/vuln:1", nonroot)); resp.Allowed ||
				!strings.Contains(strings.Join(resp.Warnings, " "), "cached scan data") {
				t.Fatalf("cached image data not used: %+v", resp)
			}
			resp := td.Decide(ctx, podReq("shop", "scanned/other:1", nonroot))
			if resp.Allowed != (fp == FailurePolicyIgnore) {
				t.Fatalf("uncached image with %s: %+v", fp, resp)
			}
			text := strings.Join(resp.Warnings, " ")
			if resp.Result != nil {
				text += resp.Result.Message
			}
			if !strings.Contains(text, "unreachable") {
				t.Fatalf("no word of the server: %q", text)
			}
			// Workload rules still apply without the server.
			if resp := td.Decide(ctx, podReq("shop", "scanned/other:1", `,"securityContext":{"privileged":true}`)); resp.Allowed {
				t.Fatal("privileged pod allowed while the server is away")
			}
		})
	}
}

func TestBoundedAnswer(t *testing.T) {
	var ws []string
	for i := 0; i < 500; i++ {
		ws = append(ws, fmt.Sprintf("warning %d with a\nnewline", i))
	}
	out := boundWarnings(ws)
	size := 0
	for _, w := range out {
		size += len(w)
		if strings.ContainsAny(w, "\n\r\x00") {
			t.Fatalf("control character in %q", w)
		}
	}
	if len(out) > maxWarnings || size > maxWarningBytes || !strings.Contains(out[len(out)-1], "more warnings") {
		t.Fatalf("%d warnings, %d bytes, last %q", len(out), size, out[len(out)-1])
	}
	msg := strings.Repeat("policy \"p\" rule \"r\": privileged at spec.containers[0]\n", 2000)
	if got := boundLines(msg, maxDenial); len(got) > maxDenial || !strings.Contains(got, "more violations") {
		t.Fatalf("denial of %d bytes: ...%q", len(got), got[len(got)-80:])
	}
}

func TestPullSecrets(t *testing.T) {
	es, err := parseDockerConfig([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"a","password":"b"}}}`), true)
	if err != nil || len(es) != 2 {
		t.Fatalf("%+v %v", es, err)
	}
	kc := &pullKeychain{entries: es}
	for _, c := range []struct{ reg, user string }{{"docker.io", "u"}, {"index.docker.io", "u"}, {"127.0.0.1:5000", "a"}, {"ghcr.io", ""}} {
		r, err := name.NewRegistry(c.reg)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := kc.Resolve(r)
		cfg, _ := a.Authorization()
		if cfg.Username != c.user {
			t.Errorf("%s: user %q, want %q", c.reg, cfg.Username, c.user)
		}
	}
	for _, bad := range []string{`{"auths":{"h":{"auth":"not base64!"}}}`, `{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}`, `{`} {
		if _, err := parseDockerConfig([]byte(bad), true); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// BenchmarkDecide is the webhook's decision for a restricted pod of two
// containers under the test policy: the decision cache's case (pods of one
// template) and a different template each time (full evaluation).
func BenchmarkDecide(b *testing.B) {
	td := newTestDecider(&testing.T{}, FailurePolicyIgnore)
	ctx := context.Background()
	sc := `,"securityContext":{"runAsNonRoot":true}`
	b.Run("cached", func(b *testing.B) {
		req := podReq("shop", "scanned/web:1", sc)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			td.Decide(ctx, req)
		}
	})
	b.Run("evaluated", func(b *testing.B) {
		reqs := make([]*admissionv1.AdmissionRequest, 1024)
		for i := range reqs {
			reqs[i] = podReq("shop", "scanned/web:1", sc+fmt.Sprintf(`,"env":[{"name":"N","value":"%d"}]`, i))
		}
		td.cache = newDecisionCache(time.Minute, 1, time.Now)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			td.Decide(ctx, reqs[i%len(reqs)])
		}
	})
}
