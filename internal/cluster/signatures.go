package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"mamori/internal/policy"
	"mamori/internal/sign"
)

// Signature verification defaults, each with its reason.
const (
	// verifiedTTL: a verified digest stays verified under the same keys (its
	// content cannot change); the entry only bounds the memory of images no
	// longer deployed.
	verifiedTTL = 10 * time.Minute
	// refusedTTL: a refused image is asked again after it, so an image
	// signed after a denial is admitted within a minute.
	refusedTTL = time.Minute
	// tagTTL: how long a tag's digest, read from the registry, is used. A
	// tag moved within it is judged by its previous digest: the window the
	// image data of the server has too (DefaultImageTTL). Pin images by
	// digest to close it.
	tagTTL = DefaultImageTTL
	// maxSignatureEntries bounds each cache (results, tags): an entry is
	// a few hundred bytes.
	maxSignatureEntries = 4096
	// maxSignatureWait bounds how long a request waits for its
	// verifications (at most half of what is left of the webhook's
	// deadline), leaving the rest to inline scans.
	maxSignatureWait = 4 * time.Second
	// signatureTimeout bounds one verification, which goes on after the
	// request that started it stopped waiting: its result serves the next.
	signatureTimeout = 30 * time.Second
	// signatureParallel bounds the verifications running at once (each
	// is a handful of small registry requests).
	signatureParallel = 8
	// maxVerifiers bounds the verifiers kept (one per rule, registry
	// credentials and transport).
	maxVerifiers = 256
)

// sigOutcome is one image's verification under one rule, as a request sees it.
type sigOutcome struct {
	check policy.SignatureCheck
	// incomplete: the verification did not finish (the request's share of
	// the deadline ran out, or the registry or its credentials could not be
	// read): the policy's onScanFailure decides, as for an image that
	// could not be scanned.
	incomplete bool
	// key identifies the outcome in the decision cache.
	key string
}

// sigEntry is a cached verification result.
type sigEntry struct {
	check      policy.SignatureCheck
	incomplete bool
	at         time.Time
	ttl        time.Duration
}

type tagEntry struct {
	digest string // repository@sha256:…
	at     time.Time
}

// sigFlight is a verification in progress; waiters block on done.
type sigFlight struct {
	done chan struct{}
	out  sigOutcome
}

// verifyCreds reads the registry credentials of a pod (its image pull
// secrets): the same keychain inline scans pull with.
type verifyCreds func(ctx context.Context, namespace string, pullSecrets []string) (*pullKeychain, error)

// signatures verifies the signatures of the images of admitted workloads
// against the policy's signatures rules, with internal/sign, caching
// results by (digest, rule trust) and tags' digests.
type signatures struct {
	root      *root.TrustedRoot
	insecure  map[string]bool
	transport http.RoundTripper // nil: the default transport
	creds     verifyCreds       // nil: anonymous
	log       *slog.Logger
	stats     *Stats
	now       func() time.Time
	bg        context.Context
	sem       chan struct{}

	mu        sync.Mutex
	results   map[string]*sigEntry
	tags      map[string]tagEntry
	verifiers map[string]*sign.Verifier
	inflight  map[string]*sigFlight
	wg        sync.WaitGroup
}

func newSignatures(tr *root.TrustedRoot, insecure []string, creds verifyCreds, log *slog.Logger, stats *Stats, now func() time.Time) *signatures {
	s := &signatures{root: tr, insecure: map[string]bool{}, creds: creds, log: log, stats: stats, now: now,
		bg: context.Background(), sem: make(chan struct{}, signatureParallel), results: map[string]*sigEntry{},
		tags: map[string]tagEntry{}, verifiers: map[string]*sign.Verifier{}, inflight: map[string]*sigFlight{}}
	for _, h := range insecure {
		s.insecure[strings.ToLower(strings.TrimSpace(h))] = true
	}
	return s
}

// sigRequest names what one workload needs verified.
type sigRequest struct {
	namespace   string
	pullSecrets []string
}

