package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// TestServerTrustFlags: --trusted-root and --registry-ca reach
// server.Config (a trusted root that parses; registry roots that verify a
// certificate of the given CA); bad files are errors naming the flag.
func TestServerTrustFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// trusted_root.json of a virtual sigstore made here.
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// A registry CA and a leaf certificate it signed.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registry CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"registry.internal"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)

	rootFile := write("trusted_root.json", trJSON)
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))

	// Nothing given: nil, nil (keys only, the system roots).
	if gotTR, pool, err := (&serverOptions{}).trust(); err != nil || gotTR != nil || pool != nil {
		t.Fatalf("no flags: %v %v %v", gotTR, pool, err)
	}
	gotTR, pool, err := (&serverOptions{trustedRoot: rootFile, registryCAs: []string{caFile}}).trust()
	if err != nil || gotTR == nil || pool == nil {
		t.Fatalf("flags: %v %v %v", gotTR, pool, err)
	}
	if len(gotTR.FulcioCertificateAuthorities()) != len(vs.FulcioCertificateAuthorities()) {
		t.Errorf("trusted root: %d certificate authorities", len(gotTR.FulcioCertificateAuthorities()))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "registry.internal"}); err != nil {
		t.Errorf("registry certificate not verified by --registry-ca: %v", err)
	}
	for _, c := range []struct {
		o    serverOptions
		want string
	}{
		{serverOptions{trustedRoot: write("bad.json", []byte(`{"mediaType": 1}`))}, "--trusted-root"},
		{serverOptions{trustedRoot: filepath.Join(dir, "missing.json")}, "--trusted-root"},
		{serverOptions{registryCAs: []string{write("garbage.pem", []byte("not a certificate"))}}, "no PEM certificate"},
		{serverOptions{registryCAs: []string{filepath.Join(dir, "missing.pem")}}, "--registry-ca"},
	} {
		if _, _, err := c.o.trust(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	// The flags exist on the command.
	cmd := newServerCmd(&globalOptions{})
	for _, f := range []string{"trusted-root", "registry-ca"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("mamori server has no --%s", f)
		}
	}
}
