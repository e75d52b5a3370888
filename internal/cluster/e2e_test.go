package cluster_test

// The cluster component end to end, on the local cluster of
// scripts/cluster.sh (internal/testkube): a real kube-apiserver calling the
// webhook of the `mamori cluster` that cluster.sh started, a real node
// (kubelet, containerd, runc) running images built here, kwok nodes and a
// real mamori server. MAMORI_TEST_KUBE=1 (scripts/test.sh sets it in the
// serial privileged step).

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/sign/signtest"
	"mamori/internal/testkube"
)

func TestMain(m *testing.M) { os.Exit(testkube.Main(m)) }

// e2e is the suite's shared state.
type e2e struct {
	c       *testkube.Cluster
	status  map[string]string
	repo    string
	bin     string
	admin   *client.Client
	cluster *client.Client // the cluster token: what the component holds
	reg     string         // the test registry's host:port
	images  map[string]string
	built   map[string]v1.Image
	// signingKey is the public key (PEM) the policy's signatures rule
	// trusts; the suite signs its trusted/ images with it.
	signingKey string
	// running images (imported into the node's containerd): placeholder -> ref
	clusterID int64
}

const (
	regUser, regPass = "e2e", "s3cret-pull"
	// policyProbe labels a pod only the e2e policy denies (rule probe).
	policyProbe = "mamori-e2e-probe"
)

func TestE2E(t *testing.T) {
	c := testkube.Start(t)
	if c.Component != "running" {
		t.Fatalf("mamori cluster is not running in the local cluster (component %q): cluster.sh starts it when bin/mamori has the command", c.Component)
	}
	t0 := time.Now()
	e := setup(t, c)
	t.Logf("setup (images built, pushed, imported and scanned; database v1; e2e policy) in %s", time.Since(t0).Round(100*time.Millisecond))
	step := func(name string, f func(*testing.T)) {
		t0 := time.Now()
		t.Run(name, f)
		t.Logf("%s: %s", name, time.Since(t0).Round(100*time.Millisecond))
	}
	step("admission matrix", e.matrix)
	step("signatures verified once, then cached", e.signatures)
	step("known exploited in log mode", e.kevLog)
	step("exec into a pod", e.exec)
	step("continuous compliance", e.compliance)
	step("failure behaviour", e.failures)
	step("component killed during a watch", e.restart)
	step("certificate rotation", e.rotation)
	step("helm chart", e.helm)
}

