package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/sign/signtest"
)

// sigRegistry is go-containerregistry's in-process registry on loopback,
// counting requests; repositories under private/ need basic auth, and
// requests to slow/ wait until released (a registry that does not answer
// within the webhook's deadline).
type sigRegistry struct {
	host    string
	hits    atomic.Int64
	slow    atomic.Bool
	release chan struct{}
}

const sigUser, sigPass = "puller", "s3cret"

func newSigRegistry(t testing.TB) *sigRegistry {
	t.Helper()
	r := &sigRegistry{release: make(chan struct{})}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		if strings.HasPrefix(req.URL.Path, "/v2/private/") {
			if u, p, ok := req.BasicAuth(); !ok || u != sigUser || p != sigPass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if strings.HasPrefix(req.URL.Path, "/v2/trusted/slow/") && r.slow.Load() {
			select {
			case <-r.release:
			case <-req.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		select {
		case <-r.release:
		default:
			close(r.release)
		}
		srv.Close()
	})
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes a random image to repo:1 and returns its tag and digest references.
func (r *sigRegistry) push(t testing.TB, repo string) (string, name.Digest) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/" + repo + ":1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: sigUser, Password: sigPass})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.String(), ref.Context().Digest(d.String())
}

// sigDecider is a decider enforcing doc with signature verification and no
// scan data from the server (every image is unknown to it).
func sigDecider(t testing.TB, host, doc string) *decider {
	t.Helper()
	st, err := compile(api.ComponentPolicy{Name: "trusted", Version: 1, Digest: "d", Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	pol := newPolicies("", nil, slog.New(slog.DiscardHandler))
	pol.cur.Store(st)
	lookup := func(_ context.Context, refs []string) (api.ImageLookupResult, error) {
		out := api.ImageLookupResult{}
		for _, r := range refs {
			out.Images = append(out.Images, api.ImageScanData{Ref: r})
		}
		return out, nil
	}
	// The pods' pull secret "regcred": the registry's credentials.
	creds := func(_ context.Context, _ string, names []string) (*pullKeychain, error) {
		kc := &pullKeychain{}
		if len(names) > 0 && names[0] == "regcred" {
			kc.entries = []keyEntry{{host: host, auth: dockerAuth{Username: sigUser, Password: sigPass}}}
		}
		return kc, nil
	}
	stats := &Stats{}
	logger := slog.New(slog.DiscardHandler)
	sig := newSignatures(nil, nil, creds, logger, stats, time.Now)
	return &decider{pol: pol, img: newImages(lookup, time.Minute, time.Hour, time.Now), sig: sig, view: fakeView{},
		cache: newDecisionCache(time.Minute, 100, time.Now), events: newEventSender(func(_ context.Context, evs []model.Event) (api.EventIngestResult, error) {
			return api.EventIngestResult{Accepted: len(evs)}, nil
		}, 100, logger), failure: FailurePolicyIgnore, exclude: map[string]bool{}, log: logger, now: time.Now, stats: stats}
}

func signedPolicy(host, keyPEM, onScanFailure string) string {
	k, _ := json.Marshal(keyPEM)
	return fmt.Sprintf(`apiVersion: mamori.dev/v1
kind: Policy
name: trusted
unknownImages: {action: scan, onScanFailure: %s}
admission:
  - name: signed-only
    action: block
    signatures:
      registries: ["%s/trusted/", "%s/private/"]
      keys: [%s]
`, onScanFailure, host, host, k)
}

func podWithSecret(ns, image string) *admissionv1.AdmissionRequest {
	r := podReq(ns, image, "")
	obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":%q},"spec":{"imagePullSecrets":[{"name":"regcred"}],"containers":[{"name":"c","image":%q}]}}`, ns, image)
	r.Object.Raw = []byte(obj)
	return r
}

// TestWebhookSignatures: a signatures rule in block mode, on images signed
// in the test and pushed to the in-process registry: signed → admitted;
// unsigned, signed by another key, tampered after signing → denied naming
// the policy, the rule and the image; a private image verified with the
// pod's pull secret; results reused from the cache without a registry
// request; a registry that does not answer within the deadline → the
// policy's onScanFailure.
func TestWebhookSignatures(t *testing.T) {
	reg := newSigRegistry(t)
	key, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: sigUser, Password: sigPass})
	signed, signedD := reg.push(t, "trusted/signed")
	unsigned, _ := reg.push(t, "trusted/unsigned")
	otherRef, otherD := reg.push(t, "trusted/other")
	private, privateD := reg.push(t, "private/signed")
	uncovered, _ := reg.push(t, "elsewhere/app")
	for _, s := range []struct {
		k *signtest.Key
		d name.Digest
	}{{key, signedD}, {other, otherD}, {key, privateD}} {
		if err := s.k.Sign(s.d, auth); err != nil {
			t.Fatal(err)
		}
	}
	// Tampered: signed, then the tag pushed again with other content and
	// the signature copied next to the new digest.
	tampered, tamperedD := reg.push(t, "trusted/tampered")
	if err := key.Sign(tamperedD); err != nil {
		t.Fatal(err)
	}
	_, newD := reg.push(t, "trusted/tampered")
	sigImg, err := remote.Image(tamperedD.Context().Tag(strings.Replace(tamperedD.DigestStr(), ":", "-", 1) + ".sig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(newD.Context().Tag(strings.Replace(newD.DigestStr(), ":", "-", 1)+".sig"), sigImg); err != nil {
		t.Fatal(err)
	}

	d := sigDecider(t, reg.host, signedPolicy(reg.host, key.PublicPEM, "allow"))
	cases := []struct {
		name, image string
		secret      bool
		allowed     bool
		msg         []string
	}{
		{"signed", signed, false, true, nil},
		{"signed, by digest", signedD.String(), false, true, nil},
		{"unsigned", unsigned, false, false, []string{`policy "trusted" rule "signed-only": signatures at spec.containers[0].image`, `image "` + unsigned + `" must be signed by one of key sha256:`, "no signature found"}},
		{"another key", otherRef, false, false, []string{`rule "signed-only"`, `image "` + otherRef + `"`, "does not verify with any trusted key"}},
		{"tampered after signing", tampered, false, false, []string{`rule "signed-only"`, `image "` + tampered + `"`, "signed payload is for " + tamperedD.DigestStr()}},
		{"private with the pull secret", private, true, true, nil},
		{"not covered", uncovered, false, true, nil},
		// Covered (the policy's globs match case-insensitively), but no
		// registry client reads it: refused, not left to onScanFailure.
		{"invalid reference", reg.host + "/trusted/Signed:1", false, false, []string{`rule "signed-only"`, "not a valid image reference"}},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := podReq("shop", c.image, "")
			if c.secret {
				req = podWithSecret("shop", c.image)
			}
			t0 := time.Now()
			before := reg.hits.Load()
			rctx, cancel := context.WithTimeout(ctx, 9500*time.Millisecond)
			resp := d.Decide(rctx, req)
			cancel()
			text := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				text = resp.Result.Message + "\n" + text
			}
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed %v, want %v:\n%s", resp.Allowed, c.allowed, text)
			}
			for _, m := range c.msg {
				if !strings.Contains(text, m) {
					t.Errorf("%q not in\n%s", m, text)
				}
			}
			t.Logf("%s: %v, %d registry requests", c.name, time.Since(t0).Round(time.Microsecond), reg.hits.Load()-before)
		})
	}
	st := d.stats
	// The digest reference was answered from the tag's verification.
	if st.Verifications.Load() != 5 || st.SignatureRefused.Load() != 4 || st.SignatureErrors.Load() != 0 {
		t.Errorf("verifications %d, refused %d, errors %d", st.Verifications.Load(), st.SignatureRefused.Load(), st.SignatureErrors.Load())
	}
	t.Logf("%d verifications, %d registry requests, %v each on average", st.Verifications.Load(), st.SignatureRoundTrips.Load(),
		time.Duration(st.VerifyNanos.Load()/st.Verifications.Load()))

	// Reused: the same images again (another pod template, so the decision
	// cache does not answer): no registry request, cache hits counted.
	before, hits := reg.hits.Load(), st.SignatureCacheHits.Load()
	for _, img := range []string{signed, unsigned, otherRef, signedD.String()} {
		req := podReq("shop", img, `,"env":[{"name":"X","value":"again"}]`)
		if resp := d.Decide(ctx, req); resp.Allowed != (img == signed || img == signedD.String()) {
			t.Fatalf("%s again: %+v", img, resp)
		}
	}
	if n := reg.hits.Load() - before; n != 0 || st.SignatureCacheHits.Load()-hits != 4 {
		t.Errorf("cached: %d registry requests, %d cache hits", n, st.SignatureCacheHits.Load()-hits)
	}
	// The private image without the pull secret: the registry refuses the
	// verifier; that is a verification that could not be done, and the
	// policy's onScanFailure (allow) admits it with a warning.
	d.sig.results = map[string]*sigEntry{}
	d.sig.tags = map[string]tagEntry{}
	resp := d.Decide(ctx, podReq("other", private, `,"env":[{"name":"X","value":"no-secret"}]`))
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), "registry error") {
		t.Fatalf("private image without credentials: %+v", resp)
	}

	// A registry that does not answer within the deadline.
	slow, slowD := reg.push(t, "trusted/slow/app")
	if err := key.Sign(slowD); err != nil {
		t.Fatal(err)
	}
	reg.slow.Store(true)
	deciders := map[string]*decider{}
	for _, fail := range []string{"allow", "block"} {
		t.Run("deadline, onScanFailure "+fail, func(t *testing.T) {
			d := sigDecider(t, reg.host, signedPolicy(reg.host, key.PublicPEM, fail))
			deciders[fail] = d
			rctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			resp := d.Decide(rctx, podReq("shop", slow, ""))
			took := time.Since(t0)
			text := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				text = resp.Result.Message + "\n" + text
			}
			if resp.Allowed != (fail == "allow") || !strings.Contains(text, "not verified within the webhook's deadline") ||
				!strings.Contains(text, `rule "signed-only"`) {
				t.Fatalf("onScanFailure %s: allowed %v\n%s", fail, resp.Allowed, text)
			}
			if took > 300*time.Millisecond || d.stats.SignatureTimeouts.Load() != 1 {
				t.Fatalf("waited %v (half the deadline is 200 ms), %d timeouts", took, d.stats.SignatureTimeouts.Load())
			}
		})
	}
	close(reg.release)
	// Released, the verification that went on serves the next request,
	// from the cache.
	d = deciders["allow"]
	d.sig.wait()
	before = reg.hits.Load()
	resp = d.Decide(ctx, podReq("shop", slow, ""))
	if !resp.Allowed || strings.Contains(strings.Join(resp.Warnings, "\n"), "signed-only") || reg.hits.Load() != before {
		t.Fatalf("after the slow registry answered: %+v (%d registry requests)", resp, reg.hits.Load()-before)
	}
}

// BenchmarkSignatureCheck: a covered image's check once verified (the
// cache: no registry request) and uncached (a verification against the
// in-process registry each time).
func BenchmarkSignatureCheck(b *testing.B) {
	reg := newSigRegistry(b)
	key, err := signtest.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	_, d := reg.push(b, "trusted/bench")
	if err := key.Sign(d); err != nil {
		b.Fatal(err)
	}
	dec := sigDecider(b, reg.host, signedPolicy(reg.host, key.PublicPEM, "allow"))
	ev := dec.pol.current().p.Eval
	reqs := ev.SignatureRequirements()
	refs := []string{d.String()}
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if o := dec.sig.check(ctx, reqs, refs, sigRequest{})[d.String()][reqs[0].Trust]; !o.check.Verified {
				b.Fatal(o.check.Reason)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			dec.sig.mu.Lock()
			clear(dec.sig.results)
			clear(dec.sig.verifiers)
			dec.sig.mu.Unlock()
			if o := dec.sig.check(ctx, reqs, refs, sigRequest{})[d.String()][reqs[0].Trust]; !o.check.Verified {
				b.Fatal(o.check.Reason)
			}
		}
	})
}
