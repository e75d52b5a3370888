package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry runs go-containerregistry's in-process registry on
// 127.0.0.1. With user set, every request needs HTTP basic auth, as an
// htpasswd-protected distribution registry does.
func startRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="mamori-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// isolateDockerConfig points DOCKER_CONFIG and HOME at empty temp dirs so
// the developer's own credentials never leak into a test.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("HOME", t.TempDir())
	t.Setenv(EnvUsername, "")
	t.Setenv(EnvPassword, "")
	return dir
}

func TestRegistryImageAndIndex(t *testing.T) {
	isolateDockerConfig(t)
	host := startRegistry(t, "", "")
	ctx := context.Background()

	src := testImage(t, "linux/amd64", map[string]string{"etc/issue": "single"})
	ref, _ := name.ParseReference(host + "/single:1")
	if err := remote.Write(ref, src); err != nil {
		t.Fatal(err)
	}
	idx := testIndex(t, "linux/amd64", "linux/arm64/v8")
	iref, _ := name.ParseReference(host + "/multi:latest")
	if err := remote.WriteIndex(iref, idx); err != nil {
		t.Fatal(err)
	}

	img, err := Open(ctx, "registry:"+host+"/single:1")
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	want, _ := src.Digest()
	if img.Digest() != want.String() || img.Source() != SourceRegistry {
		t.Errorf("digest %s source %s", img.Digest(), img.Source())
	}
	if got := readLayerFiles(t, img.Image())["etc/issue"]; got != "single" {
		t.Errorf("content %q", got)
	}
	if rt := img.RepoTags(); len(rt) != 1 || rt[0] != host+"/single:1" {
		t.Errorf("RepoTags %v", rt)
	}

	idxDigest, _ := idx.Digest()
	for _, tc := range []struct{ platform, want string }{{"", "linux/amd64"}, {"linux/arm64", "linux/arm64/v8"}} {
		var opts []Option
		if tc.platform != "" {
			opts = append(opts, WithPlatform(tc.platform))
		}
		img, err := Open(ctx, "registry:"+host+"/multi:latest", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if img.Platform() != tc.want {
			t.Errorf("platform %s want %s", img.Platform(), tc.want)
		}
		if got := readLayerFiles(t, img.Image())["etc/platform"]; got != tc.want {
			t.Errorf("content %q want %q", got, tc.want)
		}
		if rd := img.RepoDigests(); len(rd) != 1 || !strings.HasSuffix(rd[0], "@"+idxDigest.String()) {
			t.Errorf("RepoDigests %v want the index digest %s", rd, idxDigest)
		}
		if img.Digest() == idxDigest.String() {
			t.Errorf("Digest is the index digest, want the platform manifest's")
		}
		img.Close()
	}
	_, err = Open(ctx, "registry:"+host+"/multi:latest", WithPlatform("windows/amd64"))
	wantErr(t, err, ErrNoPlatform, "linux/amd64, linux/arm64/v8")

	_, err = Open(ctx, "registry:"+host+"/absent:1")
	wantErr(t, err, ErrNotFound, "")
}

func TestRegistryBasicAuth(t *testing.T) {
	cfgDir := isolateDockerConfig(t)
	host := startRegistry(t, "alice", "s3cret")
	ctx := context.Background()
	src := testImage(t, "linux/amd64", map[string]string{"private": "yes"})
	ref, _ := name.ParseReference(host + "/private/app:1")
	if err := remote.Write(ref, src, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}

	// No credentials: a clear error naming how to provide them.
	_, err := Open(ctx, "registry:"+host+"/private/app:1")
	wantErr(t, err, nil, "UNAUTHORIZED")
	wantErr(t, err, nil, EnvUsername)
	t.Logf("without credentials: %v", err)

	// Credentials from $DOCKER_CONFIG/config.json, as `docker login` writes.
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := Open(ctx, "registry:"+host+"/private/app:1")
	if err != nil {
		t.Fatalf("with config.json: %v", err)
	}
	if got := readLayerFiles(t, img.Image())["private"]; got != "yes" {
		t.Errorf("content %q", got)
	}
	img.Close()

	// Credentials from the environment, with no config.json.
	os.Remove(filepath.Join(cfgDir, "config.json"))
	t.Setenv(EnvUsername, "alice")
	t.Setenv(EnvPassword, "s3cret")
	img, err = Open(ctx, "registry:"+host+"/private/app:1")
	if err != nil {
		t.Fatalf("with %s: %v", EnvUsername, err)
	}
	img.Close()
	// Wrong password in the environment fails.
	t.Setenv(EnvPassword, "wrong")
	_, err = Open(ctx, "registry:"+host+"/private/app:1")
	wantErr(t, err, nil, "UNAUTHORIZED")
}

func TestOpenAutoMode(t *testing.T) {
	isolateDockerConfig(t)
	host := startRegistry(t, "", "")
	ctx := context.Background()
	src := testImage(t, "linux/amd64", map[string]string{"auto": "registry"})
	ref, _ := name.ParseReference(host + "/auto:1")
	if err := remote.Write(ref, src); err != nil {
		t.Fatal(err)
	}
	noSock := filepath.Join(t.TempDir(), "none.sock")
	opts := []Option{WithDockerHost(noSock), WithContainerdAddress(noSock)}

	// A bare reference with no daemon sockets goes to the registry.
	img, err := Open(ctx, host+"/auto:1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if img.Source() != SourceRegistry {
		t.Errorf("source %s", img.Source())
	}
	img.Close()

	// A bare existing path is a file.
	p := filepath.Join(t.TempDir(), "a.tar")
	writeGGCRArchive(t, p, map[string]v1.Image{"auto:1": src})
	img, err = Open(ctx, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if img.Source() != SourceDockerArchive {
		t.Errorf("source %s", img.Source())
	}
	img.Close()

	// Nothing has it: the error lists every source tried.
	_, err = Open(ctx, host+"/nothing:1", opts...)
	wantErr(t, err, ErrNotFound, "docker: no socket")
	wantErr(t, err, nil, "containerd: no socket")
	wantErr(t, err, nil, "registry:")

	_, err = Open(ctx, "registry:Not A Ref")
	wantErr(t, err, ErrInvalidReference, "")
	_, err = Open(ctx, "registry:")
	wantErr(t, err, ErrInvalidReference, "")
	_, err = Open(ctx, "x", WithPlatform("amd64"))
	wantErr(t, err, ErrInvalidOption, "")
}
