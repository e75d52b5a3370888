package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cosign's media types and annotations (github.com/sigstore/cosign,
// pkg/oci/static and pkg/types).
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	CertificateAnnotation  = "dev.sigstore.cosign/certificate"
	// SimpleSigningType is the critical.type of a cosign image signature.
	SimpleSigningType = "cosign container image signature"
	// InTotoPayloadType is the DSSE payload type of in-toto statements.
	InTotoPayloadType = "application/vnd.in-toto+json"
)

// SimpleSigning is cosign's signed payload for an image.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional,omitempty"`
}

// signatureManifest reads cosign's .sig or .att manifest of d; nil when
// there is none.
func signatureManifest(d name.Digest, suffix string, ropts []remote.Option) (v1.Image, *v1.Manifest, error) {
	img, err := remote.Image(tagFor(d, suffix), ropts...)
	if err != nil {
		if isNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("%w: %s manifest of %s: %w", ErrRegistry, suffix, d, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s manifest of %s: %w", ErrRegistry, suffix, d, err)
	}
	return img, m, nil
}

// verifyCosignSignatures verifies the simple-signing signatures of d with
// the policy's keys; it returns the signer of the first that verifies.
func (v *Verifier) verifyCosignSignatures(d name.Digest, ropts []remote.Option, res *Result) (string, error) {
	img, m, err := signatureManifest(d, "sig", ropts)
	if err != nil || m == nil {
		return "", err
	}
	for i, l := range m.Layers {
		if i >= MaxSignatures {
			res.Rejected = append(res.Rejected, fmt.Sprintf("signature: more than %d signatures, the rest not read", MaxSignatures))
			break
		}
		who, err := v.verifySimpleSigning(d, img, l)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Sprintf("signature %d: %v", i+1, err))
			continue
		}
		return who, nil
	}
	return "", nil
}

func (v *Verifier) verifySimpleSigning(d name.Digest, img v1.Image, l v1.Descriptor) (string, error) {
	if l.MediaType != SimpleSigningMediaType {
		return "", fmt.Errorf("media type %q is not a cosign simple-signing payload", truncate(string(l.MediaType)))
	}
	sigB64, ok := l.Annotations[SignatureAnnotation]
	if !ok || sigB64 == "" {
		return "", errors.New("no signature annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return "", fmt.Errorf("signature annotation is not base64: %w", err)
	}
	if len(v.pol.Keys) == 0 {
		if _, ok := l.Annotations[CertificateAnnotation]; ok {
			return "", errors.New("keyless signature in the legacy format: verify keyless images with sigstore bundles (cosign --new-bundle-format)")
		}
		return "", errors.New("signed with a key, and the policy trusts no key")
	}
	if l.Size > MaxPayload || l.Size < 0 {
		return "", fmt.Errorf("payload of %d bytes, over the %d limit", l.Size, MaxPayload)
	}
	payload, err := readLayer(img, l)
	if err != nil {
		return "", err
	}
	signer := ""
	for _, k := range v.pol.Keys {
		if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			signer = "key:" + k.ID
			break
		}
	}
	if signer == "" {
		return "", errors.New("signature does not verify with any trusted key (bad signature or another key)")
	}
	// Only a verified payload is parsed.
	var ss SimpleSigning
	if err := strictJSON(payload, &ss); err != nil {
		return "", fmt.Errorf("signed payload: %w", err)
	}
	if ss.Critical.Type != SimpleSigningType {
		return "", fmt.Errorf("signed payload of type %q, not an image signature", truncate(ss.Critical.Type))
	}
	if ss.Critical.Image.DockerManifestDigest != d.DigestStr() {
		return "", fmt.Errorf("signed payload is for %s, not this image (%s)", truncate(ss.Critical.Image.DockerManifestDigest), d.DigestStr())
	}
	if ref := ss.Critical.Identity.DockerReference; ref != "" && !sameRepo(ref, d.Context()) {
		return "", fmt.Errorf("signed for repository %s, not %s", truncate(ref), d.Context().Name())
	}
	return signer, nil
}

// sameRepo reports whether a docker-reference names repo (cosign writes
// the repository, with or without a tag).
func sameRepo(ref string, repo name.Repository) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		rr, err := name.NewRepository(ref)
		return err == nil && rr.Name() == repo.Name()
	}
	return r.Context().Name() == repo.Name()
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// Statement is an in-toto statement (v0.1 or v1).
type Statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// PAE is DSSE's pre-authentication encoding, what a DSSE signature signs.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// verifyCosignAttestations verifies the DSSE attestations of d with the
// policy's keys and returns the predicate types of those that verify and
// name d as their subject.
func (v *Verifier) verifyCosignAttestations(d name.Digest, ropts []remote.Option, res *Result) ([]string, error) {
	img, m, err := signatureManifest(d, "att", ropts)
	if err != nil || m == nil {
		return nil, err
	}
	var out []string
	for i, l := range m.Layers {
		if i >= MaxSignatures {
			res.Rejected = append(res.Rejected, fmt.Sprintf("attestation: more than %d attestations, the rest not read", MaxSignatures))
			break
		}
		pt, err := v.verifyAttestation(d, img, l)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Sprintf("attestation %d: %v", i+1, err))
			continue
		}
		out = append(out, pt)
	}
	return out, nil
}

func (v *Verifier) verifyAttestation(d name.Digest, img v1.Image, l v1.Descriptor) (string, error) {
	if l.MediaType != DSSEMediaType {
		return "", fmt.Errorf("media type %q is not a DSSE envelope", truncate(string(l.MediaType)))
	}
	if l.Size > MaxPayload || l.Size < 0 {
		return "", fmt.Errorf("envelope of %d bytes, over the %d limit", l.Size, MaxPayload)
	}
	if len(v.pol.Keys) == 0 {
		return "", errors.New("signed with a key, and the policy trusts no key")
	}
	raw, err := readLayer(img, l)
	if err != nil {
		return "", err
	}
	var env Envelope
	if err := strictJSON(raw, &env); err != nil {
		return "", fmt.Errorf("envelope: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return "", fmt.Errorf("payload type %q, want %s", truncate(env.PayloadType), InTotoPayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return "", fmt.Errorf("payload is not base64: %w", err)
	}
	if len(env.Signatures) == 0 {
		return "", errors.New("envelope has no signature")
	}
	pae := PAE(env.PayloadType, payload)
	verified := false
	for i, s := range env.Signatures {
		if i >= MaxSignatures {
			break
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range v.pol.Keys {
			if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae)) == nil {
				verified = true
			}
		}
	}
	if !verified {
		return "", errors.New("no envelope signature verifies with a trusted key")
	}
	var st Statement
	if err := strictJSON(payload, &st); err != nil {
		return "", fmt.Errorf("statement: %w", err)
	}
	if st.Type != "https://in-toto.io/Statement/v0.1" && st.Type != "https://in-toto.io/Statement/v1" {
		return "", fmt.Errorf("statement type %q is not in-toto", truncate(st.Type))
	}
	if st.PredicateType == "" {
		return "", errors.New("statement has no predicate type")
	}
	hexDigest := strings.TrimPrefix(d.DigestStr(), "sha256:")
	for _, s := range st.Subject {
		if s.Digest["sha256"] == hexDigest {
			return st.PredicateType, nil
		}
	}
	return "", fmt.Errorf("statement's subjects do not include this image (%s)", d.DigestStr())
}

// strictJSON decodes one JSON value, refusing trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
