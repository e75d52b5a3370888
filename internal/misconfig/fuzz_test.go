package misconfig

import (
	"testing"
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
