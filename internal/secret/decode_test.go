package secret

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

func newTestScanner(t testing.TB) *Scanner {
	t.Helper()
	s, err := NewScanner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pemBody is a PEM private key of the real layout with random base64.
func pemBody(g *gen) string {
	dash := strings.Repeat("-", 5)
	var b strings.Builder
	b.WriteString(dash + "BEG" + "IN RSA PRIV" + "ATE KEY" + dash + "\n")
	for i := 0; i < 12; i++ {
		b.WriteString(g.s(b64, 64) + "\n")
	}
	b.WriteString(dash + "EN" + "D RSA PRIV" + "ATE KEY" + dash + "\n")
	return b.String()
}

type want struct {
	id, encoding, keyPath string
	line                  int
}

func findingsOf(fs []model.Finding) []want {
	var out []want
	for _, f := range fs {
		out = append(out, want{f.ID, f.Location.Encoding, f.Location.KeyPath, f.Location.StartLine})
	}
	return out
}

func has(fs []model.Finding, w want) bool {
	for _, g := range findingsOf(fs) {
		if g == w {
			return true
		}
	}
	return false
}

// TestDecodingStage (issue 16): values stored encoded are decoded and
// scanned again with every rule; findings say how they were encoded and
// where in the YAML/JSON structure they are.
func TestDecodingStage(t *testing.T) {
	s := newTestScanner(t)
	g := newGen()
	b64s := base64.StdEncoding.EncodeToString
	ghp := "gh" + "p_" + g.s(alnum, 36)
	aws := "AK" + "IA" + g.s(upper32, 16)
	dockerAuth := b64s([]byte("ci-bot:" + g.s(alnum, 24)))
	pull := b64s([]byte(`{"auths":{"registry.example.com":{"auth":"` + dockerAuth + `"}}}`))
	tlsSecret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-tls\n  namespace: prod\ntype: kubernetes.io/tls\ndata:\n" +
		"  tls.crt: " + b64s([]byte("not a key")) + "\n  tls.key: " + b64s([]byte(pemBody(g))) + "\n"
	cases := []struct {
		name, path, content string
		want                []want
		none                bool // no finding at all
	}{
		{name: "TLS key in a Secret's data", path: "deploy/tls.yaml", content: tlsSecret, want: []want{
			{"kubernetes-secret-manifest", "", "", 2},
			{"private-key-rsa", "base64", `data."tls.key"`, 9},
		}},
		{name: "Secret as JSON, multi-document stream", path: "k8s/all.yaml", content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\n" +
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"gh"},"data":{"token":"` + b64s([]byte("GH_TOKEN="+ghp)) + `"}}` + "\n",
			want: []want{{"kubernetes-secret-manifest", "", "[1]", 6}, {"github-pat", "base64", `[1].data.token`, 6},
				{"generic-api-token", "", "", 6}}}, // "token": a high-entropy value
		{name: "image pull secret: the payload, and the credential inside it", path: "pull.yaml",
			content: "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\nmetadata:\n  name: regcred\ndata:\n  .dockerconfigjson: " + pull + "\n",
			want: []want{
				{"kubernetes-dockerconfigjson", "", "", 7},
				{"kubernetes-secret-manifest", "", "", 2},
				{"docker-config-auth", "base64", `data.".dockerconfigjson" > auths."registry.example.com".auth`, 7},
			}},
		{name: "env file with a base64 value", path: ".env", content: "LOG=info\nAWS_CREDS=" + b64s([]byte("aws_access_key_id = "+aws+"\n")) + "\n",
			want: []want{{"aws-access-key-id", "base64", "", 2}}},
		{name: "base64 inside base64", path: "conf.txt", content: "blob: " + b64s([]byte("inner: "+b64s([]byte("token "+ghp)))) + "\n",
			want: []want{{"github-pat", "base64/base64", "", 1}}},
		{name: "URL-safe base64", path: "x.cfg", content: "v=" + base64.RawURLEncoding.EncodeToString([]byte("?? "+ghp+" ??>>")) + "\n",
			want: []want{{"github-pat", "base64", "", 1}}},
		{name: "hex", path: "build.log", content: "payload 0x" + hex.EncodeToString([]byte("GITHUB_TOKEN="+ghp)) + "\n",
			want: []want{{"github-pat", "hex", "", 1}}},
		{name: "percent-encoded connection string", path: "app.ini", content: "[db]\ndsn = postgres%3A%2F%2Fapp%3A" + url.PathEscape("Zq8"+g.s(alnum, 12)) + "%40db.internal%3A5432%2Fapp\n",
			want: []want{{"url-credentials", "percent", "", 2}}},
		{name: "Helm template Secret: decoy", path: "templates/secret.yaml",
			content: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  password: {{ .Values.password | quote }}\ndata:\n  token: \"\"\n", none: true},
		{name: "placeholders stay decoys after decoding", path: "values.yaml",
			content: "apiVersion: v1\nkind: Secret\ndata:\n  password: " + b64s([]byte("changeme")) + "\n  api: " + b64s([]byte("${API_KEY}")) + "\n  empty: \"\"\n", none: true},
		{name: "one escape is a name, not an encoding", path: "var/log/bootstrap.log",
			content: "Preparing to unpack .../passwd_1%3a4.13+dfsg1-1+deb12u2_amd64.deb ...\n", none: true},
		{name: "hashes and binary are not text", path: "go.sum",
			content: "github.com/x/y v1.0.0 h1:" + b64s([]byte(g.s(alnum, 32))[:0]) + "Gzq0+FkXq0nN2bQ3xIhv3uK2Z7Ky0pQm5o6fGQ4bEhk=\nsha256:" + strings.Repeat("ab12", 16) + "\n", none: true},
	}
	for _, c := range cases {
		fs := s.Scan(c.path, []byte(c.content))
		if c.none {
			if len(fs) != 0 {
				t.Errorf("%s: findings %+v", c.name, findingsOf(fs))
			}
			continue
		}
		for _, w := range c.want {
			if !has(fs, w) {
				t.Errorf("%s: no %+v in %+v", c.name, w, findingsOf(fs))
			}
		}
		if len(fs) != len(c.want) {
			t.Errorf("%s: %d findings %+v, want %d", c.name, len(fs), findingsOf(fs), len(c.want))
		}
		for _, f := range fs {
			if strings.Contains(f.Evidence, ghp) || strings.Contains(f.Evidence, aws) {
				t.Errorf("%s: evidence not redacted: %q", c.name, f.Evidence)
			}
		}
	}
}

// TestDecodingOff: WithDecoding(false) is the plain scanner.
func TestDecodingOff(t *testing.T) {
	s, err := NewScanner(WithDecoding(false))
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	content := "X=" + base64.StdEncoding.EncodeToString([]byte("token gh"+"p_"+g.s(alnum, 36))) + "\n"
	if fs := s.Scan("a.env", []byte(content)); len(fs) != 0 {
		t.Errorf("findings %+v", findingsOf(fs))
	}
}

// TestDecodingHostile: nested and enormous encoded blobs stay bounded in
// time and findings (no quadratic blow-up, no unbounded recursion).
func TestDecodingHostile(t *testing.T) {
	s := newTestScanner(t)
	g := newGen()
	ghp := "gh" + "p_" + g.s(alnum, 36)
	// 1. Twenty layers of base64: found at the depth limit, no deeper.
	v := "token " + ghp
	for i := 0; i < 20; i++ {
		v = base64.StdEncoding.EncodeToString([]byte("x=" + v))
	}
	start := time.Now()
	if fs := s.Scan("deep.txt", []byte(v)); len(fs) != 0 {
		t.Errorf("20-deep blob: %+v (depth limit is %d)", findingsOf(fs), maxDecodeDepth)
	}
	// 2. 8 MiB of base64 whose text holds a token every few hundred bytes,
	// in one line, and the same in 30,000 short lines.
	var text strings.Builder
	for text.Len() < 6<<20 {
		text.WriteString(strings.Repeat("lorem ipsum ", 30) + "token " + ghp + "\n")
	}
	blob := base64.StdEncoding.EncodeToString([]byte(text.String()))
	for name, content := range map[string]string{
		"one line": "data: " + blob + "\n",
		"lines":    strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(text.String()[:3<<20])), "Z", "\nZ"),
	} {
		t0 := time.Now()
		fs := s.Scan("big-"+name+".txt", []byte(content))
		d := time.Since(t0)
		t.Logf("%s: %d bytes, %d findings, %s", name, len(content), len(fs), d)
		if len(fs) > maxFindingsPerFile {
			t.Errorf("%s: %d findings, cap %d", name, len(fs), maxFindingsPerFile)
		}
		if d > 20*time.Second {
			t.Errorf("%s: %s: not linear", name, d)
		}
	}
	// 3. 200,000 short base64-looking tokens: the token budget holds.
	var many strings.Builder
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&many, "%s ", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("value number %06d", i))))
	}
	t0 := time.Now()
	s.Scan("many.txt", []byte(many.String()))
	t.Logf("200,000 tokens: %s; 20-deep: %s", time.Since(t0), t0.Sub(start))
	if time.Since(t0) > 20*time.Second {
		t.Errorf("200,000 tokens took %s", time.Since(t0))
	}
}

// TestWrappedBase64Block: a key file stored as wrapped base64 (base64(1)
// output, 76 characters a line) is one value, decoded whole.
func TestWrappedBase64Block(t *testing.T) {
	s := newTestScanner(t)
	enc := base64.StdEncoding.EncodeToString([]byte(pemBody(newGen())))
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc + "\n")
	fs := s.Scan("testsetup/certs/server.key.b64", []byte(wrapped.String()))
	if !has(fs, want{"private-key-rsa", "base64", "", 1}) || len(fs) != 1 {
		t.Errorf("findings %+v", findingsOf(fs))
	}
}
