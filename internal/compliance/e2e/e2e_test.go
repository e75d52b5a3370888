// Package e2e is the compliance e2e of issue 13 on the local cluster of
// scripts/cluster.sh (internal/testkube, MAMORI_TEST_KUBE=1, root): a
// mamori server, the cluster's posture collected from its API, a real
// mamori agent on the cluster's real node (runtime sensor, anti-malware
// and integrity monitoring from its host group, its compliance posture
// every two seconds) in a mount and network namespace the test owns, two
// TLS registries on loopback with images built, signed and scanned in the
// test; the report before and after ten deliberate violations, each
// flipping exactly its controls; the PDF read back with pdftotext and
// rendered with pdftoppm, the HTML opened in headless Chromium.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
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
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/compliance"
	"mamori/internal/demo"
	"mamori/internal/server"
	"mamori/internal/sign/signtest"
	"mamori/internal/testkube"
)

func TestMain(m *testing.M) { os.Exit(testkube.Main(m)) }

// testCA makes a CA and a serving certificate for 127.0.0.1, and writes
// the CA to a PEM file (SSL_CERT_FILE of the CLI processes).
func testCA(t *testing.T, dir string) (*x509.CertPool, tls.Certificate, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mamori e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// registry is go-containerregistry's registry over TLS on loopback; with
// user set it refuses anonymous requests.
type registry struct {
	host  string
	ropts []remote.Option
}

func newRegistry(t *testing.T, cert tls.Certificate, roots *x509.CertPool, user, pass string) *registry {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	r := &registry{host: strings.TrimPrefix(srv.URL, "https://"), ropts: []remote.Option{remote.WithTransport(tr)}}
	if user != "" {
		r.ropts = append(r.ropts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})))
	}
	return r
}

// push builds a small image (one text file, a non-root user, a
// HEALTHCHECK, built at created) and pushes it to repo:tag.
func (r *registry) push(t *testing.T, repo, tag string, created time.Time) name.Digest {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	body := []byte(fmt.Sprintf("%s:%s built %s\n", repo, tag, created.Format(time.RFC3339)))
	_ = tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: created})
	_ = tw.WriteHeader(&tar.Header{Name: "app/VERSION", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: created})
	_, _ = tw.Write(body)
	_ = tw.Close()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(b.Bytes(), types.OCIUncompressedLayer),
		History: v1.History{CreatedBy: "COPY VERSION /app/", Created: v1.Time{Time: created}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = "linux", "amd64", v1.Time{Time: created}
	cfg.Config.User = "1000:1000"
	cfg.Config.Cmd = []string{"/app/run"}
	cfg.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "/app/run", "--health"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.ropts...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

// env is the e2e's world.
type env struct {
	t         *testing.T
	c         *testkube.Cluster
	dir       string
	bin       string
	dbDir     string
	caFile    string
	serverURL string
	admin     string
	api       *client.Client
	run       string
	allowed   []string
	nodeFix   string
	clusterTk string
	agentTk   string
}

// repoRoot is the module root (go.mod) above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	d, _ := os.Getwd()
	for ; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatal("no go.mod above the test")
	return ""
}

