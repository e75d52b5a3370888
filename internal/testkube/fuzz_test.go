package testkube

import (
	"strings"
	"testing"
)

func FuzzParseStatus(f *testing.F) {
	f.Add("MAMORI_SERVER=https://127.0.0.1:16409\nKUBECONFIG=/tmp/k\n")
	f.Add("# c\n\nA=\n")
	f.Add("bad line\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range st {
			if !statusKey.MatchString(k) {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}\n")
	f.Add("---\n---\n")
	f.Add("a: &a [*a, *a]\n")
	f.Fuzz(func(t *testing.T, s string) {
		objs, err := DecodeManifest([]byte(s))
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
				t.Fatalf("accepted %v", o.Object)
			}
		}
	})
}
