package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mamori/internal/api"
	"mamori/internal/demo"
	"mamori/internal/model"
	"mamori/internal/store"
)

const (
	regUser     = "scanner"
	regPassword = "Reg1stry-Pa55word-never-logged"
)

// testRegistry is go-containerregistry's in-process registry behind basic
// auth on 127.0.0.1, counting the requests that reach it.
type testRegistry struct {
	srv        *httptest.Server
	host       string
	requests   atomic.Int64
	layerGets  atomic.Int64
	layerSet   map[string]bool
	authFailed atomic.Int64
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{layerSet: map[string]bool{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != regUser || p != regPassword {
			tr.authFailed.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		tr.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && tr.layerSet[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] {
			tr.layerGets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

// push writes img to repo:tag and records its layer digests.
func (tr *testRegistry) push(t *testing.T, img v1.Image, repoTag string) {
	t.Helper()
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: regUser, Password: regPassword})); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.Digest()
		tr.layerSet[d.String()] = true
	}
}

// variant is the demo image with a label, so each tag has its own digest
// while sharing the demo's layers (real dpkg and npm package files).
func variant(t *testing.T, base v1.Image, label string) v1.Image {
	t.Helper()
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Labels = map[string]string{"org.opencontainers.image.version": label}
	img, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRegistrySyncAndRematch: a registry with basic auth, repository and
// tag filters; the server lists, filters, scans (real package files) and
// stores the images; a re-sync takes layers from the cache; then a new
// vulnerability DB re-matches every stored inventory without one request
// to the registry.
func TestRegistrySyncAndRematch(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		reg := newTestRegistry(t)
		base, err := demo.Image()
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{"0.9", "1.4.2", "1.4.10"} {
			reg.push(t, variant(t, base, tag), "shop/checkout:"+tag)
		}
		reg.push(t, variant(t, base, "x"), "other/thing:1")

		dbDir := filepath.Join(t.TempDir(), "db") // no DB yet
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })

		code, body := e.do("POST", "/api/v1/registries", e.admin, map[string]any{
			"name": "local", "url": reg.host, "username": regUser, "password": regPassword,
			"repositories": []string{"shop/*"}, "tags": map[string]any{"latest": 2}, "schedule": "6h",
		})
		if code != 201 {
			t.Fatalf("create registry: %d %s", code, body)
		}
		if strings.Contains(string(body), regPassword) || !strings.Contains(string(body), `"passwordSet":true`) {
			t.Fatalf("registry response leaks or misses the password flag: %s", body)
		}
		var rv api.Registry
		if err := json.Unmarshal(body, &rv); err != nil {
			t.Fatal(err)
		}
		if rv.TagFilter != "latest:2" || rv.RepositoryFilter != "shop/*" || rv.Schedule != "6h0m0s" {
			t.Errorf("registry view %+v", rv)
		}
		stored, err := e.srv.Store().GetRegistry(ctx, rv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Secret) == 0 || bytes.Contains(stored.Secret, []byte(regPassword)) {
			t.Fatalf("the stored secret is empty or in the clear")
		}

		start := time.Now()
		rep, err := e.srv.SyncRegistry(ctx, rv.ID)
		if err != nil {
			t.Fatalf("sync: %v (%+v)", err, rep)
		}
		t.Logf("first sync: %+v in %v, %d layer blob GETs", rep, time.Since(start), reg.layerGets.Load())
		if rep.Repositories != 1 || rep.Images != 2 || rep.Ingested != 2 || rep.Failed != 0 {
			t.Fatalf("sync report %+v, want 1 repository (shop/checkout), 2 images (latest:2 = 1.4.10, 1.4.2)", rep)
		}
		imgs, err := e.srv.Store().ListImages(ctx, store.ImageFilter{Sort: store.ImageSortName})
		if err != nil {
			t.Fatal(err)
		}
		if imgs.Total != 2 {
			t.Fatalf("images = %d, want 2", imgs.Total)
		}
		names := []string{imgs.Images[0].Name, imgs.Images[1].Name}
		for _, img := range imgs.Images {
			if img.PackageCount == 0 {
				t.Errorf("%s: no packages found", img.Name)
			}
			if img.Vulnerabilities.Total() != 0 {
				t.Errorf("%s: %d vulnerabilities without a DB", img.Name, img.Vulnerabilities.Total())
			}
			if img.FindingCounts.Secret == 0 {
				t.Errorf("%s: the demo's planted secret was not found", img.Name)
			}
		}
		if !strings.HasSuffix(names[0], "shop/checkout:1.4.10") || !strings.HasSuffix(names[1], "shop/checkout:1.4.2") {
			t.Errorf("scanned %v, want 1.4.10 and 1.4.2", names)
		}
		r2, _ := e.srv.Store().GetRegistry(ctx, rv.ID)
		if r2.LastSync.Status != store.SyncOK {
			t.Errorf("last sync %+v", r2.LastSync)
		}

		// A re-sync takes every layer from the shared cache.
		before := reg.layerGets.Load()
		if rep, err := e.srv.SyncRegistry(ctx, rv.ID); err != nil || rep.Ingested != 2 {
			t.Fatalf("re-sync: %+v %v", rep, err)
		}
		if n := reg.layerGets.Load() - before; n != 0 {
			t.Errorf("re-sync fetched %d layer blobs, want 0 (layer cache)", n)
		}

		// Wrong credentials: the sync fails, clearly, without the password.
		bad := "wrong-" + regPassword
		code, body = e.do("POST", "/api/v1/registries", e.admin, map[string]any{"name": "bad", "url": reg.host, "username": regUser, "password": bad})
		if code != 201 {
			t.Fatalf("create bad registry: %d %s", code, body)
		}
		var bv api.Registry
		_ = json.Unmarshal(body, &bv)
		if _, err := e.srv.SyncRegistry(ctx, bv.ID); err == nil {
			t.Fatal("sync with a wrong password succeeded")
		}
		code, body = e.do("GET", fmt.Sprintf("/api/v1/registries/%d", bv.ID), e.admin, nil)
		if code != 200 || !strings.Contains(string(body), `"status":"failed"`) || strings.Contains(string(body), bad) {
			t.Errorf("failed sync view: %d %s", code, body)
		}

		// The vulnerability DB appears: every stored inventory is re-matched
		// with no request to the registry.
		if _, err := demo.ImportDB(ctx, dbDir); err != nil {
			t.Fatal(err)
		}
		reqs := reg.requests.Load()
		start = time.Now()
		e.srv.checkVulnDB(ctx)
		t.Logf("re-match after DB change: %v", time.Since(start))
		if n := reg.requests.Load() - reqs; n != 0 {
			t.Errorf("re-match sent %d requests to the registry, want 0", n)
		}
		imgs, err = e.srv.Store().ListImages(ctx, store.ImageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs.Images {
			if img.Vulnerabilities.Total() == 0 {
				t.Errorf("%s: no vulnerabilities after re-match", img.Name)
			}
		}
		code, body = e.do("GET", "/api/v1/db", e.admin, nil)
		var info api.DBInfo
		if code != 200 || json.Unmarshal(body, &info) != nil || !info.Available || info.Rematch.Images != 2 ||
			info.MatchedBuiltAt != info.BuiltAt.UTC().Format(time.RFC3339Nano) {
			t.Errorf("db info: %d %s", code, body)
		}
		// An unchanged DB is not re-matched again.
		finished := info.Rematch.FinishedAt
		e.srv.checkVulnDB(ctx)
		_, body = e.do("GET", "/api/v1/db", e.admin, nil)
		_ = json.Unmarshal(body, &info)
		if !info.Rematch.FinishedAt.Equal(finished) {
			t.Errorf("unchanged DB re-matched again")
		}
		// A new sync now matches the images it scans.
		if _, err := e.srv.SyncRegistry(ctx, rv.ID); err != nil {
			t.Fatal(err)
		}
		code, body = e.do("GET", "/api/v1/vulnerabilities?limit=5", e.admin, nil)
		if code != 200 || strings.Contains(string(body), `"total":0`) {
			t.Errorf("vulnerabilities after sync: %d %s", code, body)
		}
		if strings.Contains(e.logs.String(), regPassword) || strings.Contains(e.logs.String(), bad) {
			t.Errorf("a registry password appears in the server log")
		}
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "cache", "layers")); err != nil {
			t.Errorf("layer cache not in the data dir: %v", err)
		}
	})
}

