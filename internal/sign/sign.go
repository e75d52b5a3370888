// Package sign verifies container image signatures and attestations made
// with the sigstore ecosystem, offline, against keys and a trust root the
// caller gives:
//
//   - cosign signatures in an OCI registry (the "sha256-<digest>.sig" tag,
//     simple-signing payloads), verified with public keys;
//   - cosign attestations ("sha256-<digest>.att", DSSE envelopes of in-toto
//     statements), verified with public keys, their subject bound to the
//     image digest;
//   - sigstore bundles (v0.1-v0.3) attached to the image as OCI referrers
//     (cosign's new bundle format), verified with github.com/sigstore/sigstore-go:
//     with public keys, or keyless (a Fulcio-style certificate chain with a
//     signed timestamp or transparency log entry) against a trusted_root.json,
//     and the signer's identity (OIDC issuer + subject).
//
// Nothing is fetched but the registry's objects: no Rekor, TUF or Fulcio
// request is ever made. Results are cached by image digest and policy, so a
// registry rescan or an admission review of an image already verified costs
// one manifest request, or none for a digest reference.
package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// Sentinel errors.
var (
	// ErrPolicy is returned (wrapped) for a policy that cannot verify
	// anything (no key and no identity) or a malformed key or root.
	ErrPolicy = errors.New("sign: bad verification policy")
	// ErrRegistry is returned (wrapped) when the registry could not be read.
	ErrRegistry = errors.New("sign: registry")
)

// Limits on what a registry may hand the verifier, each with its reason.
const (
	// MaxPayload bounds one signature payload, attestation envelope or
	// bundle: cosign's are a few KiB; an SBOM attestation can reach MiBs.
	MaxPayload = 8 << 20
	// MaxSignatures bounds the signatures, attestations and bundles read
	// per image, so a hostile registry cannot make a verification unbounded.
	MaxSignatures = 64
)

// Identity is a keyless signer: the OIDC issuer and subject (email or URI)
// of the certificate, exact, or as regular expressions when the *Regexp
// fields are set.
type Identity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegexp  string `json:"issuerRegexp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
}

func (i Identity) String() string {
	s, is := i.Subject, i.Issuer
	if s == "" {
		s = "~" + i.SubjectRegexp
	}
	if is == "" {
		is = "~" + i.IssuerRegexp
	}
	return s + "@" + is
}

// Policy says who may sign.
type Policy struct {
	// Keys are trusted public keys.
	Keys []*PublicKey
	// Identities are trusted keyless signers; they need TrustedRoot.
	Identities []Identity
	// TrustedRoot holds the certificate authorities, timestamp authorities
	// and transparency logs that keyless bundles verify against
	// (trusted_root.json, see LoadTrustedRoot).
	TrustedRoot *root.TrustedRoot
	// Attestation, when set, requires a verified attestation of that
	// predicate type ("https://slsa.dev/provenance/v1") besides a signature.
	Attestation string
}

// fingerprint identifies a policy in the cache key.
func (p *Policy) fingerprint() string {
	h := sha256.New()
	for _, k := range p.Keys {
		fmt.Fprintf(h, "k %s\n", k.ID)
	}
	for _, i := range p.Identities {
		fmt.Fprintf(h, "i %q %q %q %q\n", i.Issuer, i.IssuerRegexp, i.Subject, i.SubjectRegexp)
	}
	if p.TrustedRoot != nil {
		if b, err := p.TrustedRoot.MarshalJSON(); err == nil {
			h.Write(b)
		}
	}
	fmt.Fprintf(h, "a %q\n", p.Attestation)
	return hex.EncodeToString(h.Sum(nil))
}

func (p *Policy) validate() error {
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		return fmt.Errorf("%w: no key and no identity to verify against", ErrPolicy)
	}
	if len(p.Identities) > 0 && p.TrustedRoot == nil {
		return fmt.Errorf("%w: keyless identities need a trusted root", ErrPolicy)
	}
	for _, i := range p.Identities {
		if (i.Issuer == "" && i.IssuerRegexp == "") || (i.Subject == "" && i.SubjectRegexp == "") {
			return fmt.Errorf("%w: identity %s: both an issuer and a subject are needed", ErrPolicy, i)
		}
	}
	return nil
}

// Result is the outcome of one image's verification.
type Result struct {
	// Image is the reference asked for, Digest the manifest digest verified.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Verified is set when a signature (and the required attestation, if
	// any) verified.
	Verified bool `json:"verified"`
	// Signer names what verified: "key:<id>" or "identity:<subject>@<issuer>".
	Signer string `json:"signer,omitempty"`
	// Kind of the signature that verified: "cosign-signature" or "bundle".
	Kind string `json:"kind,omitempty"`
	// Attestations are the predicate types of the verified attestations.
	Attestations []string `json:"attestations,omitempty"`
	// Rejected says why each signature, attestation or bundle found was
	// refused (one line each); Reason sums up a failed verification.
	Rejected []string `json:"rejected,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// RoundTrips counts the registry requests this call made; Duration
	// its wall time; Cached is set when the result was reused.
	RoundTrips int           `json:"roundTrips"`
	Duration   time.Duration `json:"duration"`
	Cached     bool          `json:"cached"`
	VerifiedAt time.Time     `json:"verifiedAt"`
}

// Verifier verifies images against one policy. It is safe for concurrent
// use; results are cached by digest.
type Verifier struct {
	pol    Policy
	fp     string
	opts   options
	mu     sync.Mutex
	cache  map[string]Result
	trusts *trust
}

