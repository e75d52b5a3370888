package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// testRegistry is go-containerregistry's in-process registry on loopback,
// with the referrers API, counting the requests it serves.
type testRegistry struct {
	host string
	hits atomic.Int64
}

func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes a random image to repo:tag and returns its digest reference.
func (r *testRegistry) push(t testing.TB, repo, tag string) (name.Digest, v1.Image) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(d.String()), img
}

func newKey(t *testing.T) (*ecdsa.PrivateKey, *PublicKey) { return newKeyF(t) }

func newKeyF(t testing.TB) (*ecdsa.PrivateKey, *PublicKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// writeLayers pushes cosign's .sig or .att manifest for d with layers.
func writeLayers(t testing.TB, d name.Digest, suffix string, layers ...mutate.Addendum) {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		var err error
		if img, err = mutate.Append(img, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(tagFor(d, suffix), img); err != nil {
		t.Fatal(err)
	}
}

// cosignSign signs d as cosign does (a simple-signing payload signed with
// the key through sigstore's signature package); edit may change the
// payload before signing.
func cosignSign(t testing.TB, priv *ecdsa.PrivateKey, d name.Digest, edit func(*SimpleSigning)) mutate.Addendum {
	t.Helper()
	var ss SimpleSigning
	ss.Critical.Identity.DockerReference = d.Context().Name()
	ss.Critical.Image.DockerManifestDigest = d.DigestStr()
	ss.Critical.Type = SimpleSigningType
	if edit != nil {
		edit(&ss)
	}
	payload, err := json.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadECDSASigner(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignMessage(strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Addendum{Layer: static.NewLayer(payload, SimpleSigningMediaType),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}
}

// dsseLayer makes a DSSE attestation layer signed with priv.
func dsseLayer(t *testing.T, priv *ecdsa.PrivateKey, payloadType string, statement []byte) mutate.Addendum {
	t.Helper()
	s, err := signature.LoadECDSASigner(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignMessage(strings.NewReader(string(PAE(payloadType, statement))))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]any{"payloadType": payloadType, "payload": base64.StdEncoding.EncodeToString(statement),
		"signatures": []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}}}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Addendum{Layer: static.NewLayer(b, DSSEMediaType)}
}

func statement(d name.Digest, predicateType string) []byte {
	b, _ := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateType,
		"subject":   []map[string]any{{"name": d.Context().Name(), "digest": map[string]string{"sha256": strings.TrimPrefix(d.DigestStr(), "sha256:")}}},
		"predicate": map[string]any{"builder": map[string]string{"id": "test"}}})
	return b
}

// pushBundle attaches a sigstore bundle to d as an OCI referrer, as
// cosign's new bundle format does.
func pushBundle(t *testing.T, d name.Digest, subject v1.Image, bundleJSON []byte) {
	t.Helper()
	mt := types.MediaType("application/vnd.dev.sigstore.bundle.v0.3+json")
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(bundleJSON, mt)})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), mt)
	sd, err := partialDescriptor(subject)
	if err != nil {
		t.Fatal(err)
	}
	withSubject, ok := mutate.Subject(img, *sd).(v1.Image)
	if !ok {
		t.Fatal("mutate.Subject did not return an image")
	}
	dg, err := withSubject.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d.Context().Digest(dg.String()), withSubject); err != nil {
		t.Fatal(err)
	}
}

func partialDescriptor(img v1.Image) (*v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	sz, err := img.Size()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	return &v1.Descriptor{MediaType: mt, Size: sz, Digest: d}, nil
}