// mamori runs the mamori binary and returns its stdout.
func (e *env) mamori(ctx context.Context, extraEnv []string, args ...string) []byte {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), append([]string{"SSL_CERT_FILE=" + e.caFile, "MAMORI_USERNAME=u", "MAMORI_PASSWORD=p"}, extraEnv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("mamori %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// scan scans a registry image with the CLI and uploads the result.
func (e *env) scan(ctx context.Context, ref string) {
	e.t.Helper()
	e.mamori(ctx, nil, "image", ref, "--scanners", "vuln,secret,malware,misconfig", "--offline", "--db-dir", e.dbDir,
		"--cache-dir", filepath.Join(e.dir, "cache"), "-q", "-f", "json", "-o", os.DevNull,
		"--server", e.serverURL, "--token", e.admin)
}

// collectCluster collects and sends the cluster's posture (what the
// cluster component does every 5 minutes), scoped to the test's
// namespaces.
func (e *env) collectCluster(ctx context.Context) {
	e.t.Helper()
	args := []string{"compliance", "collect", "cluster", "--kubeconfig", e.c.Kubeconfig, "--namespace-selector",
		"mamori.io/compliance-e2e=" + e.run, "--server", e.serverURL, "--token", e.clusterTk}
	if len(e.allowed) > 0 {
		args = append(args, "--allowed-subjects", strings.Join(e.allowed, ","))
	}
	e.mamori(ctx, nil, args...)
}

// assess probes the registries, verifies signatures, re-assesses and
// returns the NIST SP 800-190 report.
func (e *env) assess(ctx context.Context) *compliance.Report {
	e.t.Helper()
	if _, err := e.api.ComplianceAssess(ctx); err != nil {
		e.t.Fatal(err)
	}
	b, err := e.api.ComplianceReport(ctx, compliance.StandardNIST800190, compliance.FormatJSON)
	if err != nil {
		e.t.Fatal(err)
	}
	var r compliance.Report
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		e.t.Fatal(err)
	}
	return &r
}

func statuses(r *compliance.Report) map[string]compliance.ControlResult {
	out := map[string]compliance.ControlResult{}
	for _, c := range r.Controls {
		out[c.ID] = c
	}
	return out
}

// TestReportBeforeAndAfterViolations is the must-show of issue 13.
func TestReportBeforeAndAfterViolations(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespace, the local cluster)")
	}
	for _, tool := range []string{"unshare", "ip", "pdftotext", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (util-linux, poppler-utils): %v", tool, err)
		}
	}
	kc := testkube.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	admitForTest(t, ctx, kc)
	start := time.Now()
	out := os.Getenv("MAMORI_SCREENSHOT_DIR")
	dir := t.TempDir()
	if out == "" {
		out = dir
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, c: kc, dir: dir, run: fmt.Sprintf("r%d", time.Now().UnixNano()%1_000_000_000)}

	// The mamori binary, the demo vulnerability database (CLI and server).
	e.bin = filepath.Join(dir, "mamori")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/mamori")
	build.Dir = repoRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mamori: %v\n%s", err, b)
	}
	e.dbDir = filepath.Join(dir, "db")
	if _, err := demo.ImportDB(ctx, e.dbDir); err != nil {
		t.Fatal(err)
	}
	roots, cert, caFile := testCA(t, dir)
	e.caFile = caFile

	// The server: in this process, on loopback, trusting the test CA for
	// registry probes and signature verification.
	tok, err := auth.GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	e.admin = tok
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "server"), InsecureHTTP: true,
		VulnDBDir: e.dbDir, RegistryRoots: roots, AssessPoll: time.Hour, AssessSchedule: 24 * time.Hour,
		Getenv: func(k string) string {
			if k == server.EnvBootstrapToken {
				return tok
			}
			return ""
		}, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { stopServer(); <-served })
	e.serverURL = "http://" + ln.Addr().String()
	if e.api, err = client.New(e.serverURL, tok); err != nil {
		t.Fatal(err)
	}

	// The cluster and its tokens.
	var created api.ClusterCreated
	if err := postJSON(ctx, e, api.PathClusters, api.ClusterRequest{Name: "e2e"}, &created); err != nil {
		t.Fatal(err)
	}
	e.clusterTk = created.Token
	var agentTok api.TokenCreated
	if err := postJSON(ctx, e, api.PathTokens, map[string]any{"name": "agent-e2e", "role": "agent", "cluster": "e2e"}, &agentTok); err != nil {
		t.Fatal(err)
	}
	e.agentTk = agentTok.Token

	// Registry A (credentials required) and the signing key.
	regA := newRegistry(t, cert, roots, "u", "p")
	key, err := signtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := postJSON(ctx, e, api.PathRegistries, map[string]any{"name": "private-a", "url": "https://" + regA.host,
		"username": "u", "password": "p"}, nil); err != nil {
		t.Fatal(err)
	}
	web := regA.push(t, "shop/web", "1", time.Now().Add(-2*24*time.Hour))
	if err := key.Sign(web, regA.ropts...); err != nil {
		t.Fatal(err)
	}
	webRef := regA.host + "/shop/web:1"
	e.scan(ctx, webRef)

	// The policy the cluster enforces: signatures required from registry A;
	// the agent's runtime rules (the default ruleset) in force for the
	// test's namespaces only and only logged: nothing of the shared
	// machine is isolated or terminated, and no one else's processes
	// decide 4.4.4.
	policyDoc := fmt.Sprintf(`apiVersion: mamori.dev/v1
kind: Policy
name: e2e
admission:
- name: signed
  action: block
  signatures:
    registries: [%q]
    keys:
    - |
      %s
- name: baseline
  action: block
  podSecurity: {level: baseline}
runtime:
- ruleset: default
  match: {namespaces: [ce2e-shop-%s, ce2e-open-%s]}
  host: false
  action: log
`, regA.host, strings.ReplaceAll(strings.TrimSpace(key.PublicPEM), "\n", "\n      "), e.run, e.run)
	if err := postJSON(ctx, e, api.PathPolicies, api.PolicyApply{File: "e2e.yaml", Document: policyDoc}, nil); err != nil {
		t.Fatal(err)
	}
	if err := doJSON(ctx, e, http.MethodPut, strings.Replace(api.PathClusterPolicyAssign, "{id}", fmt.Sprint(created.Cluster.ID), 1),
		api.ClusterPolicyRequest{Policy: "e2e"}, nil); err != nil {
		t.Fatal(err)
	}

	// The application namespace: labelled for the posture's scope, a
	// default-deny NetworkPolicy, one hardened pod of the signed image.
	shop := e.namespace(ctx, "shop")
	e.denyAll(ctx, shop)
	e.pod(ctx, shop, "web", webRef, false)

	// The node: its real /etc but sudoers.d and a hardened sshd_config
	// from the fixture (mount namespace).
	e.nodeFix = filepath.Join(dir, "node")
	if err := os.MkdirAll(filepath.Join(e.nodeFix, "sudoers.d"), 0o750); err != nil {
		t.Fatal(err)
	}
	sshd, err := os.ReadFile("/etc/ssh/sshd_config")
	if err != nil {
		sshd = nil // no sshd on this node: the fixture is the whole file
	}
	hardened := append([]byte("# mamori e2e: hardened first (sshd takes the first value)\nPermitRootLogin no\nPasswordAuthentication no\nPermitEmptyPasswords no\n"), sshd...)
	if err := os.WriteFile(filepath.Join(e.nodeFix, "sshd_config"), hardened, 0o644); err != nil {
		t.Fatal(err)
	}

	// Bindings that exist before the test are the cluster's baseline.
	var pre struct {
		Bindings []struct {
			Subjects []string `json:"subjects"`
			Allowed  bool     `json:"allowed"`
		} `json:"bindings"`
	}
	if err := json.Unmarshal(e.mamori(ctx, nil, "compliance", "collect", "cluster", "--kubeconfig", kc.Kubeconfig, "--dry-run",
		"--namespace-selector", "mamori.io/compliance-e2e="+e.run), &pre); err != nil {
		t.Fatal(err)
	}
	for _, b := range pre.Bindings {
		e.allowed = append(e.allowed, b.Subjects...)
	}
	if len(e.allowed) > 0 {
		t.Logf("pre-existing broad bindings accepted as the cluster's baseline: %v", e.allowed)
	}
	e.waitPods(ctx, shop, 1)
	e.collectCluster(ctx)

	// The agent on the real node: its host group first (its first poll
	// takes it), then the agent; its postures replace the node's.
	e.hostGroup(ctx, true)
	agentStart := time.Now()
	ag := e.startAgent(ctx)
	before := e.waitAgent(ctx, ag, 4*time.Minute)
	t.Logf("the agent's posture with its modules and host inventory assessed %s after its start", time.Since(agentStart).Round(time.Second))
	t.Logf("agent:\n%s", ag.grep("msg=\"agent started\"", "rules replaced", "host module running", "host inventory taken"))
	t.Logf("setup %s", time.Since(start).Round(time.Second))

	e.writeReports(ctx, out, "before")
	prev := statuses(before)
	for _, id := range []string{"4.1.5", "4.2.2", "4.2.3", "4.3.1", "4.3.3", "4.4.2", "4.4.3", "4.4.4", "4.5.1", "4.5.4", "4.5.5"} {
		if c := prev[id]; c.Status != compliance.StatusPass {
			t.Fatalf("baseline: %s is %s (%s), want pass: the violations could not flip it", id, c.Status, c.Reason)
		}
	}
	table := [][]string{}
	for _, c := range before.Controls {
		table = append(table, []string{c.ID, string(c.Status), c.Reason})
	}
	logTable(t, "before", table)

	// The violations, one at a time, each flipping exactly its controls.
	violations := []struct {
		name  string
		flips []string
		do    func()
	}{
		{"a cluster-admin binding for a service account", []string{"4.3.1"}, func() {
			e.kubectl(ctx, "create", "clusterrolebinding", "e2e-ci-admin-"+e.run, "--clusterrole=cluster-admin",
				"--serviceaccount="+shop+":ci")
			t.Cleanup(func() { e.kubectlQuiet("delete", "clusterrolebinding", "e2e-ci-admin-"+e.run) })
			e.collectCluster(ctx)
		}},
		{"a namespace without NetworkPolicy", []string{"4.3.3", "4.4.2"}, func() {
			open := e.namespace(ctx, "open")
			e.pod(ctx, open, "web", webRef, false)
			e.waitPods(ctx, open, 1)
			e.collectCluster(ctx)
		}},
		{"an unsigned image from a registry that requires signatures", []string{"4.1.5"}, func() {
			regA.push(t, "shop/unsigned", "1", time.Now().Add(-24*time.Hour))
			e.scan(ctx, regA.host+"/shop/unsigned:1")
		}},
		{"a privileged pod", []string{"4.4.3"}, func() {
			e.pod(ctx, shop, "privileged", webRef, true)
			e.waitPods(ctx, shop, 2)
			e.collectCluster(ctx)
		}},
		{"a stale image", []string{"4.2.2"}, func() {
			old := regA.push(t, "shop/legacy", "2019.1", time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC))
			if err := key.Sign(old, regA.ropts...); err != nil {
				t.Fatal(err)
			}
			e.scan(ctx, regA.host+"/shop/legacy:2019.1")
		}},
		{"an anonymous-pull registry", []string{"4.2.3"}, func() {
			regB := newRegistry(t, cert, roots, "", "")
			regB.push(t, "team/tool", "1", time.Now().Add(-time.Hour))
			e.scan(ctx, regB.host+"/team/tool:1")
			if err := postJSON(ctx, e, api.PathRegistries, map[string]any{"name": "private-b", "url": "https://" + regB.host,
				"username": "reader", "password": "secret"}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"a user added to sudoers on the node", []string{"4.5.4"}, func() {
			if err := os.WriteFile(filepath.Join(e.nodeFix, "sudoers.d", "mallory"), []byte("mallory ALL=(ALL) NOPASSWD: ALL\n"), 0o440); err != nil {
				t.Fatal(err)
			}
			e.waitControl(ctx, ag, "4.5.4", compliance.StatusFail, time.Minute)
		}},
		{"a service listening beyond loopback on the node", []string{"4.5.1"}, func() {
			go serve(ag.listen("0.0.0.0:18080"))
			e.waitControl(ctx, ag, "4.5.1", compliance.StatusFail, time.Minute)
		}},
		{"integrity monitoring turned off on the node", []string{"4.5.5"}, func() {
			e.hostGroup(ctx, false)
			e.waitControl(ctx, ag, "4.5.5", compliance.StatusFail, time.Minute)
		}},
		{"the runtime rules taken out of the node's policy", []string{"4.4.4"}, func() {
			// The same policy without its runtime section: the agent
			// loads it at its next heartbeat (every minute) and its
			// sensor runs with no rule in force.
			doc := policyDoc[:strings.Index(policyDoc, "runtime:\n")]
			if err := postJSON(ctx, e, api.PathPolicies, api.PolicyApply{File: "e2e.yaml", Document: doc}, nil); err != nil {
				t.Fatal(err)
			}
			e.waitControl(ctx, ag, "4.4.4", compliance.StatusFail, 2*time.Minute)
		}},
	}
	for _, v := range violations {
		vs := time.Now()
		v.do()
		r := e.assess(ctx)
		now := statuses(r)
		var flipped []string
		for id, c := range now {
			if p := prev[id]; p.Status != c.Status {
				flipped = append(flipped, id)
				if p.Status != compliance.StatusPass || c.Status != compliance.StatusFail {
					t.Errorf("%s: %s went %s -> %s (%s)", v.name, id, p.Status, c.Status, c.Reason)
				}
			}
		}
		sort.Strings(flipped)
		if !slices.Equal(flipped, v.flips) {
			t.Errorf("%s flipped %v, want %v", v.name, flipped, v.flips)
			for _, id := range flipped {
				t.Logf("  %s: %s", id, now[id].Reason)
			}
		} else {
			t.Logf("%s: flipped %v in %s — %s", v.name, flipped, time.Since(vs).Round(time.Millisecond), now[v.flips[0]].Reason)
		}
		prev = now
	}
	after := e.assess(ctx)
	table = table[:0]
	for _, c := range after.Controls {
		table = append(table, []string{c.ID, string(c.Status), c.Reason})
	}
	logTable(t, "after", table)
	e.writeReports(ctx, out, "after")
	e.checkPDF(ctx, out, "after", after)
	e.checkPDF(ctx, out, "before", before)
	e.checkHTML(ctx, out, "after", after)
	t.Logf("whole e2e %s; reports and images in %s", time.Since(start).Round(time.Second), out)
}

// logTable logs the report as a table.
func logTable(t *testing.T, title string, rows [][]string) {
	var b strings.Builder
	fmt.Fprintf(&b, "report %s:\n", title)
	for _, r := range rows {
		reason := r[2]
		if len(reason) > 110 {
			reason = reason[:110] + "…"
		}
		fmt.Fprintf(&b, "  %-6s %-14s %s\n", r[0], r[1], reason)
	}
	t.Log(b.String())
}

func postJSON(ctx context.Context, e *env, path string, body, out any) error {
	return doJSON(ctx, e, http.MethodPost, path, body, out)
}

func doJSON(ctx context.Context, e *env, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, e.serverURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, rb)
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}
