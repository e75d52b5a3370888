package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func pubPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func indent(s, pad string) string {
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// TestSignaturesCriterion: images from the covered registries need a
// verification under the rule's trust; others are not judged.
func TestSignaturesCriterion(t *testing.T) {
	key := pubPEM(t)
	doc := policyDoc(`- name: signed
  action: block
  signatures:
    registries: [registry.example.com]
    keys:
    - |
` + indent(key, "      ") + `
    identities:
    - {issuer: https://issuer.example, subjectRegexp: '^https://ci\.example/.*$'}
`)
	ev := mustCompile(t, doc)
	reqs := ev.SignatureRequirements()
	if len(reqs) != 1 || len(reqs[0].KeyIDs) != 1 || !strings.HasPrefix(reqs[0].KeyIDs[0], "sha256:") || !strings.HasPrefix(reqs[0].Trust, "trust:") {
		t.Fatalf("requirements: %+v", reqs)
	}
	req := reqs[0]
	if !req.Covers("registry.example.com/shop/web:1.2") || req.Covers("redis") || req.Covers("registry.example.com.evil/x") {
		t.Fatal("Covers: wrong images")
	}
	for _, c := range []struct {
		name  string
		sigs  map[string]SignatureCheck
		fails bool
		msg   string
	}{
		{"never verified", nil, true, "was not verified"},
		{"verified under another trust", map[string]SignatureCheck{"trust:other": {Verified: true}}, true, "was not verified"},
		{"bad signature", map[string]SignatureCheck{req.Trust: {Reason: "signature does not verify with key sha256:ab"}}, true, "does not verify"},
		{"verified", map[string]SignatureCheck{req.Trust: {Verified: true, Signer: "key:" + req.KeyIDs[0]}}, false, ""},
	} {
		w := workload(t, twoImages)
		w.Images = map[string]ImageScan{"registry.example.com/shop/web:1.2": {Result: scanned(nil, nil, testNow).Result, Signatures: c.sigs},
			"redis": scanned(nil, nil, testNow)}
		d := ev.Evaluate(w, testNow)
		var got []Violation
		for _, v := range d.Violations {
			if v.Control == CtlSignatures {
				got = append(got, v)
			}
		}
		if !c.fails {
			if len(got) != 0 || d.Action != "allow" {
				t.Errorf("%s: %v %v", c.name, d.Action, got)
			}
			continue
		}
		if len(got) != 1 || d.Action != "block" || got[0].Image != "registry.example.com/shop/web:1.2" || !strings.Contains(got[0].Message, c.msg) ||
			got[0].Field != "spec.template.spec.containers[0].image" {
			t.Errorf("%s: %v %+v", c.name, d.Action, got)
		}
		// The same judgement on an image subject (registry scans).
		di := ev.Evaluate(&Image{Ref: "registry.example.com/shop/web:1.2", Result: scanned(nil, nil, testNow).Result, Signatures: c.sigs}, testNow)
		if di.Action != "block" {
			t.Errorf("%s: image subject %v", c.name, di.Action)
		}
	}
}

func TestSignaturesValidation(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"registries: []\n    keys: [x]", "registries is empty"},
		{"registries: [r.example]", "give keys and/or identities"},
		{"registries: [r.example]\n    keys: [not a key]", "not a PEM block"},
		{"registries: [r.example]\n    keys: ['-----BEGIN CERTIFICATE-----\n\n      AAAA\n\n      -----END CERTIFICATE-----']", "want PUBLIC KEY"},
		{"registries: [r.example]\n    identities: [{issuer: i}]", "needs subject"},
		{"registries: [r.example]\n    identities: [{issuer: i, subjectRegexp: '('}]", "subjectRegexp"},
	} {
		_, err := Parse("p.yaml", []byte(policyDoc("- name: s\n  action: block\n  signatures:\n    "+c.body+"\n")))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
}

func TestRegistryCovers(t *testing.T) {
	for _, c := range []struct {
		entries []string
		ref     string
		want    bool
	}{
		{[]string{"*"}, "anything/at:all", true},
		{[]string{"127.0.0.1:5000"}, "127.0.0.1:5000/a/b:1", true},
		{[]string{"ghcr.io/acme/*"}, "ghcr.io/acme/app@sha256:00", true},
		{[]string{"ghcr.io/acme/"}, "ghcr.io/acme/app:1", true},
		{[]string{"ghcr.io/acme/*"}, "ghcr.io/other/app:1", false},
		{[]string{"docker.io"}, "nginx", true},
		{[]string{"*.example.com"}, "reg.example.com/x:1", true},
	} {
		if got := RegistryCovers(c.entries, c.ref); got != c.want {
			t.Errorf("RegistryCovers(%v, %q) = %v", c.entries, c.ref, got)
		}
	}
}
