// Package signtest signs images in tests as cosign does — a simple-signing
// payload signed with an ECDSA P-256 key through sigstore's signature
// package, pushed to the registry as the image's "sha256-<hex>.sig"
// manifest — so that tests of the server, the CLI and the cluster e2e
// verify signatures made in the test itself, never downloaded. Nothing in
// it is used outside tests.
package signtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"

	"mamori/internal/sign"
)

// Key is a signing key with its public half as PEM (cosign.pub).
type Key struct {
	Private   *ecdsa.PrivateKey
	PublicPEM string
}

// NewKey generates a P-256 key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Key{Private: priv, PublicPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, nil
}

// Sign signs the image d (a digest reference) and pushes the signature
// manifest next to it, with opts (transport, auth) for the registry.
func (k *Key) Sign(d name.Digest, opts ...remote.Option) error {
	var ss sign.SimpleSigning
	ss.Critical.Identity.DockerReference = d.Context().Name()
	ss.Critical.Image.DockerManifestDigest = d.DigestStr()
	ss.Critical.Type = sign.SimpleSigningType
	payload, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	s, err := signature.LoadECDSASigner(k.Private, crypto.SHA256)
	if err != nil {
		return err
	}
	sig, err := s.SignMessage(strings.NewReader(string(payload)))
	if err != nil {
		return err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(payload, sign.SimpleSigningMediaType),
		Annotations: map[string]string{sign.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
	if err != nil {
		return err
	}
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("push signature %s: %w", tag, err)
	}
	return nil
}
