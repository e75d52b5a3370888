package sign

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

var timeZero time.Time

// BundleMediaTypePrefix prefixes the media types of sigstore bundles
// (application/vnd.dev.sigstore.bundle.v0.3+json, ...).
const BundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"

// verifyBundles reads the sigstore bundles attached to d as referrers and
// verifies each: it returns the signer of the first message signature
// that verified, and the predicate types of verified DSSE attestations.
func (v *Verifier) verifyBundles(ctx context.Context, d name.Digest, ropts []remote.Option, res *Result) (string, []string, error) {
	idx, err := remote.Referrers(d, ropts...)
	if err != nil {
		if isNotFound(err) {
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("%w: referrers of %s: %w", ErrRegistry, d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", nil, fmt.Errorf("%w: referrers of %s: %w", ErrRegistry, d, err)
	}
	want, err := hex.DecodeString(strings.TrimPrefix(d.DigestStr(), "sha256:"))
	if err != nil || !strings.HasPrefix(d.DigestStr(), "sha256:") {
		res.Rejected = append(res.Rejected, "bundle: only sha256 image digests are verified")
		return "", nil, nil
	}
	var signer string
	var atts []string
	n := 0
	for _, desc := range im.Manifests {
		if !strings.HasPrefix(desc.ArtifactType, BundleMediaTypePrefix) {
			continue
		}
		if n++; n > MaxSignatures {
			res.Rejected = append(res.Rejected, fmt.Sprintf("bundle: more than %d bundles, the rest not read", MaxSignatures))
			break
		}
		raw, err := v.bundleBytes(d, desc, ropts)
		if err != nil {
			if errors.Is(err, ErrRegistry) {
				return "", nil, err
			}
			res.Rejected = append(res.Rejected, fmt.Sprintf("bundle %s: %v", short(desc.Digest.String()), err))
			continue
		}
		who, predicate, err := v.verifyBundle(raw, want)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Sprintf("bundle %s: %v", short(desc.Digest.String()), err))
			continue
		}
		switch {
		case predicate != "":
			atts = append(atts, predicate)
			if signer == "" && predicate == CosignSignPredicate {
				signer = who
			}
		case signer == "":
			signer = who
		}
	}
	return signer, atts, nil
}

// CosignSignPredicate is the predicate type of cosign's DSSE image
// signatures in the bundle format: such a statement is a signature.
const CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == 404
	}
	return false
}

// bundleBytes reads the one bundle layer of a referrer manifest.
func (v *Verifier) bundleBytes(d name.Digest, desc v1.Descriptor, ropts []remote.Option) ([]byte, error) {
	img, err := remote.Image(d.Context().Digest(desc.Digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("%w: bundle manifest %s: %w", ErrRegistry, desc.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != d.DigestStr() {
		return nil, errors.New("the referrer's subject is not this image")
	}
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("%d layers, want one bundle", len(m.Layers))
	}
	l := m.Layers[0]
	if l.Size > MaxPayload || l.Size < 0 {
		return nil, fmt.Errorf("bundle of %d bytes, over the %d limit", l.Size, MaxPayload)
	}
	return readLayer(img, l)
}

// readLayer reads one layer blob, capped and checked against its digest.
func readLayer(img v1.Image, desc v1.Descriptor) ([]byte, error) {
	layer, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("%w: layer %s: %w", ErrRegistry, desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxPayload+1))
	if err != nil {
		// go-containerregistry checks the digest as it reads: a blob that
		// does not match is refused here.
		return nil, fmt.Errorf("read layer %s: %w", desc.Digest, err)
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("layer over the %d byte limit", MaxPayload)
	}
	return b, nil
}

// verifyBundle verifies one bundle against the image digest: with each
// trusted key, then keyless against each identity. It returns who signed
// and, for a DSSE attestation, its predicate type.
func (v *Verifier) verifyBundle(raw []byte, digest []byte) (string, string, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return "", "", fmt.Errorf("not a valid sigstore bundle: %w", err)
	}
	art := verify.WithArtifactDigest("sha256", digest)
	var errs []string
	vc, err := b.VerificationContent()
	if err != nil {
		return "", "", fmt.Errorf("verification material: %w", err)
	}
	if vc.PublicKey() != nil {
		if len(v.trusts.keys) == 0 {
			return "", "", errors.New("signed with a key, and the policy trusts no key")
		}
		for _, kv := range v.trusts.keys {
			r, err := kv.v.Verify(&b, verify.NewPolicy(art, verify.WithKey()))
			if err == nil {
				return "key:" + kv.key.ID, predicateOf(r), nil
			}
			errs = append(errs, err.Error())
		}
		return "", "", fmt.Errorf("no trusted key verifies it: %s", firstDistinct(errs))
	}
	if v.trusts.keyless == nil {
		return "", "", errors.New("keyless signature, and the policy trusts no identity")
	}
	for _, ci := range v.trusts.identities {
		r, err := v.trusts.keyless.Verify(&b, verify.NewPolicy(art, verify.WithCertificateIdentity(ci)))
		if err == nil {
			who := "identity:" + ci.SubjectAlternativeName.SubjectAlternativeName + "@" + ci.Issuer.Issuer
			if r.Signature != nil && r.Signature.Certificate != nil {
				who = "identity:" + r.Signature.Certificate.SubjectAlternativeName + "@" + r.Signature.Certificate.Issuer
			}
			return who, predicateOf(r), nil
		}
		errs = append(errs, err.Error())
	}
	return "", "", fmt.Errorf("no trusted identity verifies it: %s", firstDistinct(errs))
}

func predicateOf(r *verify.VerificationResult) string {
	if r == nil || r.Statement == nil {
		return ""
	}
	return r.Statement.GetPredicateType()
}

func firstDistinct(errs []string) string {
	var out []string
	for _, e := range errs {
		if !contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, "; ")
}
