package registry

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrreg "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// authRegistry is the in-process registry where repositories under
// "private/" need credentials (401 otherwise) unless open is set.
func authRegistry(open bool) http.Handler {
	h := ggcrreg.New(ggcrreg.Logger(log.New(io.Discard, "", 0)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open && strings.HasPrefix(r.URL.Path, "/v2/private/") {
			if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func seed(t *testing.T, srv *httptest.Server, insecure bool) string {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	for _, repo := range []string{"private/app", "public/app"} {
		ref, err := name.ParseReference(host+"/"+repo+":1", opts...)
		if err != nil {
			t.Fatal(err)
		}
		ro := []remote.Option{remote.WithAuth(basic{})}
		if srv.TLS != nil {
			ro = append(ro, remote.WithTransport(srv.Client().Transport))
		}
		if err := remote.Write(ref, img, ro...); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

type basic struct{}

func (basic) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: "ci", Password: "s3cret"}, nil
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

func TestTLSRegistry(t *testing.T) {
	for _, open := range []bool{false, true} {
		srv := httptest.NewTLSServer(authRegistry(open))
		host := seed(t, srv, false)
		p, err := Probe(context.Background(), Target{Address: host, Repositories: []string{"private/app"}, Roots: poolOf(srv)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := Refused
		if open {
			want = Allowed
		}
		if !p.TLS || !p.CertValid || p.CertExpires.IsZero() || p.Anonymous["private/app"] != want {
			t.Errorf("open=%v: %+v", open, p)
		}
		srv.Close()
	}
}

func TestUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(authRegistry(false))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	p, err := Probe(context.Background(), Target{Address: host}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !p.TLS || p.CertValid || !strings.Contains(p.CertError, "certificate") || p.CertExpires.IsZero() {
		t.Fatalf("%+v", p)
	}
}

func TestPlainHTTPRegistry(t *testing.T) {
	srv := httptest.NewServer(authRegistry(true))
	defer srv.Close()
	host := seed(t, srv, true)
	p, err := Probe(context.Background(), Target{Address: host, Repositories: []string{"private/app"}, PlainHTTP: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.TLS || !strings.Contains(p.Error, "plain HTTP") || p.Anonymous["private/app"] != Allowed {
		t.Fatalf("%+v", p)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := Probe(context.Background(), Target{Address: addr}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.TLS || !strings.HasPrefix(p.Error, "unreachable") {
		t.Fatalf("%+v", p)
	}
	if _, err := Probe(context.Background(), Target{Address: "bad host/x"}, time.Now()); err == nil {
		t.Fatal("malformed address accepted")
	}
}
