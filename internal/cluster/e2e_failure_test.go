package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"mamori/internal/cluster"
)

// webhookClient reaches the running component's webhook as the API server
// does: its URL and CA bundle from the webhook configuration.
func (e *e2e) webhookClient(t *testing.T, ctx context.Context, name string) (string, *http.Client) {
	t.Helper()
	cfg, err := e.c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Webhooks[0].ClientConfig
	if cc.URL == nil {
		t.Fatalf("webhook %s has no URL", name)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cc.CABundle) {
		t.Fatal("no CA in the webhook configuration")
	}
	return *cc.URL, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func reviewBody(t *testing.T, uid, ns string, object []byte) []byte {
	t.Helper()
	r := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: k8stypes.UID("e2e-" + uid), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Name: "big",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: object}}}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postReview(ctx context.Context, hc *http.Client, u string, body []byte) (int, *admissionv1.AdmissionReview, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(b), nil
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, string(b), err
	}
	return resp.StatusCode, &out, "", nil
}

func pid(t *testing.T, dir, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pids", name))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// failures: the server unreachable (decisions from cache, then the failure
// policy), a 3 MiB review, a deeply nested object, an expensive CEL
// expression and a policy with an error.
func (e *e2e) failures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	rc, warns, err := e.c.Recording()
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name, image, sc string) []byte {
		return []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: %s
    securityContext: {capabilities: {drop: [ALL]}%s}
`, name, image, sc))
	}
	t.Run("server unreachable", func(t *testing.T) {
		// The vulnerable image is known from before; a new one is not.
		if _, err := rc.ApplyDryRun(ctx, ns, pod("known", e.images["IMAGE_VULNERABLE"], ", allowPrivilegeEscalation: false")); err == nil {
			t.Fatal("the vulnerable image is admitted with the server up")
		}
		srv := pid(t, e.c.Dir, "mamori-server")
		if err := syscall.Kill(srv, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				_ = syscall.Kill(srv, syscall.SIGCONT)
			}
		}()
		// From the cache: still denied.
		_, err := rc.ApplyDryRun(ctx, ns, pod("known-2", e.images["IMAGE_VULNERABLE"], ", allowPrivilegeEscalation: false, readOnlyRootFilesystem: true"))
		if err == nil || !strings.Contains(err.Error(), `rule "critical-vulnerabilities"`) {
			t.Fatalf("server away, cached image: %v", err)
		}
		// Nothing cached: the failure policy (Ignore) admits it, saying why.
		warns.Take()
		t0 := time.Now()
		if _, err := rc.ApplyDryRun(ctx, ns, pod("unknown", e.reg+"/e2e/never-seen:1", ", allowPrivilegeEscalation: false")); err != nil {
			t.Fatalf("server away, unknown image: %v", err)
		}
		if w := strings.Join(warns.Take(), "\n"); !strings.Contains(w, "unreachable") {
			t.Fatalf("server away, unknown image: warnings %q", w)
		}
		t.Logf("server away: unknown image admitted by the failure policy Ignore in %s", time.Since(t0).Round(time.Millisecond))
		// Workload rules need no server.
		if _, err := rc.ApplyDryRun(ctx, ns, pod("priv", e.reg+"/e2e/never-seen:1", ", privileged: true")); err == nil ||
			!strings.Contains(err.Error(), `rule "pss-baseline": privileged`) {
			t.Fatalf("server away, privileged pod: %v", err)
		}
		if err := syscall.Kill(srv, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		stopped = false
	})

	u, hc := e.webhookClient(t, ctx, cluster.DefaultName)
	t.Run("3 MiB review", func(t *testing.T) {
		// A pod of 1,500 containers with long commands: about 3 MiB.
		var cs []string
		for i := 0; i < 1500; i++ {
			cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q,"command":[%q],"securityContext":{"privileged":%v}}`,
				i, e.images["IMAGE_CLEAN"], strings.Repeat("x", 2100), i == 1499))
		}
		obj := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big","namespace":"` + ns + `"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`)
		body := reviewBody(t, "big", ns, obj)
		if len(body) < 3<<20 {
			t.Fatalf("review of %d bytes", len(body))
		}
		t0 := time.Now()
		code, out, msg, err := postReview(ctx, hc, u, body)
		if err != nil || code != 200 || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "containers[1499].securityContext.privileged") {
			t.Fatalf("3 MiB review: %d %v %q %+v", code, err, msg, out)
		}
		t.Logf("%d-byte review decided in %s: %s", len(body), time.Since(t0).Round(time.Millisecond), out.Response.Result.Message[:120])
		// Past the webhook's cap (16 MiB): refused before decoding.
		huge := reviewBody(t, "huge", ns, append(append([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"huge","annotations":{"a":"`),
			bytes.Repeat([]byte("y"), 17<<20)...), []byte(`"}},"spec":{"containers":[]}}`)...))
		if code, _, msg, err := postReview(ctx, hc, u, huge); err != nil || code != http.StatusRequestEntityTooLarge {
			t.Fatalf("17 MiB review: %d %q %v", code, msg, err)
		}
	})
	t.Run("deeply nested object", func(t *testing.T) {
		// Built as text: Go's JSON encoder itself refuses to write it.
		depth := 100000
		body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"e2e-deep",` +
			`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
			`"namespace":"` + ns + `","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod",` +
			`"metadata":{"name":"deep"},"spec":{"containers":[]},"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}}`)
		code, _, msg, err := postReview(ctx, hc, u, body)
		if err != nil || code != http.StatusBadRequest || !strings.Contains(msg, "depth") {
			t.Fatalf("nested object: %d %q %v", code, msg, err)
		}
		t.Logf("nested object: %d %s", code, strings.TrimSpace(msg))
		// The component still serves.
		code, out, _, err := postReview(ctx, hc, u, reviewBody(t, "after", ns, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"after"},"spec":{"containers":[{"name":"c","image":"`+e.images["IMAGE_CLEAN"]+`"}]}}`)))
		if err != nil || code != 200 || !out.Response.Allowed {
			t.Fatalf("after the nested object: %d %v %+v", code, err, out)
		}
	})
	t.Run("policy errors at load", func(t *testing.T) {
		expensive := "apiVersion: mamori.dev/v1\nkind: Policy\nname: costly\nadmission:\n  - name: loops\n    action: block\n" +
			"    cel: 'object.spec.containers.all(a, object.spec.containers.all(b, object.spec.containers.all(c, a.name != b.name || b.name != c.name)))'\n"
		_, err := e.admin.ApplyPolicy(ctx, "costly.yaml", []byte(expensive))
		if err == nil || !strings.Contains(err.Error(), "costly.yaml:7:") || !strings.Contains(err.Error(), "too expensive") {
			t.Fatalf("expensive CEL: %v", err)
		}
		t.Logf("expensive CEL refused at load: %v", err)
		bad := "apiVersion: mamori.dev/v1\nkind: Policy\nname: broken\nadmission:\n  - name: vulns\n    action: block\n    vulnerabilities: {severity: severe}\n"
		_, err = e.admin.ApplyPolicy(ctx, "broken.yaml", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), "broken.yaml:7:") || !strings.Contains(err.Error(), "severe") {
			t.Fatalf("policy with an error: %v", err)
		}
		t.Logf("policy error: %v", err)
		// Neither reached the cluster: the e2e policy is still enforced.
		if _, err := e.admin.GetPolicy(ctx, "costly", 0); err == nil {
			t.Fatal("the expensive policy was stored")
		}
	})
}

// restart: the component killed (SIGKILL) while pods come and go, then
// started again: the webhook's failure policy (Ignore) admitted what came
// meanwhile, and after the restart the server's inventory matches the
// cluster again (its full resync of a new generation) and continuous
// compliance reports the pod admitted unchecked.
func (e *e2e) restart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	kwok := func(name string, privileged bool) *corev1.Pod {
		p := realPod(e.c, name, "registry.example/kwok-only:1", nil)
		p.Spec.NodeName, p.Spec.Tolerations = "", nil
		p.Spec.NodeSelector = map[string]string{"mamori.local/node": "kwok"}
		if privileged {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
		}
		return p
	}
	if _, err := e.c.Client.CoreV1().Pods(ns).Create(ctx, kwok("before", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitInventory(t, ctx, ns, []string{"before"})

	p := pid(t, e.c.Dir, "mamori-cluster")
	argv, err := procStrings(p, "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	env, err := procStrings(p, "environ")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(p, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	// While it is down: a pod deleted, a privileged one admitted unchecked
	// (failure policy Ignore: the API server cannot reach the webhook).
	if err := e.c.Client.CoreV1().Pods(ns).Delete(ctx, "before", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Client.CoreV1().Pods(ns).Create(ctx, kwok("unchecked", true), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a pod while the component is down (failure policy Ignore): %v", err)
	}
	waitFor(t, ctx, "pod before gone", func() (bool, error) {
		_, err := e.c.Client.CoreV1().Pods(ns).Get(ctx, "before", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// Start it again as cluster.sh did (the pid file is what down stops).
	logf, err := os.OpenFile(filepath.Join(e.c.Dir, "logs", "mamori-cluster.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	if err := os.WriteFile(filepath.Join(e.c.Dir, "pids", "mamori-cluster"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // reaped when it ends (cluster.sh down stops it)
	t0 := time.Now()
	e.waitInventory(t, ctx, ns, []string{"unchecked"})
	t.Logf("after the restart the inventory matched the cluster in %s", time.Since(t0).Round(100*time.Millisecond))
	e.expectServerEvent(t, ctx, ns, "compliance", "pss-baseline", "unchecked")
	// And the webhook decides again.
	if _, err := e.c.ApplyDryRun(ctx, ns, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec: {containers: [{name: c, image: x:1, securityContext: {privileged: true}}]}\n")); err == nil {
		t.Fatal("privileged pod admitted after the restart")
	}
}

func procStrings(pid int, file string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// waitInventory waits until the server's pods of ns are exactly names.
func (e *e2e) waitInventory(t *testing.T, ctx context.Context, ns string, names []string) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("the server's inventory of %s to be %v", ns, names), func() (bool, error) {
		objs, err := e.admin.ClusterObjects(ctx, e.clusterID, url.Values{"kind": {"Pod"}, "namespace": {ns}})
		if err != nil {
			return false, err
		}
		var got []string
		for _, o := range objs.Objects {
			got = append(got, o.Name)
		}
		return strings.Join(got, ",") == strings.Join(names, ","), nil
	})
}

func (e *e2e) expectServerEvent(t *testing.T, ctx context.Context, ns, source, rule, pod string) {
	t.Helper()
	waitFor(t, ctx, source+" event of "+pod, func() (bool, error) {
		p, err := e.admin.ListEvents(ctx, url.Values{"source": {source}, "namespace": {ns}, "rule": {rule}, "pod": {pod}})
		return err == nil && len(p.Events) > 0, err
	})
}

// rotation: a second webhook (this process, failure policy Fail, limited
// to a labelled namespace) with a CA valid 24 s and certificates valid 8 s
// answers dry-run creates without a pause for 45 s while both rotate: no
// admission fails.
func (e *e2e) rotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := e.c.Namespace(t)
	nsObj, err := e.c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Labels["mamori-e2e-rotation"] = "true"
	if _, err := e.c.Client.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tok, err := os.ReadFile(e.status["MAMORI_CLUSTER_TOKEN_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	const name = "mamori-e2e-rotation"
	comp, err := cluster.New(ctx, cluster.Options{Kubeconfig: e.c.Kubeconfig, Server: e.c.ServerURL, Token: strings.TrimSpace(string(tok)),
		ServerCA: e.c.ServerCA, Namespace: "mamori", Name: name, Listen: addr, WebhookURL: "https://" + addr + "/validate",
		FailurePolicy: cluster.FailurePolicyFail, WebhookOnly: true, NoInlineScan: true, DataDir: t.TempDir(),
		WebhookNamespaceLabels: map[string]string{"mamori-e2e-rotation": "true"},
		Certs:                  cluster.CertOptions{CAValidity: 24 * time.Second, CertValidity: 8 * time.Second, RotateAt: 0.5, Overlap: 3 * time.Second, Interval: 250 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- comp.Run(ctx) }()
	t.Cleanup(func() {
		cctx, c2 := context.WithTimeout(context.Background(), 30*time.Second)
		defer c2()
		_ = e.c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(cctx, name, metav1.DeleteOptions{})
		_ = e.c.Client.CoreV1().Secrets("mamori").Delete(cctx, name+"-webhook-tls", metav1.DeleteOptions{})
	})
	waitFor(t, ctx, "the second webhook's configuration", func() (bool, error) {
		_, err := e.c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	})
	manifest := []byte(`apiVersion: v1
kind: Pod
metadata: {name: rot}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: c, image: ` + e.images["IMAGE_CLEAN"] + `, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}
`)
	cas, certs := map[string]bool{}, map[string]bool{}
	var n, failed int
	var firstErr error
	end := time.Now().Add(45 * time.Second)
	for time.Now().Before(end) {
		c, err := comp.CertManager().GetCertificate(nil)
		if err == nil {
			certs[c.Leaf.SerialNumber.String()] = true
			cas[c.Leaf.Issuer.CommonName] = true
		}
		actx, acancel := context.WithTimeout(ctx, 15*time.Second)
		_, err = e.c.ApplyDryRun(actx, ns, manifest)
		acancel()
		n++
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("second webhook: %v", err)
	}
	t.Logf("%d dry-run creates through the rotating webhook, %d failed; %d CAs and %d serving certificates served", n, failed, len(cas), len(certs))
	if failed > 0 {
		t.Fatalf("%d of %d admissions failed during rotation; first: %v", failed, n, firstErr)
	}
	if len(cas) < 2 || len(certs) < 4 || n < 50 {
		t.Fatalf("too little rotation to show anything: %d CAs, %d certificates, %d requests", len(cas), len(certs), n)
	}
}
