package sign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PublicKey is a trusted signing key.
type PublicKey struct {
	// ID is "sha256:" and the hex SHA-256 of the key's DER (SubjectPublicKeyInfo).
	ID       string
	Key      crypto.PublicKey
	verifier signature.Verifier
}

// ParsePublicKey reads a PEM public key (ECDSA, Ed25519 or RSA, as cosign
// writes them: cosign.pub).
func ParsePublicKey(pemBytes []byte) (*PublicKey, error) {
	if len(pemBytes) > 64<<10 {
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrPolicy, len(pemBytes))
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: parse public key: %w", ErrPolicy, err)
	}
	return NewPublicKey(pub)
}

// NewPublicKey wraps a public key.
func NewPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal public key: %w", ErrPolicy, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: load verifier: %w", ErrPolicy, err)
	}
	sum := sha256.Sum256(der)
	return &PublicKey{ID: "sha256:" + hex.EncodeToString(sum[:]), Key: pub, verifier: v}, nil
}

// LoadPublicKey reads a PEM public key file.
func LoadPublicKey(path string) (*PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read key %s: %w", ErrPolicy, path, err)
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

// LoadTrustedRoot reads a sigstore trusted_root.json (the certificate
// authorities, timestamp authorities and transparency logs keyless
// signatures verify against). It is read as given: never refreshed over
// TUF, so verification stays offline.
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read trusted root %s: %w", ErrPolicy, path, err)
	}
	return ParseTrustedRoot(b)
}

// ParseTrustedRoot reads trusted_root.json bytes.
func ParseTrustedRoot(b []byte) (*root.TrustedRoot, error) {
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("%w: trusted root of %d bytes", ErrPolicy, len(b))
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: parse trusted root: %w", ErrPolicy, err)
	}
	return tr, nil
}

// trust holds the sigstore-go verifiers of a policy: one per key (a
// bundle's key hint is the signer's word, so each trusted key is tried)
// and one for keyless bundles.
type trust struct {
	keys       []keyVerifier
	keyless    *verify.Verifier
	identities []verify.CertificateIdentity
}

type keyVerifier struct {
	key *PublicKey
	v   *verify.Verifier
}

func newTrust(p *Policy) (*trust, error) {
	t := &trust{}
	for _, k := range p.Keys {
		k := k
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(k.verifier, timeZero, timeZero), nil
		})
		// A key bundle carries no timestamp when signed offline: the key's
		// own validity (none set) is checked at the current time.
		v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrPolicy, k.ID, err)
		}
		t.keys = append(t.keys, keyVerifier{key: k, v: v})
	}
	if len(p.Identities) > 0 {
		// Keyless: the certificate is short-lived, so a timestamp from a
		// trusted timestamp authority or transparency log must show it was
		// used while valid.
		v, err := verify.NewVerifier(p.TrustedRoot, verify.WithObserverTimestamps(1))
		if err != nil {
			return nil, fmt.Errorf("%w: trusted root: %w", ErrPolicy, err)
		}
		t.keyless = v
		for _, i := range p.Identities {
			ci, err := verify.NewShortCertificateIdentity(i.Issuer, i.IssuerRegexp, i.Subject, i.SubjectRegexp)
			if err != nil {
				return nil, fmt.Errorf("%w: identity %s: %w", ErrPolicy, i, err)
			}
			t.identities = append(t.identities, ci)
		}
	}
	return t, nil
}
