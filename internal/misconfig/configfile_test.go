package misconfig

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"testing"
	"time"

	"mamori/internal/analyzer"
)

type sizeInfo int64

func (s sizeInfo) Name() string       { return "f" }
func (s sizeInfo) Size() int64        { return int64(s) }
func (s sizeInfo) Mode() fs.FileMode  { return 0o644 }
func (s sizeInfo) ModTime() time.Time { return time.Time{} }
func (s sizeInfo) IsDir() bool        { return false }
func (s sizeInfo) Sys() any           { return nil }

func TestConfigFileAnalyzer(t *testing.T) {
	a := NewConfigFileAnalyzer()
	pod := []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext:\n      privileged: true\n")
	df := []byte("FROM debian\nRUN apt-get update\n")
	for _, tc := range []struct {
		path string
		body []byte
		want bool
	}{
		{"deploy/pod.yaml", pod, true},
		{"Dockerfile", df, true},
		{"node_modules/x/pod.yaml", pod, false},
		{"src/main.go", []byte("package main"), false},
	} {
		need := a.Required(tc.path, sizeInfo(len(tc.body)))
		if (need == analyzer.Content) != tc.want {
			t.Errorf("%s: need %v", tc.path, need)
			continue
		}
		if !tc.want {
			continue
		}
		res, err := a.Analyze(context.Background(), analyzer.Input{Path: tc.path, Content: io.NewSectionReader(bytes.NewReader(tc.body), 0, int64(len(tc.body)))})
		if err != nil {
			t.Fatal(err)
		}
		if res == nil || len(res.Findings) == 0 {
			t.Errorf("%s: no findings", tc.path)
		}
	}
}
