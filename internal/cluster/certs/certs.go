// Package certs keeps the admission webhook's TLS material: a CA the
// component generates and a serving certificate it signs, both stored in a
// Secret of the component's namespace (so that replicas and restarts share
// them), rotated before they expire without a failed admission.
//
// The API server verifies the webhook against the CA bundle of the webhook
// configuration. Rotation keeps that bundle ahead of the certificate:
//
//  1. A new CA is made "next" and added to the bundle while the current
//     one keeps signing (the configuration is updated at once).
//  2. After the overlap (time for the API server to load the new bundle),
//     the next CA becomes current, a serving certificate signed by it is
//     served, and the old CA stays in the bundle as "old".
//  3. After another overlap the old CA leaves the bundle.
//
// A serving certificate alone is re-signed by the current CA when it nears
// its end: the bundle does not change, so nothing has to propagate.
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Defaults, each with its reason.
const (
	// DefaultCAValidity: a year; the CA rotates itself, so a short life
	// costs nothing and bounds what a leaked key is worth.
	DefaultCAValidity = 365 * 24 * time.Hour
	// DefaultCertValidity: a month for the serving certificate.
	DefaultCertValidity = 30 * 24 * time.Hour
	// DefaultRotateAt: rotate when two thirds of a validity have passed,
	// leaving a third for a component that was down to catch up.
	DefaultRotateAt = 2.0 / 3
	// DefaultOverlap: the API server reloads a webhook configuration within
	// seconds; a new CA is trusted for this long before it signs, an old
	// one after it stopped.
	DefaultOverlap = 2 * time.Minute
	// DefaultInterval: how often the Secret is read and rotation checked.
	DefaultInterval = 30 * time.Second
)

// Keys of the Secret.
const (
	keyCA        = "ca.crt"
	keyCAKey     = "ca.key"
	keyNextCA    = "next-ca.crt"
	keyNextCAKey = "next-ca.key"
	keyNextSince = "next-since"
	keyOldCA     = "old-ca.crt"
	keyOldUntil  = "old-until"
	keyCert      = corev1.TLSCertKey
	keyKey       = corev1.TLSPrivateKeyKey
)

// Options configure a Manager.
type Options struct {
	// Namespace and SecretName locate the Secret. Required.
	Namespace, SecretName string
	// DNSNames and IPs are the serving certificate's names.
	DNSNames []string
	IPs      []net.IP
	// Zero durations take the defaults.
	CAValidity, CertValidity, Overlap, Interval time.Duration
	// RotateAt is the fraction of a validity after which it is renewed.
	RotateAt float64
	Logger   *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Manager keeps the TLS material current.
type Manager struct {
	kube kubernetes.Interface
	o    Options
	log  *slog.Logger
	cur  atomic.Pointer[material]

	mu      sync.Mutex
	waiters []chan struct{}
	// applied is the bundle the webhook configuration was last written
	// with, and when (Applied): a next CA signs only once the API server
	// has had it for an overlap.
	applied      []byte
	appliedSince time.Time
}

type material struct {
	cert     *tls.Certificate
	bundle   []byte
	notAfter time.Time
}

// New returns a manager; Sync (or Run) loads the material.
func New(kube kubernetes.Interface, o Options) (*Manager, error) {
	if o.Namespace == "" || o.SecretName == "" {
		return nil, errors.New("certs: namespace and secret name are required")
	}
	if o.CAValidity <= 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity <= 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.Overlap <= 0 {
		o.Overlap = DefaultOverlap
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.RotateAt <= 0 || o.RotateAt >= 1 {
		o.RotateAt = DefaultRotateAt
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// A CA must outlive its rotation: the next one is made at RotateAt and
	// signs an Overlap later, while the old one is still valid.
	if left := time.Duration(float64(o.CAValidity) * (1 - o.RotateAt)); left <= 2*o.Overlap {
		return nil, fmt.Errorf("certs: a CA valid %v rotated at %.2f leaves %v, less than two overlaps of %v", o.CAValidity, o.RotateAt, left, o.Overlap)
	}
	if o.CertValidity >= o.CAValidity {
		return nil, fmt.Errorf("certs: the serving certificate (%v) must be valid less long than the CA (%v)", o.CertValidity, o.CAValidity)
	}
	return &Manager{kube: kube, o: o, log: o.Logger}, nil
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.cur.Load()
	if c == nil {
		return nil, errors.New("certs: no certificate yet")
	}
	return c.cert, nil
}

// CABundle is the PEM of every CA the API server must trust now.
func (m *Manager) CABundle() []byte {
	if c := m.cur.Load(); c != nil {
		return slices.Clone(c.bundle)
	}
	return nil
}

// Applied records that the webhook configuration now carries bundle (the
// keeper calls it after each successful write). A new CA starts signing
// only an overlap after a bundle with it was applied.
func (m *Manager) Applied(bundle []byte, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bytes.Equal(m.applied, bundle) {
		m.applied, m.appliedSince = slices.Clone(bundle), at
	}
}

// trusted reports whether the applied bundle has carried ca for an overlap.
func (m *Manager) trusted(caPEM []byte, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Contains(m.applied, caPEM) && !now.Before(m.appliedSince.Add(m.o.Overlap))
}

// Changed returns a channel closed at the next change of the bundle or
// the certificate.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{})
	m.waiters = append(m.waiters, ch)
	return ch
}

// Run syncs every interval until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("webhook certificates", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync reads the Secret, creates or rotates what is due, writes it back
// when it changed, and loads what it holds.
func (m *Manager) Sync(ctx context.Context) error {
	now := m.o.Now()
	sec, err := m.kube.CoreV1().Secrets(m.o.Namespace).Get(ctx, m.o.SecretName, metav1.GetOptions{})
	create := apierrors.IsNotFound(err)
	if err != nil && !create {
		return fmt.Errorf("certs: read secret %s/%s: %w", m.o.Namespace, m.o.SecretName, err)
	}
	if create {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: m.o.SecretName, Namespace: m.o.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "mamori-cluster"}}, Type: corev1.SecretTypeOpaque}
	}
	data := map[string][]byte{}
	for k, v := range sec.Data {
		data[k] = v
	}
	changed, err := m.step(data, now)
	if err != nil {
		return err
	}
	if changed {
		sec.Data = data
		if create {
			_, err = m.kube.CoreV1().Secrets(m.o.Namespace).Create(ctx, sec, metav1.CreateOptions{})
		} else {
			_, err = m.kube.CoreV1().Secrets(m.o.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			// Another replica wrote first: take what it wrote next time.
			m.log.Info("webhook certificates: another replica updated them first")
			return nil
		}
		if err != nil {
			return fmt.Errorf("certs: write secret %s/%s: %w", m.o.Namespace, m.o.SecretName, err)
		}
	}
	return m.load(data)
}

