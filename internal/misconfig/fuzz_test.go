package misconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func FuzzDockerfile(f *testing.F) {
	f.Add([]byte(goodDockerfile))
	f.Add([]byte("# escape=`\nFROM x\nRUN a `\n b\n"))
	f.Add([]byte("# syntax=docker/dockerfile:1\nFROM debian:12\nRUN <<EOF\napt-get update\nEOF\nCOPY <<EOT /x\nhi\nEOT\n"))
	f.Add([]byte("FROM a AS b\nENV A=1 B=\"2 3\"\nARG X\nEXPOSE 22/tcp\nADD http://x /y\nUSER 0\n"))
	f.Add([]byte("RUN \\\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := CheckDockerfile("Dockerfile", b)
		if err != nil && len(fs) != 0 {
			t.Fatalf("findings with error")
		}
		for _, x := range fs {
			if x.ID == "" || x.Location.Path != "Dockerfile" {
				t.Fatalf("bad finding %+v", x)
			}
		}
	})
}

func FuzzManifests(f *testing.F) {
	f.Add([]byte(restrictedPod))
	f.Add([]byte(multiDoc))
	f.Add([]byte(rbacBad))
	f.Add([]byte(rbacGood))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- &a {apiVersion: v1, kind: Pod, metadata: {name: x}, spec: {containers: [{name: c}]}}\n- *a\n"))
	f.Add([]byte(`{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, _ := CheckManifests("m.yaml", b)
		for _, x := range fs {
			if x.ID == "" || x.Location.Path != "m.yaml" {
				t.Fatalf("bad finding %+v", x)
			}
		}
	})
}

func FuzzAccountFile(f *testing.F) {
	for _, p := range []string{"debian-12/etc/passwd", "debian-12/etc/group", "alpine-3.9.1/etc/shadow", "bad/etc/passwd", "bad/etc/shadow", "bad/etc/group"} {
		b, err := os.ReadFile(filepath.Join("testdata", "accounts", filepath.FromSlash(p)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(strings.Count(p, "a")), b)
	}
	f.Add(uint8(0), []byte("+::::::\n-x\n#c\n\r\n::\n:::\n\x00:\xff:0\n"))
	files := []string{"etc/passwd", "etc/shadow", "etc/group", "etc/master.passwd"}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		p := files[int(which)%len(files)]
		fs, _ := CheckAccountFile(p, b)
		if len(fs) > maxAccountFindings {
			t.Fatalf("%d findings over the cap", len(fs))
		}
		for _, x := range fs {
			if x.ID == "" || x.Location.Path != p || x.Location.StartLine < 1 {
				t.Fatalf("bad finding %+v", x)
			}
		}
	})
}

// FuzzImageConfig runs the image configuration checks on fuzzed history
// lines, volumes and labels (the history and ADD argument parsers).
func FuzzImageConfig(f *testing.F) {
	f.Add("/bin/sh -c #(nop) ADD file:4b03 in / ", "ADD [\"a b\", \"/x\"] # buildkit", "/etc", "alpine:latest")
	f.Add("RUN --mount=type=cache,target=/var/lib/apt /bin/sh -c apt-get update # buildkit", "|2 A=1 B=2 /bin/sh -c apk add x", "C:\\x", "")
	f.Add("ADD --chown=1 a.tgz", "ADD", "/proc/../etc", "x@sha256:1")
	f.Fuzz(func(t *testing.T, h1, h2, vol, base string) {
		cfg := &v1.ConfigFile{
			Config:  v1.Config{Volumes: map[string]struct{}{vol: {}}, Labels: map[string]string{labelBaseName: base}},
			History: []v1.History{{CreatedBy: h1}, {CreatedBy: h2}},
		}
		for _, x := range CheckImage(cfg, ImageFacts{}) {
			if x.ID == "" || x.Location.Config == "" {
				t.Fatalf("bad finding %+v", x)
			}
		}
	})
}