func setup(t *testing.T, c *testkube.Cluster) *e2e {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := &e2e{c: c, images: map[string]string{}, built: map[string]v1.Image{}}
	f, err := os.Open(filepath.Join(c.Dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	e.status, err = testkube.ParseStatus(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if e.repo, err = filepath.Abs("../.."); err != nil {
		t.Fatal(err)
	}
	e.bin = filepath.Join(e.repo, "bin", "mamori")
	adminTok, err := c.ServerToken()
	if err != nil {
		t.Fatal(err)
	}
	if e.admin, err = client.New(c.ServerURL, adminTok, client.WithCAFile(c.ServerCA), client.WithRetries(3, 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ctok, err := os.ReadFile(e.status["MAMORI_CLUSTER_TOKEN_FILE"])
	if err != nil {
		t.Fatalf("cluster token (status MAMORI_CLUSTER_TOKEN_FILE): %v", err)
	}
	if e.cluster, err = client.New(c.ServerURL, strings.TrimSpace(string(ctok)), client.WithCAFile(c.ServerCA)); err != nil {
		t.Fatal(err)
	}
	cl, err := e.admin.ListClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cl.Clusters {
		if x.Name == e.status["MAMORI_CLUSTER_NAME"] {
			e.clusterID = x.ID
		}
	}
	if e.clusterID == 0 {
		t.Fatalf("cluster %q not on the server: %+v", e.status["MAMORI_CLUSTER_NAME"], cl)
	}
	e.startRegistry(t)
	e.buildImages(t, ctx)
	e.signImages(t, ctx)
	e.importDB(t, ctx, "v1")
	e.uploadScans(t, ctx, "clean", "vulnerable", "malware", "secrets", "kev", "signed", "unsigned", "otherkey", "tampered")
	e.applyPolicy(t, ctx, "e2e.yaml", "v1")
	return e
}

// startRegistry serves an in-memory registry on loopback; repositories
// under private/ need the pull secret's credentials.
func (e *e2e) startRegistry(t *testing.T) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/private/") {
			u, p, ok := r.BasicAuth()
			if !ok || u != regUser || p != regPass {
				w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	e.reg = u.Host
}

// debianLayer is a Debian 12 package database with curl at version curl
// (and more packages: name, version, source, architecture).
func debianLayer(t *testing.T, curl string, extra map[string]string, more ...[4]string) v1.Layer {
	t.Helper()
	pkgs := [][4]string{
		{"base-files", "12.4+deb12u1", "", "amd64"},
		{"curl", curl, "", "amd64"},
		{"libcurl4", curl, "curl", "amd64"},
		{"libssl3", "3.0.11-1~deb12u1", "openssl", "amd64"},
		{"openssl", "3.0.11-1~deb12u1", "", "amd64"},
		{"zlib1g", "1:1.2.13.dfsg-1", "zlib", "amd64"},
	}
	pkgs = append(pkgs, more...)
	var st strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&st, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 100\n", p[0])
		fmt.Fprintf(&st, "Maintainer: Debian <debian-devel@lists.debian.org>\nArchitecture: %s\n", p[3])
		if p[2] != "" {
			fmt.Fprintf(&st, "Source: %s\n", p[2])
		}
		fmt.Fprintf(&st, "Version: %s\nDescription: %s\n e2e image package.\n\n", p[1], p[0])
	}
	files := map[string]string{
		"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n" +
			"VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
		"etc/debian_version":  "12.2\n",
		"var/lib/dpkg/status": st.String(),
	}
	for k, v := range extra {
		files[k] = v
	}
	return fileLayer(t, files)
}

func fileLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg,
			ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// eicar is the anti-malware test file (not malware).
const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

func privateKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// buildImages builds the suite's images on the node's busybox layer,
// pushes them to the test registry and imports those that run into the
// node's containerd under the same names.
func (e *e2e) buildImages(t *testing.T, ctx context.Context) {
	t.Helper()
	base, err := testkube.ReadOCITar(filepath.Join(e.c.ImageDir, "busybox.tar"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fixed, vulnerable := "7.88.1-10+deb12u4", "7.88.1-10+deb12u3"
	key := privateKeyPEM(t)
	type spec struct {
		placeholder, repo string
		layer             v1.Layer
		run               bool // imported into the node's containerd
		push              bool
		marker            string
	}
	specs := []spec{
		{"IMAGE_CLEAN", "e2e/clean:1", debianLayer(t, fixed, nil), true, true, "clean"},
		{"IMAGE_VULNERABLE", "e2e/vulnerable:1", debianLayer(t, vulnerable, nil), false, true, "vulnerable"},
		{"IMAGE_MALWARE", "e2e/malware:1", debianLayer(t, fixed, map[string]string{"opt/app/eicar.com": eicar}), false, true, "malware"},
		{"IMAGE_SECRETS", "e2e/secrets:1", debianLayer(t, fixed, map[string]string{"opt/app/deploy_key.pem": key}), false, true, "secrets"},
		{"IMAGE_PRIVATE", "private/inline:1", debianLayer(t, fixed, nil), false, true, "private"},
		{"IMAGE_PRIVATE_VULNERABLE", "private/inline-vulnerable:1", debianLayer(t, vulnerable, nil), false, true, "private-vulnerable"},
		{"IMAGE_PRIVATE_OTHER", "private/other:1", debianLayer(t, fixed, nil), false, true, "private-other"},
		{"IMAGE_MISSING", "e2e/missing:1", nil, false, false, ""},
		{"IMAGE_RESTART", "e2e/restart:1", debianLayer(t, fixed, nil), true, true, "restart"},
		// glibc before the fix of CVE-2023-4911, which CISA lists as known exploited.
		{"IMAGE_KEV", "e2e/kev:1", debianLayer(t, fixed, nil, [4]string{"libc6", "2.36-9+deb12u1", "glibc", "amd64"}), false, true, "kev"},
		// Under trusted/, where the policy requires the suite's signature (signImages).
		{"IMAGE_SIGNED", "trusted/signed:1", debianLayer(t, fixed, nil), false, true, "signed"},
		{"IMAGE_UNSIGNED", "trusted/unsigned:1", debianLayer(t, fixed, nil), false, true, "unsigned"},
		{"IMAGE_OTHERKEY", "trusted/other-key:1", debianLayer(t, fixed, nil), false, true, "other-key"},
		{"IMAGE_TAMPERED", "trusted/tampered:1", debianLayer(t, fixed, nil), false, true, "tampered"},
	}
	for _, s := range specs {
		ref := e.reg + "/" + s.repo
		e.images[s.placeholder] = ref
		if s.layer == nil {
			continue
		}
		img, err := mutate.AppendLayers(base, s.layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Env = append(cf.Config.Env, "E2E_IMAGE="+s.marker)
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		e.built[s.placeholder] = img
		if s.push {
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(r, img, remote.WithContext(ctx),
				remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
		}
		if s.run {
			if _, err := e.c.ImportV1Image(ctx, img, ref); err != nil {
				t.Fatalf("import %s: %v", ref, err)
			}
		}
	}
}

// signImages signs the trusted/ images as cosign does, with keys made
// here: IMAGE_SIGNED with the key the policy trusts, IMAGE_OTHERKEY with
// another; IMAGE_TAMPERED is signed, then its tag pushed again with other
// content and the signature copied next to the new digest.
func (e *e2e) signImages(t *testing.T, ctx context.Context) {
	t.Helper()
	key, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e.signingKey = key.PublicPEM
	digestOf := func(ph string) name.Digest {
		d, err := e.built[ph].Digest()
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(e.images[ph])
		if err != nil {
			t.Fatal(err)
		}
		return r.Context().Digest(d.String())
	}
	opt := remote.WithContext(ctx)
	for ph, k := range map[string]*signtest.Key{"IMAGE_SIGNED": key, "IMAGE_OTHERKEY": other, "IMAGE_TAMPERED": key} {
		if err := k.Sign(digestOf(ph), opt); err != nil {
			t.Fatal(err)
		}
	}
	signed := digestOf("IMAGE_TAMPERED")
	cf, err := e.built["IMAGE_TAMPERED"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "E2E_TAMPERED=1")
	img, err := mutate.ConfigFile(e.built["IMAGE_TAMPERED"], cf)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(e.images["IMAGE_TAMPERED"])
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, opt); err != nil {
		t.Fatal(err)
	}
	e.built["IMAGE_TAMPERED"] = img
	sig, err := remote.Image(signed.Context().Tag(strings.Replace(signed.DigestStr(), ":", "-", 1)+".sig"), opt)
	if err != nil {
		t.Fatal(err)
	}
	now := digestOf("IMAGE_TAMPERED")
	if err := remote.Write(now.Context().Tag(strings.Replace(now.DigestStr(), ":", "-", 1)+".sig"), sig, opt); err != nil {
		t.Fatal(err)
	}
}

// importDB builds the server's vulnerability database from testdata/osv/<version>
// and the small KEV catalogue of testdata/kev with `mamori db import` and
// has the server re-match at once.
func (e *e2e) importDB(t *testing.T, ctx context.Context, version string) {
	t.Helper()
	dir := e.status["MAMORI_SERVER_DB_DIR"]
	if dir == "" {
		t.Fatal("status has no MAMORI_SERVER_DB_DIR")
	}
	before, err := e.admin.DBInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", "osv", version))
	if err != nil {
		t.Fatal(err)
	}
	kev, err := filepath.Abs(filepath.Join("testdata", "kev", "known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, e.bin, "--quiet", "--db-dir", dir, "db", "import", src, "--kev", kev).CombinedOutput()
	if err != nil {
		t.Fatalf("mamori db import %s: %v\n%s", version, err, out)
	}
	if err := e.admin.Rematch(ctx); err != nil {
		t.Fatalf("re-match: %v", err)
	}
	waitFor(t, ctx, "the re-match against database "+version, func() (bool, error) {
		info, err := e.admin.DBInfo(ctx)
		if err != nil {
			return false, err
		}
		return info.Available && !info.BuiltAt.Equal(before.BuiltAt) && !info.Rematch.Running &&
			info.MatchedBuiltAt == info.BuiltAt.UTC().Format(time.RFC3339Nano), nil
	})
}

// uploadScans scans the images as the component's inline scan does (the
// scanning engines here, matching on the server) and sends them with the
// cluster token.
func (e *e2e) uploadScans(t *testing.T, ctx context.Context, which ...string) {
	t.Helper()
	sc, cleanup, _, err := scan.Build(ctx, scan.BuildOptions{Kind: model.TargetImage, Quiet: true, TempDir: t.TempDir(),
		Scanners: []string{scan.ScannerSecret, scan.ScannerMalware, scan.ScannerMisconfig}, Clamd: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	for _, w := range which {
		ph := "IMAGE_" + strings.ToUpper(w)
		img := e.built[ph]
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		res, err := sc.ScanImage(ctx, img, scan.ImageTarget{Name: e.images[ph], Digest: d.String()})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.cluster.UploadClusterScan(ctx, res)
		if err != nil || !out.Image.Found {
			t.Fatalf("upload the scan of %s: %+v %v", w, out, err)
		}
	}
}

// applyPolicy applies testdata/policies/<file> and assigns it to the
// cluster; it returns once the component enforces it (the probe rule of
// version probe denies a pod). REGISTRY and SIGNING_KEY in the file are the
// test registry and the suite's signing key; edits are more replacements
// (old, new pairs).
func (e *e2e) applyPolicy(t *testing.T, ctx context.Context, file, probe string, edits ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "policies", file))
	if err != nil {
		t.Fatal(err)
	}
	key, err := json.Marshal(e.signingKey)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(strings.NewReplacer(append([]string{"REGISTRY", e.reg, "SIGNING_KEY", string(key)}, edits...)...).Replace(string(b)))
	if _, err := e.admin.ApplyPolicy(ctx, file, doc); err != nil {
		t.Fatalf("apply %s: %v", file, err)
	}
	if _, err := e.admin.AssignClusterPolicy(ctx, e.clusterID, "e2e"); err != nil {
		t.Fatal(err)
	}
	ns := "default"
	manifest := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: probe, labels: {%s: %s}}\nspec: {containers: [{name: c, image: %s}]}\n",
		policyProbe, probe, e.images["IMAGE_CLEAN"])
	waitFor(t, ctx, "the component to enforce policy "+file, func() (bool, error) {
		_, err := e.c.ApplyDryRun(ctx, ns, []byte(manifest))
		return err != nil && strings.Contains(err.Error(), `rule "probe"`), nil
	})
}

// waitFor polls cond every 200 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error: %v)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// manifestCase is one file of testdata/e2e.
type manifestCase struct {
	file              string
	expect            string // allow, warn, deny
	messages, absents []string
	body              string
}

func loadMatrix(t *testing.T) []manifestCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "e2e", "*.yaml"))
	if err != nil || len(files) < 40 {
		t.Fatalf("%d manifests in testdata/e2e, want at least 40: %v", len(files), err)
	}
	var out []manifestCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mc := manifestCase{file: filepath.Base(f), body: string(b)}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
			if !strings.HasPrefix(line, "# ") || !ok {
				continue
			}
			switch k {
			case "expect":
				mc.expect = v
			case "message":
				mc.messages = append(mc.messages, v)
			case "absent":
				mc.absents = append(mc.absents, v)
			}
		}
		if mc.expect != "allow" && mc.expect != "warn" && mc.expect != "deny" && mc.expect != "invalid" {
			t.Fatalf("%s: expect %q", mc.file, mc.expect)
		}
		out = append(out, mc)
	}
	return out
}

// pullSecret is a kubernetes.io/dockerconfigjson Secret for the test registry.
func (e *e2e) pullSecret(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{e.reg: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// matrix applies every manifest of testdata/e2e through the API server and
// checks the outcome (admitted, admitted with warnings, denied) and the
// message: the denial or the warnings name the policy, rule, control and
// field or finding.
func (e *e2e) matrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	e.pullSecret(t, ctx, ns)
	rc, warns, err := e.c.Recording()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, mc := range loadMatrix(t) {
		body := mc.body
		for ph, ref := range e.images {
			body = strings.ReplaceAll(body, ph+"\n", ref+"\n")
		}
		// Messages name images too (the longest placeholder first:
		// IMAGE_PRIVATE is the start of IMAGE_PRIVATE_OTHER).
		phs := slices.Collect(maps.Keys(e.images))
		sort.Slice(phs, func(i, j int) bool { return len(phs[i]) > len(phs[j]) })
		for i := range mc.messages {
			for _, ph := range phs {
				mc.messages[i] = strings.ReplaceAll(mc.messages[i], ph, e.images[ph])
			}
		}
		warns.Take()
		t0 := time.Now()
		_, err := rc.Apply(ctx, ns, []byte(body))
		took := time.Since(t0)
		ws := warns.Take()
		got := "allow"
		text := strings.Join(ws, "\n")
		switch {
		case err != nil:
			got, text = "deny", err.Error()+"\n"+text
		case len(ws) > 0:
			got = "warn"
		}
		if err != nil && apierrors.IsInvalid(err) {
			got = "invalid" // refused by the API server's validation, before admission
		}
		counts[got]++
		switch {
		case got == "deny" && !strings.Contains(err.Error(), "denied the request"):
			t.Errorf("%s: not a webhook denial: %v", mc.file, err)
		case got != mc.expect && !(mc.expect == "allow" && got == "warn"):
			t.Errorf("%s: %s, want %s\n%s", mc.file, got, mc.expect, text)
		}
		for _, m := range mc.messages {
			if !strings.Contains(text, m) {
				t.Errorf("%s: %q missing from\n%s", mc.file, m, text)
			}
		}
		for _, m := range mc.absents {
			if strings.Contains(text, m) {
				t.Errorf("%s: %q present in\n%s", mc.file, m, text)
			}
		}
		t.Logf("%-50s %-5s (want %-5s) %5.0f ms", mc.file, got, mc.expect, float64(took.Microseconds())/1000)
	}
	t.Logf("outcomes: %v", counts)
	// The image scanned inline is now known to the server, with its digest.
	res, err := e.cluster.LookupImages(ctx, []string{e.images["IMAGE_PRIVATE"], e.images["IMAGE_PRIVATE_VULNERABLE"]})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Images {
		if !d.Found || d.Digest == "" {
			t.Errorf("%s: not stored by the inline scan: %+v", d.Ref, d)
		}
	}
	// Denials and warnings are admission events with policy, rule and workload.
	q := url.Values{api.EventParamSource: {"admission"}, api.EventParamNamespace: {ns}, api.EventParamAction: {"block"}, api.EventParamLimit: {"500"}}
	var p api.EventPage
	waitFor(t, ctx, fmt.Sprintf("a block event for each of the %d denials", counts["deny"]), func() (bool, error) {
		var err error
		p, err = e.admin.ListEvents(ctx, q)
		return err == nil && len(p.Events) >= counts["deny"], err
	})
	for _, ev := range p.Events {
		if ev.Rule.Policy != "e2e" || ev.Rule.ID == "" || ev.Module != "webhook" || ev.Cluster != e.status["MAMORI_CLUSTER_NAME"] {
			t.Errorf("admission event %+v", ev.Event)
			break
		}
	}
}

// realPod is a pod of image ref on the real node, sleeping as a non-root user.
func realPod(c *testkube.Cluster, name, ref string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](1), AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](10001),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "app", Image: ref, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/bin/sh", "-c", "exec sleep 3600"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, ReadOnlyRootFilesystem: ptr.To(true)}}}}}
	c.OnRealNode(&p.Spec)
	return p
}

// exec: an exec into a pod the policy protects is denied, naming the rule;
// another pod's exec runs.
func (e *e2e) exec(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	for _, p := range []*corev1.Pod{realPod(e.c, "open", e.images["IMAGE_CLEAN"], nil),
		realPod(e.c, "guarded", e.images["IMAGE_CLEAN"], map[string]string{"exec": "forbidden"})} {
		if _, err := e.c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"open", "guarded"} {
		if _, err := e.c.WaitPodReady(ctx, ns, n); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := e.c.Exec(ctx, ns, "open", "app", []string{"sh", "-c", "echo $E2E_IMAGE"}, nil)
	if err != nil || strings.TrimSpace(string(out)) != "clean" {
		t.Fatalf("exec into an unguarded pod: %q %v", out, err)
	}
	_, _, err = e.c.Exec(ctx, ns, "guarded", "app", []string{"sh", "-c", "id"}, nil)
	if err == nil || !strings.Contains(err.Error(), `rule "no-exec"`) || !strings.Contains(err.Error(), "podAccess") {
		t.Fatalf("exec into a guarded pod: %v", err)
	}
	t.Logf("exec denied: %v", err)
	// A privileged debug container (kubectl debug) goes through the
	// ephemeralcontainers subresource: denied too.
	p, err := e.c.Client.CoreV1().Pods(ns).Get(ctx, "open", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", Image: e.images["IMAGE_CLEAN"], Command: []string{"sh"}, SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}})
	_, err = e.c.Client.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "open", p, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), `rule "pss-baseline": privileged at spec.ephemeralContainers[0].securityContext.privileged`) {
		t.Fatalf("privileged ephemeral container: %v", err)
	}
}

// helm: the chart lints, renders in its main configurations, and every
// object it renders is accepted by the API server (server-side dry-run
// apply, admission included: the chart's pods meet the restricted level,
// so the webhook has no Pod Security warning for them).
func (e *e2e) helm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	helm, err := e.c.Helm()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(e.repo, "deploy", "helm", "mamori")
	if out, err := exec.CommandContext(ctx, helm, "lint", chart, "--set", "cluster.token=x").CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	rc, warns, err := e.c.Recording()
	if err != nil {
		t.Fatal(err)
	}
	// The node agent's DaemonSet needs host privileges the restricted
	// level refuses: it is checked in the component's own namespace, which
	// admission never sees; the other variants leave it out.
	variants := map[string][]string{
		"defaults, agent":      {"cluster.token=t0ken"},
		"fail, replicas, ca":   {"agent.enabled=false", "cluster.token=t0ken", "cluster.failurePolicy=Fail", "cluster.replicas=2", "cluster.serverCA=-----BEGIN CERTIFICATE-----", "server.bootstrapToken=b00t"},
		"cluster only, secret": {"agent.enabled=false", "server.enabled=false", "cluster.server=https://mamori.example.com:8443", "cluster.existingTokenSecret=tok", "cluster.readPullSecrets=true", "networkPolicy.enabled=false"},
		"postgres, tls":        {"agent.enabled=false", "cluster.enabled=false", "server.store.postgres=postgres://mamori@db/mamori", "server.tlsSecret=mamori-tls", "server.existingBootstrapSecret=boot"},
		"trust":                {"agent.enabled=false", "cluster.token=t0ken", "trust.trustedRoot=root", "trust.registryCA=-----BEGIN CERTIFICATE-----"},
		"trust, configmap":     {"agent.enabled=false", "cluster.token=t0ken", "trust.trustedRootConfigMap=sigstore-root"},
	}
	for name, sets := range variants {
		ns := "mamori" // excluded from admission (the component's namespace)
		if !strings.HasSuffix(name, "agent") {
			ns = e.c.Namespace(t)
		}
		args := []string{"template", "mamori", chart, "--namespace", ns}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		out, err := exec.CommandContext(ctx, helm, args...).Output()
		if err != nil {
			t.Fatalf("%s: helm template: %v", name, err)
		}
		// The trusted root reaches the server and the component, each
		// from a mounted ConfigMap; the registry CAs the server only.
		if strings.HasPrefix(name, "trust") {
			if n := strings.Count(string(out), "--trusted-root=/var/run/mamori/trusted-root/trusted_root.json"); n != 2 {
				t.Errorf("%s: --trusted-root in %d containers, want 2 (server, cluster)", name, n)
			}
			if want := strings.Contains(name, "configmap"); strings.Contains(string(out), "--registry-ca=") == want {
				t.Errorf("%s: --registry-ca given: %v, want %v", name, !want, want)
			}
		}
		warns.Take()
		objs, err := rc.ApplyDryRun(ctx, ns, out)
		if err != nil {
			t.Fatalf("%s: server-side dry-run apply: %v", name, err)
		}
		for _, w := range warns.Take() {
			if strings.Contains(w, "pss-") && ns != "mamori" {
				t.Errorf("%s: the chart's pods are not restricted: %s", name, w)
			}
		}
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
		}
		t.Logf("%s: %d objects accepted by the API server (dry run): %v", name, len(objs), kinds)
	}
}