// eicar is the EICAR anti-malware test file, assembled at run time so that
// this source file is not itself a detection.
func eicar() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}
	return []byte(strings.Join(parts, ""))
}

// TestRegistrySyncMalware: registry scans run the malware scanner with the
// CLI's defaults: the built-in hash list finds EICAR in an image layer;
// a clamd that does not answer leaves a warning on the scan, not a failure.
func TestRegistrySyncMalware(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		reg := newTestRegistry(t)
		// Small images of their own: the demo image has an EICAR file planted.
		image := func(files map[string][]byte) v1.Image {
			layer, err := crane.Layer(files)
			if err != nil {
				t.Fatal(err)
			}
			img, err := mutate.AppendLayers(empty.Image, layer)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
		readme := []byte("nothing to see here\n")
		reg.push(t, image(map[string][]byte{"opt/tools/README": readme, "opt/tools/test.com": eicar()}), "shop/infected:1")
		reg.push(t, image(map[string][]byte{"opt/tools/README": readme}), "shop/clean:1")

		noClamd := "unix://" + filepath.Join(t.TempDir(), "clamd.sock")
		e := newEnv(t, dsn, func(c *Config) { c.Clamd = noClamd })
		code, body := e.do("POST", "/api/v1/registries", e.admin, map[string]any{
			"name": "local", "url": reg.host, "username": regUser, "password": regPassword, "repositories": []string{"shop/*"},
		})
		if code != 201 {
			t.Fatalf("create registry: %d %s", code, body)
		}
		var rv api.Registry
		if err := json.Unmarshal(body, &rv); err != nil {
			t.Fatal(err)
		}
		rep, err := e.srv.SyncRegistry(ctx, rv.ID)
		if err != nil || rep.Ingested != 2 || rep.Failed != 0 {
			t.Fatalf("sync: %+v %v", rep, err)
		}
		imgs, err := e.srv.Store().ListImages(ctx, store.ImageFilter{Sort: store.ImageSortName})
		if err != nil || imgs.Total != 2 {
			t.Fatalf("images: %+v %v", imgs, err)
		}
		for _, img := range imgs.Images {
			d, err := e.srv.Store().GetImage(ctx, img.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(d.Scanners, "malware") {
				t.Errorf("%s: scanners %v, want malware among them", img.Name, d.Scanners)
			}
			if !slices.ContainsFunc(d.Warnings, func(w string) bool { return strings.Contains(w, "clamd not reachable at "+noClamd) }) {
				t.Errorf("%s: warnings %q, want clamd not reachable", img.Name, d.Warnings)
			}
			mal, err := e.srv.Store().ListFindings(ctx, img.ID, model.KindMalware)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasSuffix(img.Name, "shop/infected:1"):
				if len(mal) != 1 || mal[0].ID != "EICAR-Test-File" || mal[0].Engine != "sha256" || mal[0].Location.Path != "opt/tools/test.com" ||
					img.FindingCounts.Malware != 1 {
					t.Errorf("%s: malware findings %+v (count %d), want EICAR-Test-File in opt/tools/test.com", img.Name, mal, img.FindingCounts.Malware)
				}
			case len(mal) != 0:
				t.Errorf("%s: malware findings in the clean image: %+v", img.Name, mal)
			}
		}
		if !strings.Contains(e.logs.String(), "clamd not reachable") {
			t.Errorf("the missing clamd is not logged")
		}
	})
}
