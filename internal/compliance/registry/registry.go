// Package registry probes a container registry for NIST SP 800-190
// §4.2.1 (insecure connections) and §4.2.3 (insufficient authentication):
// whether it is reached over TLS with a certificate that verifies, and
// whether anonymous pulls of its private repositories are refused. The
// server runs it for every configured registry on the registry scan's
// schedule; its result is compliance.RegistryProbe.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"mamori/internal/compliance"
)

// Outcomes of an anonymous pull.
const (
	Refused = "refused"
	Allowed = "allowed"
)

// DefaultTimeout bounds one probe: a registry that does not answer a TLS
// handshake and a ping in 15 seconds is reported as unreachable.
const DefaultTimeout = 15 * time.Second

// MaxRepositories bounds the repositories probed anonymously per registry.
const MaxRepositories = 20

// Target is a registry to probe.
type Target struct {
	// Address is host[:port].
	Address string
	// Repositories are probed for anonymous pulls (path below the host).
	Repositories []string
	// Roots verify the certificate; nil: the system roots.
	Roots *x509.CertPool
	// PlainHTTP: the registry is configured as insecure (plain HTTP); the
	// probe still tries TLS first and reports plain HTTP as such.
	PlainHTTP bool
}

// Probe probes t. Unreachable registries give a probe with Error set, not
// an error: the error is only for a malformed target.
func Probe(ctx context.Context, t Target, now time.Time) (*compliance.RegistryProbe, error) {
	if _, err := name.NewRegistry(t.Address, name.StrictValidation); err != nil {
		if _, err2 := name.NewRegistry(t.Address, name.Insecure); err2 != nil {
			return nil, fmt.Errorf("registry address %q: %w", t.Address, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	p := &compliance.RegistryProbe{At: now.UTC()}
	probeTLS(ctx, t, p)
	if p.TLS || t.PlainHTTP {
		probeAnonymous(ctx, t, p)
	}
	return p, nil
}

func hostPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, "443")
}

// probeTLS: a verifying handshake; when it fails on the certificate, a
// second one without verification tells TLS apart from no TLS at all.
func probeTLS(ctx context.Context, t Target, p *compliance.RegistryProbe) {
	host, _, err := net.SplitHostPort(hostPort(t.Address))
	if err != nil {
		p.Error = err.Error()
		return
	}
	d := &tls.Dialer{Config: &tls.Config{RootCAs: t.Roots, ServerName: host, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", hostPort(t.Address))
	if err == nil {
		st := conn.(*tls.Conn).ConnectionState()
		p.TLS, p.CertValid = true, true
		if len(st.PeerCertificates) > 0 {
			p.CertExpires = st.PeerCertificates[0].NotAfter.UTC()
		}
		_ = conn.Close()
		return
	}
	var certErr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &unknown) || errors.As(err, &hostErr) || errors.As(err, &invalid) {
		p.TLS, p.CertError = true, err.Error()
		// #nosec G402 -- only to tell "TLS with a bad certificate" apart; nothing is sent.
		loose := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
		if c, err := loose.DialContext(ctx, "tcp", hostPort(t.Address)); err == nil {
			if st := c.(*tls.Conn).ConnectionState(); len(st.PeerCertificates) > 0 {
				p.CertExpires = st.PeerCertificates[0].NotAfter.UTC()
			}
			_ = c.Close()
		}
		return
	}
	// No TLS: does it speak plain HTTP?
	req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.Address+"/v2/", nil)
	if rerr == nil {
		client := &http.Client{Timeout: DefaultTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if resp, herr := client.Do(req); herr == nil {
			_ = resp.Body.Close()
			p.Error = fmt.Sprintf("no TLS (%v); the registry answers plain HTTP (%s)", err, resp.Status)
			return
		}
	}
	p.Error = "unreachable: " + err.Error()
}

// probeAnonymous lists each repository's tags with no credentials.
func probeAnonymous(ctx context.Context, t Target, p *compliance.RegistryProbe) {
	p.Anonymous = map[string]string{}
	var opts []name.Option
	if t.PlainHTTP && !p.TLS {
		opts = append(opts, name.Insecure)
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if t.Roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: t.Roots, MinVersion: tls.VersionTLS12}
	}
	for i, repo := range t.Repositories {
		if i >= MaxRepositories {
			break
		}
		r, err := name.NewRepository(t.Address+"/"+repo, opts...)
		if err != nil {
			p.Anonymous[repo] = "unknown: " + err.Error()
			continue
		}
		_, err = remote.List(r, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous), remote.WithTransport(tr))
		var te *transport.Error
		switch {
		case err == nil:
			p.Anonymous[repo] = Allowed
		case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
			p.Anonymous[repo] = Refused
		default:
			p.Anonymous[repo] = "unknown: " + err.Error()
		}
	}
}
