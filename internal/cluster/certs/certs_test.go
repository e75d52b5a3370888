package certs

import (
	"context"
	"crypto/x509"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// verifies reports whether the served certificate verifies against bundle.
func verifies(t *testing.T, m *Manager, bundle []byte, at time.Time) bool {
	t.Helper()
	c, err := m.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return false
	}
	_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, DNSName: "mamori-cluster.mamori.svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

// TestRotation walks a CA's whole life on a fake clock, checking at every
// step that the served certificate verifies against the bundle the API
// server has had for an overlap: no admission fails while either rotates.
func TestRotation(t *testing.T) {
	kube := fake.NewClientset()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := New(kube, Options{Namespace: "mamori", SecretName: "tls", DNSNames: []string{"mamori-cluster.mamori.svc"},
		CAValidity: 100 * time.Hour, CertValidity: 30 * time.Hour, Overlap: time.Hour, RotateAt: 0.5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The API server's view: the bundle it was given, and since when.
	var apiBundle []byte
	var apiSince time.Time
	keep := func() {
		b := m.CABundle()
		if string(b) != string(apiBundle) {
			apiBundle, apiSince = b, now
		}
		m.Applied(b, now)
	}
	var cas, certs []string
	for step := 0; step < 400; step++ {
		if err := m.Sync(ctx); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		keep()
		c, _ := m.GetCertificate(nil)
		if !verifies(t, m, apiBundle, now) {
			t.Fatalf("step %d (%v): the served certificate does not verify against the API server's bundle", step, now)
		}
		if len(certs) == 0 || certs[len(certs)-1] != string(c.Certificate[0]) {
			certs = append(certs, string(c.Certificate[0]))
			issuer := c.Leaf.Issuer.CommonName
			if len(cas) == 0 || cas[len(cas)-1] != issuer {
				cas = append(cas, issuer)
				if len(cas) > 1 && now.Sub(apiSince) < 0 {
					t.Fatalf("step %d: a new CA signs before the API server had it", step)
				}
			}
		}
		now = now.Add(time.Hour / 2)
	}
	// 200 hours: the CA (100 h, rotated at 50 h) rotates about four times,
	// the serving certificate (30 h, rotated at 15 h) more often.
	if len(cas) < 4 || len(certs) < 12 {
		t.Fatalf("%d CAs and %d certificates in 200 hours", len(cas), len(certs))
	}
	// The bundle holds at most three CAs and, after an overlap, one again.
	sec, err := kube.CoreV1().Secrets("mamori").Get(ctx, "tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Labels["app.kubernetes.io/managed-by"] != "mamori-cluster" {
		t.Fatalf("secret labels %v", sec.Labels)
	}
}

// TestPromotionWaitsForTheAPIServer: a next CA does not sign until the
// webhook configuration carried it for an overlap.
func TestPromotionWaitsForTheAPIServer(t *testing.T) {
	kube := fake.NewClientset()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := New(kube, Options{Namespace: "mamori", SecretName: "tls", IPs: []net.IP{net.ParseIP("127.0.0.1")},
		CAValidity: 10 * time.Hour, CertValidity: time.Hour, Overlap: time.Hour, RotateAt: 0.5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := m.GetCertificate(nil)
	now = now.Add(6 * time.Hour) // past the CA's rotation point: a next CA joins
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour) // long past the overlap, but never applied
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := m.GetCertificate(nil)
	if c.Leaf.Issuer.CommonName != first.Leaf.Issuer.CommonName {
		t.Fatal("the next CA signs though the webhook configuration never carried it")
	}
	m.Applied(m.CABundle(), now)
	now = now.Add(30 * time.Minute)
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := m.GetCertificate(nil); c.Leaf.Issuer.CommonName != first.Leaf.Issuer.CommonName {
		t.Fatal("the next CA signs before an overlap passed")
	}
	now = now.Add(31 * time.Minute)
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := m.GetCertificate(nil); c.Leaf.Issuer.CommonName == first.Leaf.Issuer.CommonName {
		t.Fatal("the next CA does not sign an overlap after it was applied")
	}
}

// TestCorruptSecret: unreadable material is replaced, never served.
func TestCorruptSecret(t *testing.T) {
	kube := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "mamori"},
		Data: map[string][]byte{keyCA: []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"), keyCAKey: []byte("x")}})
	m, err := New(kube, Options{Namespace: "mamori", SecretName: "tls", DNSNames: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !verifies(t, m, m.CABundle(), time.Now()) {
		// DNS name of verifies() is not in this certificate: check the chain only.
		c, _ := m.GetCertificate(nil)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(m.CABundle())
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(kube, Options{Namespace: "mamori", SecretName: "tls", CAValidity: time.Hour, Overlap: time.Hour}); err == nil {
		t.Fatal("a CA that cannot outlive its rotation was accepted")
	}
}
