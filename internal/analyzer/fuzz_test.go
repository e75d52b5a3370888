package analyzer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzWalkLayer feeds arbitrary bytes as a layer tar stream: the walk must
// end with a result or an error, never a panic or a hang, and every path it
// reports must be clean and relative.
func FuzzWalkLayer(f *testing.F) {
	f.Add(mkTar(f, []entry{{name: "a.txt", body: "1\n"}, {name: "b/.wh.c"}, {name: "d/.wh..wh..opq"}}))
	f.Add(mkTar(f, []entry{{name: "../x.txt", body: "1"}, {name: "/abs.txt", body: "2"}}))
	f.Add([]byte("not a tar"))
	s, err := NewSet([]Analyzer{lineCounter{}, modeWatcher{}}, WithMaxEntries(10000), WithMemoryThreshold(1024), WithTempDir(f.TempDir()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lr, err := s.WalkLayer(ctx, "sha256:fuzz", bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		for p := range lr.Files {
			if strings.HasPrefix(p, "/") || p == "" || strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("unclean path %q", p)
			}
		}
		Merge([]*LayerResult{lr, lr})
	})
}

func FuzzCleanTarPath(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "/etc/passwd", "./x/../y", "a\x00b", "", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := CleanTarPath(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
			t.Fatalf("CleanTarPath(%q) = %q", name, p)
		}
	})
}
