package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Generated certificate files in the data dir, and their lifetime.
const (
	certFileName = "tls-cert.pem"
	keyPEMName   = "tls-key.pem"
	// selfSignedValidity: a year, then the next start after expiry
	// generates a new one (clients pinning it must re-pin).
	selfSignedValidity = 365 * 24 * time.Hour
)

// loadTLS returns the TLS configuration: the given certificate, or the
// self-signed one in the data dir (generated when missing or expired), and
// the served certificate's SHA-256 fingerprint.
func loadTLS(cfg Config) (*tls.Config, string, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, certFileName)
		keyFile = filepath.Join(cfg.DataDir, keyPEMName)
		if err := ensureSelfSigned(certFile, keyFile, cfg.Listen); err != nil {
			return nil, "", err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("server: load TLS certificate %s: %w", certFile, err)
	}
	fp := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}, hex.EncodeToString(fp[:]), nil
}

// ensureSelfSigned generates an ECDSA P-256 self-signed certificate for
// localhost, the loopback addresses, the host name and the listen host,
// unless a valid one is already there.
func ensureSelfSigned(certFile, keyFile, listen string) error {
	if raw, err := os.ReadFile(certFile); err == nil {
		if b, _ := pem.Decode(raw); b != nil {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil && time.Now().Add(24*time.Hour).Before(c.NotAfter) {
				if _, err := os.Stat(keyFile); err == nil {
					return nil
				}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("server: read %s: %w", certFile, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server: generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("server: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mamori server", Organization: []string{"mamori (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can pin it as their CA (--ca-file)
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsLoopback() && !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if host != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("server: create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("server: marshal TLS key: %w", err)
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("server: replace %s: %w", f, err)
		}
	}
	if err := writeFileExcl(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	return writeFileExcl(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
