package main

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mamori/internal/sign/signtest"
)

// TestImageVerify: mamori image --verify and --policy with a signatures
// rule, on images signed in the test and pushed to the in-process
// registry: signed passes, unsigned and another key's signature fail.
func TestImageVerify(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(repo string) (string, name.Digest) {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/" + repo + ":1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return ref.String(), ref.Context().Digest(d.String())
	}
	key, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signtest.NewKey()
	signedRef, signed := push("app/signed")
	unsignedRef, _ := push("app/unsigned")
	otherRef, otherD := push("app/other")
	if err := key.Sign(signed); err != nil {
		t.Fatal(err)
	}
	if err := other.Sign(otherD); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(keyFile, []byte(key.PublicPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "p.yaml")
	doc := "apiVersion: mamori.dev/v1\nkind: Policy\nname: signed\nadmission:\n- name: signed\n  action: block\n  signatures:\n    registries: [" +
		host + "]\n    keys:\n    - |\n      " + strings.ReplaceAll(strings.TrimSpace(key.PublicPEM), "\n", "\n      ") + "\n"
	if err := os.WriteFile(pol, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"image", "--insecure", "--scanners", "secret", "--offline", "-q", "--cache-dir", filepath.Join(dir, "cache"),
		"-o", filepath.Join(dir, "out.json"), "-f", "json"}
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"signed --verify", []string{"--verify", "--key", keyFile, signedRef}, 0},
		{"unsigned --verify", []string{"--verify", "--key", keyFile, unsignedRef}, 1},
		{"another key --verify", []string{"--verify", "--key", keyFile, otherRef}, 1},
		{"signed --policy", []string{"--policy", pol, signedRef}, 0},
		{"unsigned --policy", []string{"--policy", pol, unsignedRef}, 1},
		{"another key --policy", []string{"--policy", pol, otherRef}, 1},
		{"--verify without a key", []string{"--verify", signedRef}, 1},
	} {
		if got := run(context.Background(), append(append([]string{}, base...), c.args...)); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}