// Option configures a Verifier.
type Option func(*options) error

type options struct {
	transport http.RoundTripper
	remote    []remote.Option
	now       func() time.Time
	cacheSize int
	nameOpts  []name.Option
}

// DefaultCacheSize bounds the result cache: a registry of ten thousand
// images, each verified once per policy.
const DefaultCacheSize = 10_000

// WithTransport sets the HTTP transport to the registry (TLS roots,
// proxies); the default is remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error { o.transport = t; return nil }
}

// WithRemoteOptions passes options (authentication) to go-containerregistry.
func WithRemoteOptions(ro ...remote.Option) Option {
	return func(o *options) error { o.remote = append(o.remote, ro...); return nil }
}

// WithPlainHTTP reaches the registry over plain HTTP (a registry on
// loopback; tests). Never the default: signatures fetched in clear can be
// withheld by anyone on the path.
func WithPlainHTTP() Option {
	return func(o *options) error { o.nameOpts = append(o.nameOpts, name.Insecure); return nil }
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// New returns a verifier for pol.
func New(pol Policy, opts ...Option) (*Verifier, error) {
	o := options{transport: remote.DefaultTransport, now: time.Now, cacheSize: DefaultCacheSize}
	for _, f := range opts {
		if err := f(&o); err != nil {
			return nil, err
		}
	}
	if err := pol.validate(); err != nil {
		return nil, err
	}
	tr, err := newTrust(&pol)
	if err != nil {
		return nil, err
	}
	return &Verifier{pol: pol, fp: pol.fingerprint(), opts: o, cache: map[string]Result{}, trusts: tr}, nil
}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// Verify resolves ref to its digest and verifies its signatures. A
// registry error is returned as an error; a missing or bad signature is a
// Result with Verified false and the reasons.
func (v *Verifier) Verify(ctx context.Context, ref string) (Result, error) {
	start := time.Now()
	ct := &countingTransport{next: v.opts.transport}
	ropts := append([]remote.Option{remote.WithContext(ctx), remote.WithTransport(ct)}, v.opts.remote...)
	// One puller for the whole verification: the registry is pinged and
	// authenticated once, not once per request.
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrRegistry, err)
	}
	ropts = append(ropts, remote.Reuse(puller))
	r, err := name.ParseReference(ref, v.opts.nameOpts...)
	if err != nil {
		return Result{}, fmt.Errorf("%w: parse reference %q: %w", ErrRegistry, truncate(ref), err)
	}
	var digest name.Digest
	if d, ok := r.(name.Digest); ok {
		digest = d
	} else {
		desc, err := remote.Head(r, ropts...)
		if err != nil {
			return Result{}, fmt.Errorf("%w: resolve %s: %w", ErrRegistry, ref, err)
		}
		digest = r.Context().Digest(desc.Digest.String())
	}
	key := digest.DigestStr() + "|" + digest.Context().Name() + "|" + v.fp
	v.mu.Lock()
	res, ok := v.cache[key]
	v.mu.Unlock()
	if ok {
		res.Image, res.Cached = ref, true
		res.RoundTrips, res.Duration = int(ct.n.Load()), time.Since(start)
		return res, nil
	}
	res = Result{Image: ref, Digest: digest.DigestStr()}
	if err := v.verify(ctx, digest, ropts, &res); err != nil {
		return Result{}, err
	}
	res.VerifiedAt = v.opts.now().UTC()
	if !res.Verified && res.Reason == "" {
		res.Reason = summarize(res.Rejected)
	}
	// Only verified results are cached: a digest's content never changes,
	// but a signature may be added to it later.
	if res.Verified {
		v.mu.Lock()
		if len(v.cache) >= v.opts.cacheSize {
			clear(v.cache)
		}
		v.cache[key] = res
		v.mu.Unlock()
	}
	res.RoundTrips, res.Duration = int(ct.n.Load()), time.Since(start)
	return res, nil
}

func summarize(rejected []string) string {
	if len(rejected) == 0 {
		return "no signature found"
	}
	if len(rejected) == 1 {
		return rejected[0]
	}
	return fmt.Sprintf("%s (and %d more refused)", rejected[0], len(rejected)-1)
}

func (v *Verifier) verify(ctx context.Context, d name.Digest, ropts []remote.Option, res *Result) error {
	sigOK, err := v.verifyCosignSignatures(d, ropts, res)
	if err != nil {
		return err
	}
	bundleOK, bundleAtts, err := v.verifyBundles(ctx, d, ropts, res)
	if err != nil {
		return err
	}
	atts, err := v.verifyCosignAttestations(d, ropts, res)
	if err != nil {
		return err
	}
	atts = append(atts, bundleAtts...)
	res.Attestations = dedupe(atts)
	switch {
	case sigOK != "":
		res.Verified, res.Signer, res.Kind = true, sigOK, "cosign-signature"
	case bundleOK != "":
		res.Verified, res.Signer, res.Kind = true, bundleOK, "bundle"
	}
	if res.Verified && v.pol.Attestation != "" && !contains(res.Attestations, v.pol.Attestation) {
		res.Verified = false
		res.Reason = fmt.Sprintf("signed by %s, but no verified attestation of type %s", res.Signer, v.pol.Attestation)
	}
	return nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// tagFor is cosign's tag for a digest's signatures (".sig") or
// attestations (".att"): sha256-<hex>.<suffix>.
func tagFor(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix)
}