// signatures: the component verified each trusted/ image once during the
// matrix (its log says so, with the registry requests and time), and later
// requests for the signed image by digest are answered from its cache
// (no new verification): their latency is measured.
func (e *e2e) signatures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	phs := []string{"IMAGE_SIGNED", "IMAGE_UNSIGNED", "IMAGE_OTHERKEY", "IMAGE_TAMPERED"}
	verified := func() map[string]int {
		b, err := os.ReadFile(filepath.Join(e.c.Dir, "logs", "mamori-cluster.log"))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, line := range strings.Split(string(b), "\n") {
			for _, ph := range phs {
				repo := "image=" + strings.TrimSuffix(e.images[ph], ":1")
				if strings.Contains(line, "msg=\"image signature ") && (strings.Contains(line, repo+":1 ") || strings.Contains(line, repo+"@")) {
					counts[ph]++
					t.Logf("component: %s", line)
				}
			}
		}
		return counts
	}
	// Once each, by the matrix.
	before := verified()
	for _, ph := range phs {
		if before[ph] != 1 {
			t.Errorf("%s verified %d times by the component during the matrix, want once", ph, before[ph])
		}
	}
	d, err := e.built["IMAGE_SIGNED"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.TrimSuffix(e.images["IMAGE_SIGNED"], ":1") + "@" + d.String()
	for i := range 5 {
		// A new pod template each time: the decision cache does not answer,
		// the signature cache does.
		manifest := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: signed-%d}\nspec:\n  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}\n"+
			"  containers: [{name: app, image: %q, env: [{name: COUNT, value: '%d'}], securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n",
			i, pinned, i)
		t0 := time.Now()
		if _, err := e.c.ApplyDryRun(ctx, ns, []byte(manifest)); err != nil {
			t.Fatalf("signed image by digest, request %d: %v", i, err)
		}
		t.Logf("signed image by digest admitted (dry run), request %d: %.1f ms", i+1, float64(time.Since(t0).Microseconds())/1000)
	}
	if after := verified(); after["IMAGE_SIGNED"] != before["IMAGE_SIGNED"] {
		t.Errorf("the signed image was verified again (%d times in all): not from the cache", after["IMAGE_SIGNED"])
	}
}

