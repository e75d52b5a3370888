package testkube

import (
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(strings.NewReader("# comment\n\nMAMORI_SERVER=https://127.0.0.1:16409\nKUBECONFIG=/tmp/x/kubeconfig\nEMPTY=\nWITH_EQ=a=b\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"MAMORI_SERVER": "https://127.0.0.1:16409", "KUBECONFIG": "/tmp/x/kubeconfig", "EMPTY": "", "WITH_EQ": "a=b"}
	if len(st) != len(want) {
		t.Fatalf("got %v, want %v", st, want)
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %q, want %q", k, st[k], v)
		}
	}
	for _, bad := range []string{"no equals sign\n", "lower=case\n", "=value\n", "KEY WITH SPACE=x\n", "OK=1\n9BAD=2\n"} {
		if _, err := ParseStatus(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseStatus(%q): no error", bad)
		}
	}
	// a line longer than the scanner's limit is an error, not a hang or a truncation
	if _, err := ParseStatus(strings.NewReader("K=" + strings.Repeat("x", 1<<20))); err == nil {
		t.Error("1 MiB line: no error")
	}
}

func TestDecodeManifest(t *testing.T) {
	objs, err := DecodeManifest([]byte(`
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c, image: x}]}
---
# only a comment
---
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "n"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Pod" || objs[0].GetName() != "a" || objs[1].GetKind() != "ConfigMap" || objs[1].GetNamespace() != "n" {
		t.Fatalf("got %d objects: %v", len(objs), objs)
	}
	for name, bad := range map[string]string{
		"no kind":       "apiVersion: v1\nmetadata: {name: a}\n",
		"no apiVersion": "kind: Pod\nmetadata: {name: a}\n",
		"no name":       "apiVersion: v1\nkind: Pod\nmetadata: {}\n",
		"garbage":       "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n",
		"not a map":     "- a\n- b\n",
		"second bad":    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: X\n",
	} {
		if _, err := DecodeManifest([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDigestRef(t *testing.T) {
	const d = "sha256:0123456789012345678901234567890123456789012345678901234567890123"
	for in, want := range map[string]string{
		"mamori.local/busybox:1":        "mamori.local/busybox@" + d,
		"localhost:5000/a/b:tag":        "localhost:5000/a/b@" + d,
		"localhost:5000/a/b":            "localhost:5000/a/b@" + d,
		"docker.io/library/alpine":      "docker.io/library/alpine@" + d,
		"docker.io/library/alpine@" + d: "",
	} {
		got, ok := DigestRef(in, d)
		if ok != (want != "") || got != want {
			t.Errorf("DigestRef(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestDNSLabel(t *testing.T) {
	for in, want := range map[string]string{
		"e2e-TestE2E/real_node":          "e2e-teste2e-real-node",
		"e2e-" + strings.Repeat("A", 80): "e2e-" + strings.Repeat("a", 46),
		"e2e-Test--":                     "e2e-test",
	} {
		if got := dnsLabel(in, 50); got != want {
			t.Errorf("dnsLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// CgroupRoot must match scripts/cluster.sh:
// printf '%s' "$RUN" | sha256sum | cut -c1-10
func TestCgroupRoot(t *testing.T) {
	if got := CgroupRoot("/tmp/mamori-kube-1"); got != "/mamori-5b57f61336" {
		t.Errorf("CgroupRoot = %q", got)
	}
}

func TestImportLine(t *testing.T) {
	out := "unpacking mamori.local/busybox:1 (sha256:3f1b1fd18d2b5e1dc0a9aa4b6c8b9a2e6a4d3c2b1a0f9e8d7c6b5a4938271605)...done\n"
	m := importLine.FindAllStringSubmatch(out, -1)
	if len(m) != 1 || m[0][1] != "mamori.local/busybox:1" || !strings.HasPrefix(m[0][2], "sha256:3f1b") {
		t.Fatalf("got %q", m)
	}
}