// step applies what is due at now to the Secret's data; it reports
// whether anything changed.
func (m *Manager) step(d map[string][]byte, now time.Time) (bool, error) {
	ca, caKey, err := parsePair(d[keyCA], d[keyCAKey])
	if err != nil {
		// Missing or unreadable: start over (the bundle changes with it).
		if len(d[keyCA]) > 0 {
			m.log.Warn("webhook certificates: unreadable CA in the secret, making a new one", "err", err)
		}
		clear(d)
		if ca, caKey, err = newCA(now, m.o.CAValidity); err != nil {
			return false, err
		}
		putPair(d, keyCA, keyCAKey, ca, caKey)
		if err := m.issue(d, ca, caKey, now); err != nil {
			return false, err
		}
		m.log.Info("webhook certificates: CA created", "notAfter", ca.NotAfter)
		return true, nil
	}
	changed := false
	// 3. The old CA leaves the bundle after its overlap.
	if until, err := time.Parse(time.RFC3339Nano, string(d[keyOldUntil])); len(d[keyOldCA]) > 0 && (err != nil || !now.Before(until)) {
		delete(d, keyOldCA)
		delete(d, keyOldUntil)
		changed = true
	}
	next, nextKey, nextErr := parsePair(d[keyNextCA], d[keyNextCAKey])
	since, sinceErr := time.Parse(time.RFC3339Nano, string(d[keyNextSince]))
	switch {
	case nextErr == nil && sinceErr == nil && !now.Before(since.Add(m.o.Overlap)) && m.trusted(d[keyNextCA], now):
		// 2. The next CA has been trusted for an overlap: it signs now.
		d[keyOldCA] = pemCert(ca)
		d[keyOldUntil] = []byte(now.Add(m.o.Overlap).UTC().Format(time.RFC3339Nano))
		putPair(d, keyCA, keyCAKey, next, nextKey)
		delete(d, keyNextCA)
		delete(d, keyNextCAKey)
		delete(d, keyNextSince)
		ca, caKey = next, nextKey
		if err := m.issue(d, ca, caKey, now); err != nil {
			return false, err
		}
		m.log.Info("webhook certificates: new CA in use", "notAfter", ca.NotAfter)
		return true, nil
	case nextErr != nil && due(ca.NotBefore, ca.NotAfter, m.o.RotateAt, now):
		// 1. The CA nears its end: a next one joins the bundle.
		n, nk, err := newCA(now, m.o.CAValidity)
		if err != nil {
			return false, err
		}
		putPair(d, keyNextCA, keyNextCAKey, n, nk)
		d[keyNextSince] = []byte(now.UTC().Format(time.RFC3339Nano))
		changed = true
		m.log.Info("webhook certificates: next CA trusted, signing after the overlap", "overlap", m.o.Overlap)
	case nextErr != nil && (len(d[keyNextCA]) > 0 || len(d[keyNextSince]) > 0):
		delete(d, keyNextCA)
		delete(d, keyNextCAKey)
		delete(d, keyNextSince)
		changed = true
	}
	cert, _, err := parsePair(d[keyCert], d[keyKey])
	if err != nil || cert.CheckSignatureFrom(ca) != nil || due(cert.NotBefore, cert.NotAfter, m.o.RotateAt, now) || !m.sameNames(cert) {
		if err := m.issue(d, ca, caKey, now); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

func (m *Manager) sameNames(c *x509.Certificate) bool {
	if !slices.Equal(c.DNSNames, m.o.DNSNames) || len(c.IPAddresses) != len(m.o.IPs) {
		return false
	}
	for i, ip := range m.o.IPs {
		if !c.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

// due reports whether a validity from nb to na has passed its fraction at.
func due(nb, na time.Time, at float64, now time.Time) bool {
	return !now.Before(nb.Add(time.Duration(float64(na.Sub(nb)) * at)))
}

// issue signs a serving certificate with ca into d.
func (m *Manager) issue(d map[string][]byte, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: key: %w", err)
	}
	nb := now.Add(-backdate(m.o.CertValidity))
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: firstName(m.o.DNSNames, m.o.IPs)},
		NotBefore: nb, NotAfter: now.Add(m.o.CertValidity), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: m.o.DNSNames, IPAddresses: m.o.IPs}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("certs: sign the serving certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	putPair(d, keyCert, keyKey, c, key)
	m.log.Info("webhook certificates: serving certificate issued", "notAfter", c.NotAfter)
	return nil
}

// backdate allows for clocks slightly behind: a minute, at most a tenth
// of the validity.
func backdate(validity time.Duration) time.Duration { return min(time.Minute, validity/10) }

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: CA key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "mamori cluster webhook CA " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore: now.Add(-backdate(validity)), NotAfter: now.Add(validity), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	return c, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand never fails on supported platforms
	return n
}

func firstName(dns []string, ips []net.IP) string {
	if len(dns) > 0 {
		return dns[0]
	}
	if len(ips) > 0 {
		return ips[0].String()
	}
	return "mamori-cluster"
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func putPair(d map[string][]byte, certKey, keyKey string, c *x509.Certificate, k *ecdsa.PrivateKey) {
	der, _ := x509.MarshalECPrivateKey(k) // a P-256 key always marshals
	d[certKey] = pemCert(c)
	d[keyKey] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// parsePair reads a PEM certificate and its EC private key.
func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("certs: no PEM certificate")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return nil, nil, errors.New("certs: no PEM EC private key")
	}
	k, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&k.PublicKey) {
		return nil, nil, errors.New("certs: the key does not match the certificate")
	}
	return c, k, nil
}

// load makes d's certificate the served one and its CAs the bundle.
func (m *Manager) load(d map[string][]byte) error {
	pair, err := tls.X509KeyPair(d[keyCert], d[keyKey])
	if err != nil {
		return fmt.Errorf("certs: serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	pair.Leaf = leaf
	var bundle []byte
	for _, k := range []string{keyCA, keyNextCA, keyOldCA} {
		if len(d[k]) > 0 {
			bundle = append(bundle, d[k]...)
		}
	}
	old := m.cur.Load()
	m.cur.Store(&material{cert: &pair, bundle: bundle, notAfter: leaf.NotAfter})
	if old == nil || !bytes.Equal(old.bundle, bundle) || !bytes.Equal(old.cert.Certificate[0], pair.Certificate[0]) {
		m.mu.Lock()
		for _, ch := range m.waiters {
			close(ch)
		}
		m.waiters = nil
		m.mu.Unlock()
	}
	return nil
}

// ServingNotAfter is the end of the served certificate (zero before Sync).
func (m *Manager) ServingNotAfter() time.Time {
	if c := m.cur.Load(); c != nil {
		return c.notAfter
	}
	return time.Time{}
}
