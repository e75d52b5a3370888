package misconfig

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestScanPath(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM ubuntu\nRUN apt-get update\n")
	write("build/api.Dockerfile", "FROM alpine:3.20\nUSER root\n")
	write("Containerfile", "FROM alpine:3.20\nUSER 1000\nHEALTHCHECK CMD true\n")
	write("k8s/deploy.yaml", multiDoc)
	write("k8s/pod.json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"hostIPC":true,"containers":[{"name":"c","image":"x:1"}]}}`)
	write(".github/workflows/ci.yml", "on: push\njobs: {}\n")
	write("package.json", `{"name":"x","version":"1.0.0"}`)
	write("k8s/broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
	write(".git/config.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: hidden}\nspec: {hostPID: true, containers: []}\n")
	write("node_modules/x/Dockerfile", "FROM ubuntu\n")

	fs, err := ScanPath(context.Background(), dir)
	if !errors.Is(err, ErrParse) {
		t.Errorf("err = %v, want the broken manifest reported", err)
	}
	byPath := map[string]map[string]int{}
	for _, f := range fs {
		if byPath[f.Location.Path] == nil {
			byPath[f.Location.Path] = map[string]int{}
		}
		byPath[f.Location.Path][f.ID]++
	}
	for p, ids := range map[string][]string{
		"Dockerfile":           {DFUnpinnedBase, DFUpdateAlone, DFRootUser},
		"build/api.Dockerfile": {DFRootUser},
		"k8s/deploy.yaml":      {K8sPrivileged, K8sHostNetwork, K8sHostPID},
		"k8s/pod.json":         {K8sHostIPC},
	} {
		for _, id := range ids {
			if byPath[p][id] == 0 {
				t.Errorf("%s: missing %s (got %v)", p, id, byPath[p])
			}
		}
	}
	for _, p := range []string{"Containerfile", ".github/workflows/ci.yml", "package.json", ".git/config.yaml", "node_modules/x/Dockerfile"} {
		if len(byPath[p]) != 0 {
			t.Errorf("%s: unexpected findings %v", p, byPath[p])
		}
	}

	// A single file.
	fs, err = ScanPath(context.Background(), filepath.Join(dir, "Dockerfile"))
	if err != nil || len(fs) == 0 || fs[0].Location.Path != filepath.ToSlash(filepath.Join(dir, "Dockerfile")) {
		t.Errorf("single file: %v %v", fs, err)
	}
	if _, err := ScanPath(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing path: err = %v, want fs.ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanPath(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