func manifestOf(t *testing.T, img v1.Image) []byte {
	t.Helper()
	b, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyBundle signs the image's manifest into a sigstore bundle with
// sigstore-go's signer and an ephemeral key.
func keyBundle(t *testing.T, img v1.Image) ([]byte, *PublicKey) {
	t.Helper()
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sgsign.Bundle(&sgsign.PlainData{Data: manifestOf(t, img)}, kp, sgsign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublicKey(kp.GetPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return b, pub
}

// keylessBundle signs the manifest with a certificate from the virtual
// sigstore's CA for identity@issuer and a timestamp of its TSA.
func keylessBundle(t *testing.T, vs *ca.VirtualSigstore, img v1.Image, identity, issuer string) []byte {
	t.Helper()
	leaf, priv, err := vs.GenerateLeafCert(identity, issuer)
	if err != nil {
		t.Fatal(err)
	}
	m := manifestOf(t, img)
	sum := sha256.Sum256(m)
	sig, err := priv.(crypto.Signer).Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := vs.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts}}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig}},
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func trustedRootOf(t *testing.T, vs *ca.VirtualSigstore) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as a user hands it over (trusted_root.json).
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTrustedRoot(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func mustVerifier(t *testing.T, p Policy) *Verifier {
	t.Helper()
	v, err := New(p, WithPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func check(t *testing.T, v *Verifier, ref string) Result {
	t.Helper()
	r, err := v.Verify(context.Background(), ref)
	if err != nil {
		t.Fatalf("verify %s: %v", ref, err)
	}
	return r
}

func wantRefused(t *testing.T, r Result, reason string) {
	t.Helper()
	if r.Verified {
		t.Fatalf("verified (%s), want refused with %q", r.Signer, reason)
	}
	all := r.Reason + " | " + strings.Join(r.Rejected, " | ")
	if !strings.Contains(all, reason) {
		t.Fatalf("reason %q, want it to say %q", all, reason)
	}
}

func TestCosignKeySignatures(t *testing.T) {
	reg := newRegistry(t)
	priv, pub := newKey(t)
	other, _ := newKey(t)
	v := mustVerifier(t, Policy{Keys: []*PublicKey{pub}})

	signed, _ := reg.push(t, "app/signed", "1")
	writeLayers(t, signed, "sig", cosignSign(t, priv, signed, nil))
	r := check(t, v, reg.host+"/app/signed:1")
	if !r.Verified || r.Signer != "key:"+pub.ID || r.Kind != "cosign-signature" || r.Digest != signed.DigestStr() {
		t.Fatalf("signed image: %+v", r)
	}

	unsigned, _ := reg.push(t, "app/unsigned", "1")
	wantRefused(t, check(t, v, unsigned.String()), "no signature found")

	byOther, _ := reg.push(t, "app/other", "1")
	writeLayers(t, byOther, "sig", cosignSign(t, other, byOther, nil))
	wantRefused(t, check(t, v, byOther.String()), "does not verify with any trusted key")

	// Tampered after signing: the tag now points at another image; the
	// signature stays with the old digest.
	tampered, _ := reg.push(t, "app/tampered", "1")
	writeLayers(t, tampered, "sig", cosignSign(t, priv, tampered, nil))
	if r := check(t, v, tampered.String()); !r.Verified {
		t.Fatalf("before tampering: %+v", r)
	}
	newDigest, _ := reg.push(t, "app/tampered", "1")
	r = check(t, v, reg.host+"/app/tampered:1")
	if r.Digest != newDigest.DigestStr() {
		t.Fatalf("resolved %s, want the new digest", r.Digest)
	}
	wantRefused(t, r, "no signature found")

	// The old signature copied onto the new digest: it names the old digest.
	writeLayers(t, newDigest, "sig", cosignSign(t, priv, tampered, nil))
	wantRefused(t, check(t, v, newDigest.String()), "signed payload is for "+tampered.DigestStr())

	// A payload edited after signing: the signature no longer verifies.
	forged, _ := reg.push(t, "app/forged", "1")
	add := cosignSign(t, priv, forged, nil)
	payload, _ := json.Marshal(map[string]any{"critical": map[string]any{"type": SimpleSigningType,
		"image": map[string]string{"docker-manifest-digest": forged.DigestStr()}, "identity": map[string]string{"docker-reference": "evil/x"}}})
	add.Layer = static.NewLayer(payload, SimpleSigningMediaType)
	writeLayers(t, forged, "sig", add)
	wantRefused(t, check(t, v, forged.String()), "does not verify")

	// Signed for another repository (a signature copied across repositories).
	moved, _ := reg.push(t, "app/moved", "1")
	writeLayers(t, moved, "sig", cosignSign(t, priv, moved, func(s *SimpleSigning) { s.Critical.Identity.DockerReference = reg.host + "/app/elsewhere" }))
	wantRefused(t, check(t, v, moved.String()), "signed for repository")

	// Bad signature bytes.
	bad, _ := reg.push(t, "app/badsig", "1")
	a := cosignSign(t, priv, bad, nil)
	a.Annotations[SignatureAnnotation] = "!!not base64"
	writeLayers(t, bad, "sig", a)
	wantRefused(t, check(t, v, bad.String()), "not base64")
}

func TestAttestations(t *testing.T) {
	reg := newRegistry(t)
	priv, pub := newKey(t)
	const slsa = "https://slsa.dev/provenance/v1"
	v := mustVerifier(t, Policy{Keys: []*PublicKey{pub}, Attestation: slsa})

	d, _ := reg.push(t, "app/attested", "1")
	writeLayers(t, d, "sig", cosignSign(t, priv, d, nil))
	writeLayers(t, d, "att", dsseLayer(t, priv, InTotoPayloadType, statement(d, slsa)))
	r := check(t, v, d.String())
	if !r.Verified || len(r.Attestations) != 1 || r.Attestations[0] != slsa {
		t.Fatalf("attested image: %+v", r)
	}

	other, _ := reg.push(t, "app/other", "1")
	hostile := []struct {
		name   string
		layer  mutate.Addendum
		reason string
	}{
		{"subject of another image", dsseLayer(t, priv, InTotoPayloadType, statement(other, slsa)), "subjects do not include this image"},
		{"wrong payload type", dsseLayer(t, priv, "text/plain", statement(d, slsa)), "payload type"},
		{"not in-toto", dsseLayer(t, priv, InTotoPayloadType, []byte(`{"_type":"evil","predicateType":"x","subject":[]}`)), "is not in-toto"},
		{"garbage statement", dsseLayer(t, priv, InTotoPayloadType, []byte(`{"_type": [[[[`)), "statement:"},
		{"trailing data", dsseLayer(t, priv, InTotoPayloadType, append(statement(d, slsa), []byte(`{}`)...)), "trailing data"},
		{"envelope not JSON", mutate.Addendum{Layer: static.NewLayer([]byte("\x00\x01garbage"), DSSEMediaType)}, "envelope:"},
		{"unsigned envelope", mutate.Addendum{Layer: static.NewLayer([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), DSSEMediaType)}, "no signature"},
		{"wrong media type", mutate.Addendum{Layer: static.NewLayer([]byte(`{}`), "application/x-evil")}, "not a DSSE envelope"},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			img, _ := reg.push(t, "app/hostile", "1")
			writeLayers(t, img, "sig", cosignSign(t, priv, img, nil))
			writeLayers(t, img, "att", h.layer)
			r := check(t, v, img.String())
			wantRefused(t, r, h.reason)
			if len(r.Attestations) != 0 {
				t.Fatalf("hostile attestation accepted: %v", r.Attestations)
			}
		})
	}
	// Signed, but the required attestation is missing.
	bare, _ := reg.push(t, "app/bare", "1")
	writeLayers(t, bare, "sig", cosignSign(t, priv, bare, nil))
	wantRefused(t, check(t, v, bare.String()), "no verified attestation of type "+slsa)
}

func TestBundles(t *testing.T) {
	reg := newRegistry(t)
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	strange, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	const issuer, who = "https://issuer.example", "release@example.com"
	keyless := mustVerifier(t, Policy{Identities: []Identity{{Issuer: issuer, Subject: who}}, TrustedRoot: trustedRootOf(t, vs)})

	d, img := reg.push(t, "app/keyless", "1")
	pushBundle(t, d, img, keylessBundle(t, vs, img, who, issuer))
	r := check(t, keyless, d.String())
	if !r.Verified || r.Kind != "bundle" || r.Signer != "identity:"+who+"@"+issuer {
		t.Fatalf("keyless bundle: %+v", r)
	}

	// Another identity of the same trust root.
	d2, img2 := reg.push(t, "app/intruder", "1")
	pushBundle(t, d2, img2, keylessBundle(t, vs, img2, "mallory@example.com", issuer))
	wantRefused(t, check(t, keyless, d2.String()), "no trusted identity verifies it")

	// The right identity from a CA the trust root does not hold.
	d3, img3 := reg.push(t, "app/strange", "1")
	pushBundle(t, d3, img3, keylessBundle(t, strange, img3, who, issuer))
	wantRefused(t, check(t, keyless, d3.String()), "no trusted identity verifies it")

	// A bundle of another image attached to this one.
	d4, img4 := reg.push(t, "app/swapped", "1")
	pushBundle(t, d4, img4, keylessBundle(t, vs, img3, who, issuer))
	wantRefused(t, check(t, keyless, d4.String()), "no trusted identity verifies it")

	// Truncated and garbage bundles.
	full := keylessBundle(t, vs, img, who, issuer)
	d5, img5 := reg.push(t, "app/truncated", "1")
	pushBundle(t, d5, img5, full[:len(full)/2])
	wantRefused(t, check(t, keyless, d5.String()), "not a valid sigstore bundle")

	// Key bundles made by sigstore-go's signer.
	d6, img6 := reg.push(t, "app/keybundle", "1")
	kb, pub := keyBundle(t, img6)
	pushBundle(t, d6, img6, kb)
	byKey := mustVerifier(t, Policy{Keys: []*PublicKey{pub}})
	if r := check(t, byKey, d6.String()); !r.Verified || r.Signer != "key:"+pub.ID {
		t.Fatalf("key bundle: %+v", r)
	}
	_, otherPub := newKey(t)
	wantRefused(t, check(t, mustVerifier(t, Policy{Keys: []*PublicKey{otherPub}}), d6.String()), "no trusted key verifies it")
	// A key bundle when only identities are trusted.
	wantRefused(t, check(t, keyless, d6.String()), "policy trusts no key")
}

// TestRoundTripsAndCache counts the registry requests of a verification
// and shows a cached result reused.
func TestRoundTripsAndCache(t *testing.T) {
	reg := newRegistry(t)
	priv, pub := newKey(t)
	d, _ := reg.push(t, "app/cached", "1")
	writeLayers(t, d, "sig", cosignSign(t, priv, d, nil))
	v := mustVerifier(t, Policy{Keys: []*PublicKey{pub}})

	before := reg.hits.Load()
	r := check(t, v, reg.host+"/app/cached:1")
	served := reg.hits.Load() - before
	// The client counts its requests (a plain-HTTP registry also costs one
	// refused TLS attempt, which the server never sees as a request).
	if !r.Verified || r.Cached || int64(r.RoundTrips) < served || r.RoundTrips > 8 {
		t.Fatalf("first: %+v (registry served %d)", r, served)
	}
	t.Logf("first verification: %d round trips (%d served), %v", r.RoundTrips, served, r.Duration)

	before = reg.hits.Load()
	r2 := check(t, v, reg.host+"/app/cached:1")
	// By tag, cached: the registry ping and the manifest HEAD only.
	if served2 := reg.hits.Load() - before; !r2.Verified || !r2.Cached || r2.RoundTrips > 3 || served2 != 2 {
		t.Fatalf("by tag, cached: %+v (served %d)", r2, served2)
	}
	t.Logf("cached by tag: %d round trips, %v", r2.RoundTrips, r2.Duration)
	before = reg.hits.Load()
	r3 := check(t, v, d.String())
	if !r3.Cached || r3.RoundTrips != 0 || reg.hits.Load() != before {
		t.Fatalf("by digest, cached: %+v", r3)
	}
}

func TestPolicyErrors(t *testing.T) {
	if _, err := New(Policy{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("empty policy: %v", err)
	}
	if _, err := New(Policy{Identities: []Identity{{Issuer: "i", Subject: "s"}}}); !errors.Is(err, ErrPolicy) {
		t.Errorf("identity without root: %v", err)
	}
	for _, bad := range []string{"", "garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePublicKey([]byte(bad)); !errors.Is(err, ErrPolicy) {
			t.Errorf("ParsePublicKey(%q): %v", bad, err)
		}
	}
	if _, err := ParseTrustedRoot([]byte(`{"mediaType": 1}`)); !errors.Is(err, ErrPolicy) {
		t.Errorf("bad root: %v", err)
	}
}

func TestRegistryDown(t *testing.T) {
	_, pub := newKey(t)
	v := mustVerifier(t, Policy{Keys: []*PublicKey{pub}})
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, host+"/app/x:1"); !errors.Is(err, ErrRegistry) {
		t.Fatalf("err %v, want ErrRegistry", err)
	}
}

// BenchmarkVerify: a key-signed image verified uncached (every request) and
// cached by digest (no request).
func BenchmarkVerify(b *testing.B) {
	reg := newRegistry(b)
	priv, pub := newKeyF(b)
	d, _ := reg.push(b, "bench/app", "1")
	writeLayers(b, d, "sig", cosignSign(b, priv, d, nil))
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			v, _ := New(Policy{Keys: []*PublicKey{pub}}, WithPlainHTTP())
			if r, err := v.Verify(context.Background(), d.String()); err != nil || !r.Verified {
				b.Fatal(err, r.Reason)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v, _ := New(Policy{Keys: []*PublicKey{pub}}, WithPlainHTTP())
		for b.Loop() {
			if r, err := v.Verify(context.Background(), d.String()); err != nil || !r.Verified {
				b.Fatal(err, r.Reason)
			}
		}
	})
}