// check verifies each image of refs that a requirement covers, waiting
// until ctx ends; it returns the outcomes by image and rule trust.
func (s *signatures) check(ctx context.Context, reqs []policy.SignatureRequirement, refs []string, r sigRequest) map[string]map[string]sigOutcome {
	type job struct {
		ref string
		req *policy.SignatureRequirement
	}
	var jobs []job
	for _, ref := range refs {
		for i := range reqs {
			if reqs[i].Covers(ref) {
				jobs = append(jobs, job{ref, &reqs[i]})
			}
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	out := make(map[string]map[string]sigOutcome, len(jobs))
	results := make([]sigOutcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		s.stats.SignatureChecks.Add(1)
		if o, ok := s.cached(j.ref, j.req.Trust); ok {
			s.stats.SignatureCacheHits.Add(1)
			results[i] = o
			continue
		}
		f := s.start(j.ref, j.req, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-f.done:
				results[i] = f.out
			case <-ctx.Done():
				s.stats.SignatureTimeouts.Add(1)
				results[i] = sigOutcome{incomplete: true, key: "pending",
					check: policy.SignatureCheck{Reason: "not verified within the webhook's deadline (the verification goes on)"}}
			}
		}()
	}
	wg.Wait()
	for i, j := range jobs {
		if out[j.ref] == nil {
			out[j.ref] = map[string]sigOutcome{}
		}
		out[j.ref][j.req.Trust] = results[i]
	}
	return out
}

// cached returns a fresh cached outcome of ref under trust.
func (s *signatures) cached(ref, trust string) (sigOutcome, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := digestOf(ref)
	if d == "" {
		t, ok := s.tags[ref]
		if !ok || now.Sub(t.at) >= tagTTL {
			return sigOutcome{}, false
		}
		d = t.digest
	}
	e, ok := s.results[d+"|"+trust]
	if !ok || now.Sub(e.at) >= e.ttl {
		return sigOutcome{}, false
	}
	return e.outcome(d), true
}

func (e *sigEntry) outcome(digest string) sigOutcome {
	state := "refused"
	switch {
	case e.check.Verified:
		state = "verified"
	case e.incomplete:
		state = "error"
	}
	return sigOutcome{check: e.check, incomplete: e.incomplete, key: digest + "=" + state}
}

// digestOf returns repository@digest of a digest reference, "" for a tag.
func digestOf(ref string) string {
	if !strings.Contains(ref, "@") {
		return ""
	}
	r, err := name.NewDigest(ref)
	if err != nil {
		return ""
	}
	return r.Context().Name() + "@" + r.DigestStr()
}

// start starts the verification of ref under req unless one is in
// progress, and returns its flight.
func (s *signatures) start(ref string, req *policy.SignatureRequirement, r sigRequest) *sigFlight {
	key := ref + "|" + req.Trust
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.inflight[key]; ok {
		return f
	}
	f := &sigFlight{done: make(chan struct{})}
	s.inflight[key] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
			close(f.done)
		}()
		f.out = s.verify(ref, *req, r)
	}()
	return f
}