// kevLog: the known-exploited image, denied by the block rule in the
// matrix, is admitted (with a warning naming the rule and the CVE) once the
// rule is in log mode.
func (e *e2e) kevLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.applyPolicy(t, ctx, "e2e.yaml", "kevlog", "name: known-exploited\n    description: no vulnerability CISA lists as known exploited\n    action: block",
		"name: known-exploited\n    description: no vulnerability CISA lists as known exploited\n    action: log", `== "v1"`, `== "kevlog"`)
	defer e.applyPolicy(t, ctx, "e2e.yaml", "v1")
	b, err := os.ReadFile(filepath.Join("testdata", "e2e", "kev-block.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.ReplaceAll(string(b), "IMAGE_KEV\n", e.images["IMAGE_KEV"]+"\n")
	rc, warns, err := e.c.Recording()
	if err != nil {
		t.Fatal(err)
	}
	ns := e.c.Namespace(t)
	warns.Take()
	if _, err := rc.Apply(ctx, ns, []byte(manifest)); err != nil {
		t.Fatalf("known-exploited image with the rule in log mode: %v", err)
	}
	text := strings.Join(warns.Take(), "\n")
	for _, m := range []string{`policy "e2e" rule "known-exploited": vulnerabilities`, "(known exploited)", "DEBIAN-CVE-2023-4911"} {
		if !strings.Contains(text, m) {
			t.Errorf("%q not in the warnings:\n%s", m, text)
		}
	}
	t.Logf("admitted with warnings:\n%s", text)
}
