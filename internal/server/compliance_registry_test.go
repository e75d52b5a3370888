package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/compliance"
	"mamori/internal/sign/signtest"
	"mamori/internal/store"
)

// privateRegistry is go-containerregistry's registry over TLS on loopback,
// refusing anonymous requests (basic auth u:p).
func privateRegistry(t *testing.T) (host string, roots *x509.CertPool, tr http.RoundTripper) {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	roots = x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return strings.TrimPrefix(srv.URL, "https://"), roots, srv.Client().Transport
}

// TestComplianceRegistryChecks: the registry probe (TLS verified with the
// configured roots, anonymous pulls refused) and the signature results of
// the images a signatures rule covers are stored per registry and image
// and decide 4.2.1, 4.2.3 and 4.1.5; signing the unsigned image flips 4.1.5.
func TestComplianceRegistryChecks(t *testing.T) {
	host, roots, tr := privateRegistry(t)
	ctx := context.Background()
	ropts := []remote.Option{remote.WithTransport(tr), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "u", Password: "p"}))}
	push := func(repo string) name.Digest {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/" + repo + ":1")
		if err := remote.Write(ref, img, ropts...); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return ref.Context().Digest(d.String())
	}
	engines(t, func(t *testing.T, dsn string) {
		signed, unsigned := push("team/signed"), push("team/unsigned")
		key, err := signtest.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Sign(signed, ropts...); err != nil {
			t.Fatal(err)
		}

		e := newEnv(t, dsn, func(c *Config) { c.RegistryRoots = roots })
		op, _ := e.token(auth.RoleOperator)
		viewer, _ := e.token(auth.RoleViewer)
		for i, d := range []name.Digest{signed, unsigned} {
			r := testResult(fmt.Sprintf("s%d", i), d.DigestStr(), time.Now().Add(-time.Hour))
			r.Target.Name = d.Context().Name() + ":1"
			r.Target.RepoTags = []string{r.Target.Name}
			if _, err := upload(ctx, e.ts.URL, op, r); err != nil {
				t.Fatal(err)
			}
		}
		if code, body := e.do("POST", "/api/v1/registries", e.admin, map[string]any{"name": "private", "url": "https://" + host,
			"username": "u", "password": "p"}); code != http.StatusCreated {
			t.Fatalf("registry: %d %s", code, body)
		}
		c, err := e.srv.Store().CreateCluster(ctx, "prod", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		doc := "apiVersion: mamori.dev/v1\nkind: Policy\nname: signed\nadmission:\n- name: signed\n  action: block\n  signatures:\n    registries: [" +
			host + "]\n    keys:\n    - |\n      " + strings.ReplaceAll(strings.TrimSpace(key.PublicPEM), "\n", "\n      ") + "\n"
		if _, _, err := e.srv.Store().PutPolicy(ctx, store.PolicyPut{Name: "signed", Document: doc, Digest: "d1", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.Store().SetClusterPolicy(ctx, c.ID, "signed"); err != nil {
			t.Fatal(err)
		}
		if code, body := e.do("POST", "/api/v1/compliance/assess", op, nil); code != 200 {
			t.Fatalf("assess: %d %s", code, body)
		}
		r := reportOf(t, e, viewer, "")
		if c := r["4.2.1"]; c.Status != compliance.StatusPass || !strings.Contains(c.Evidence[0].Detail, "valid certificate") {
			t.Errorf("4.2.1: %s %s %+v", c.Status, c.Reason, c.Evidence)
		}
		if c := r["4.2.3"]; c.Status != compliance.StatusPass || !strings.Contains(c.Evidence[0].Detail, "team/signed") {
			t.Errorf("4.2.3: %s %s %+v", c.Status, c.Reason, c.Evidence)
		}
		c415 := r["4.1.5"]
		if c415.Status != compliance.StatusFail || !strings.Contains(c415.Reason, "team/unsigned") || !strings.Contains(c415.Reason, "no signature found") {
			t.Fatalf("4.1.5 with an unsigned image: %s %s", c415.Status, c415.Reason)
		}
		var signedEv *compliance.EvidenceRef
		for i, ev := range c415.Evidence {
			if strings.Contains(ev.Name, "team/signed") {
				signedEv = &c415.Evidence[i]
			}
		}
		if signedEv == nil || signedEv.Result != compliance.StatusPass || !strings.Contains(signedEv.Detail, "key:sha256:") {
			t.Errorf("signed image evidence: %+v", c415.Evidence)
		}
		sigs, err := e.srv.Store().ImageSignatures(ctx, "")
		if err != nil || len(sigs) != 2 {
			t.Fatalf("stored signatures: %+v %v", sigs, err)
		}
		if err := key.Sign(unsigned, ropts...); err != nil {
			t.Fatal(err)
		}
		var as api.ComplianceAssessed
		_, body := e.do("POST", "/api/v1/compliance/assess", op, nil)
		if err := json.Unmarshal(body, &as); err != nil {
			t.Fatal(err)
		}
		if c := reportOf(t, e, viewer, "")["4.1.5"]; c.Status != compliance.StatusPass {
			t.Errorf("4.1.5 once both are signed: %s %s", c.Status, c.Reason)
		}
		if c := reportOf(t, e, viewer, "cis-docker")["CIS-Docker-4.5"]; c.Status != compliance.StatusPass {
			t.Errorf("CIS Docker 4.5: %s %s", c.Status, c.Reason)
		}
	})
}