// verify runs one verification (bounded by signatureTimeout, not by the
// request) and caches its outcome.
func (s *signatures) verify(ref string, req policy.SignatureRequirement, r sigRequest) sigOutcome {
	ctx, cancel := context.WithTimeout(s.bg, signatureTimeout)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return sigOutcome{incomplete: true, key: "error", check: policy.SignatureCheck{Reason: "not verified: " + ctx.Err().Error()}}
	}
	if _, err := name.ParseReference(ref); err != nil {
		// Not a passing fault: a reference no registry client reads is
		// refused, never left to onScanFailure.
		s.stats.SignatureRefused.Add(1)
		return sigOutcome{key: "invalid", check: policy.SignatureCheck{Reason: "not a valid image reference: " + err.Error()}}
	}
	t0 := time.Now()
	v, err := s.verifier(ctx, ref, &req, r)
	if err != nil {
		var incomplete bool
		var why string
		switch {
		case errors.Is(err, sign.ErrNoTrustedRoot):
			// A rule the component can never verify: its images are not
			// verified (a configuration to fix, not a passing fault).
			why = "the rule trusts keyless identities only and the component has no trusted root (mamori cluster --trusted-root)"
		case errors.Is(err, sign.ErrPolicy):
			why = err.Error()
		default:
			incomplete, why = true, err.Error()
		}
		s.stats.SignatureErrors.Add(1)
		s.log.Warn("image signature not verified", "image", ref, "rule", req.Rule, "err", err)
		return sigOutcome{incomplete: incomplete, key: "error", check: policy.SignatureCheck{Reason: why}}
	}
	res, err := v.Verify(ctx, ref)
	took := time.Since(t0)
	s.stats.Verifications.Add(1)
	s.stats.SignatureRoundTrips.Add(int64(res.RoundTrips))
	s.stats.VerifyNanos.Add(int64(took))
	e := &sigEntry{check: sign.Check(res, err), at: s.now()}
	digest := digestOf(ref)
	switch {
	case err != nil:
		// Not cached: the next request tries again (with its own
		// credentials; concurrent ones share this flight).
		s.stats.SignatureErrors.Add(1)
		e.incomplete = true
		s.log.Warn("image signature not verified: registry error", "image", ref, "rule", req.Rule, "err", err, "took", took.Round(time.Millisecond))
		return e.outcome("error")
	case res.Verified:
		e.ttl = verifiedTTL
		s.log.Info("image signature verified", "image", ref, "digest", res.Digest, "rule", req.Rule, "signer", res.Signer,
			"roundTrips", res.RoundTrips, "took", took.Round(time.Microsecond))
	default:
		s.stats.SignatureRefused.Add(1)
		e.ttl = refusedTTL
		s.log.Info("image signature refused", "image", ref, "digest", res.Digest, "rule", req.Rule, "reason", res.Reason,
			"roundTrips", res.RoundTrips, "took", took.Round(time.Microsecond))
	}
	if digest == "" && res.Digest != "" {
		if n, perr := name.ParseReference(ref); perr == nil {
			digest = n.Context().Name() + "@" + res.Digest
		}
	}
	if digest == "" {
		return e.outcome("unknown")
	}
	s.mu.Lock()
	if digestOf(ref) == "" {
		putBounded(s.tags, ref, tagEntry{digest: digest, at: e.at}, func(t tagEntry) time.Time { return t.at })
	}
	putBounded(s.results, digest+"|"+req.Trust, e, func(x *sigEntry) time.Time { return x.at })
	s.mu.Unlock()
	return e.outcome(digest)
}

// putBounded stores an entry, dropping the oldest quarter when full.
func putBounded[V any](m map[string]V, key string, v V, at func(V) time.Time) {
	if _, ok := m[key]; !ok && len(m) >= maxSignatureEntries {
		type aged struct {
			k  string
			at time.Time
		}
		all := make([]aged, 0, len(m))
		for k, x := range m {
			all = append(all, aged{k, at(x)})
		}
		slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
		for _, a := range all[:len(all)/4] {
			delete(m, a.k)
		}
	}
	m[key] = v
}

// verifier returns the verifier of a rule for the pod's registry
// credentials (kept: one per rule, credentials and transport).
func (s *signatures) verifier(ctx context.Context, ref string, req *policy.SignatureRequirement, r sigRequest) (*sign.Verifier, error) {
	var kc *pullKeychain
	if s.creds != nil && len(r.pullSecrets) > 0 {
		var err error
		if kc, err = s.creds(ctx, r.namespace, r.pullSecrets); err != nil {
			return nil, err
		}
	}
	plain := false
	if n, err := name.ParseReference(ref); err == nil {
		plain = s.insecure[n.Context().RegistryStr()]
	}
	h := sha256.New()
	if kc != nil {
		for _, e := range kc.entries {
			fmt.Fprintf(h, "%q %q %q %q %q\n", e.host, e.auth.Username, e.auth.Password, e.auth.IdentityToken, e.auth.RegistryToken)
		}
	}
	key := fmt.Sprintf("%s|%t|%s", req.Trust, plain, hex.EncodeToString(h.Sum(nil)))
	s.mu.Lock()
	v, ok := s.verifiers[key]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	pol, err := sign.RequirementPolicy(req, s.root)
	if err != nil {
		return nil, err
	}
	var opts []sign.Option
	if s.transport != nil {
		opts = append(opts, sign.WithTransport(s.transport))
	}
	if plain {
		opts = append(opts, sign.WithPlainHTTP())
	}
	if kc != nil {
		opts = append(opts, sign.WithRemoteOptions(remote.WithAuthFromKeychain(kc)))
	}
	if v, err = sign.New(pol, opts...); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.verifiers) >= maxVerifiers {
		clear(s.verifiers)
	}
	s.verifiers[key] = v
	s.mu.Unlock()
	return v, nil
}

// wait waits for the verifications in progress (shutdown).
func (s *signatures) wait() { s.wg.Wait() }
