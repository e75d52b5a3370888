package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"mamori/internal/api/client"
	"mamori/internal/compliance"
	"mamori/internal/testkube"
)

// admitForTest makes the local cluster's admission webhook log instead of
// block for the test's duration: the cluster.sh server's policy of the
// cluster "local" is swapped for a copy of the default policy whose
// baseline rule logs (a privileged pod must run to be a violation of a
// running cluster; admission blocking it is the product working, and
// tested in internal/cluster). The previous assignment is restored.
func admitForTest(t *testing.T, ctx context.Context, c *testkube.Cluster) {
	t.Helper()
	if c.ServerURL == "" || c.TokenFile == "" || c.Component != "running" {
		t.Logf("no mamori cluster component in this cluster (%q): admission is not in the way", c.Component)
		return
	}
	tok, err := os.ReadFile(c.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.Option
	if c.ServerCA != "" {
		opts = append(opts, client.WithCAFile(c.ServerCA))
	}
	cl, err := client.New(c.ServerURL, strings.TrimSpace(string(tok)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	doc := `apiVersion: mamori.dev/v1
kind: Policy
name: compliance-e2e-admit
description: the compliance e2e's running violations (privileged pod) must be admitted
unknownImages: {action: allow}
admission:
  - {name: pss-baseline, action: log, podSecurity: {level: baseline}}
`
	if _, err := cl.ApplyPolicy(ctx, "compliance-e2e-admit.yaml", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	cs, err := cl.ListClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cs.Clusters {
		if k.Name != "local" {
			continue
		}
		prev := k.Policy
		if _, err := cl.AssignClusterPolicy(ctx, k.ID, "compliance-e2e-admit"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cl.AssignClusterPolicy(cctx, k.ID, prev); err != nil {
				t.Errorf("restore the policy %q of cluster local: %v", prev, err)
			}
			_ = cl.DeletePolicy(cctx, "compliance-e2e-admit")
		})
		return
	}
	t.Fatal("the cluster.sh server has no cluster named local")
}

// namespace creates a namespace labelled for the posture's scope.
func (e *env) namespace(ctx context.Context, base string) string {
	e.t.Helper()
	name := "ce2e-" + base + "-" + e.run
	_, err := e.c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"mamori.io/compliance-e2e": e.run}}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("namespace %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bg := metav1.DeletePropagationBackground
		if err := e.c.Client.CoreV1().Namespaces().Delete(cctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			e.t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

// denyAll puts a default-deny ingress and egress NetworkPolicy in ns.
func (e *env) denyAll(ctx context.Context, ns string) {
	e.t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}
	if _, err := e.c.Client.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// pod runs image on a kwok node: hardened (non-root, no escalation, all
// capabilities dropped, RuntimeDefault seccomp, read-only root, limits),
// or privileged. Admission may take a few seconds to follow a policy
// change: creation is retried for a minute.
func (e *env) pod(ctx context.Context, ns, name, image string, privileged bool) {
	e.t.Helper()
	sc := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000), AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	if privileged {
		sc = &corev1.SecurityContext{Privileged: ptr.To(true), RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	}
	res := corev1.ResourceList{corev1.ResourceCPU: mustQty("50m"), corev1.ResourceMemory: mustQty("32Mi")}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), Containers: []corev1.Container{{Name: "app", Image: image,
			ImagePullPolicy: corev1.PullAlways, SecurityContext: sc, Resources: corev1.ResourceRequirements{Limits: res, Requests: res}}}}}
	testkube.OnKwokNodes(&p.Spec)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := e.c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.t.Fatalf("pod %s/%s: %v", ns, name, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// waitPods waits until n pods of ns run.
func (e *env) waitPods(ctx context.Context, ns string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		l, err := e.c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d pods of %s running", running, n, ns)
		}
		time.Sleep(time.Second)
	}
}

func (e *env) kubectl(ctx context.Context, args ...string) {
	e.t.Helper()
	if out, err := e.c.Kubectl(ctx, args...); err != nil {
		e.t.Fatalf("%v\n%s", err, out)
	}
}

func (e *env) kubectlQuiet(args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = e.c.Kubectl(ctx, args...)
}

// writeReports saves the report of each standard in each format.
func (e *env) writeReports(ctx context.Context, dir, label string) {
	e.t.Helper()
	for _, std := range []string{compliance.StandardNIST800190, compliance.StandardCISDocker, compliance.StandardCISKubernetes} {
		for _, f := range []string{compliance.FormatJSON, compliance.FormatHTML, compliance.FormatPDF} {
			b := e.mamori(ctx, nil, "compliance", "report", "--standard", std, "--format", f, "--server", e.serverURL, "--token", e.admin)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s.%s", std, label, f)), b, 0o644); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// checkPDF reads the PDF back with pdftotext (every control ID with its
// status) and renders its pages with pdftoppm for a person to look at.
func (e *env) checkPDF(ctx context.Context, dir, label string, r *compliance.Report) {
	e.t.Helper()
	pdf := filepath.Join(dir, fmt.Sprintf("%s-%s.pdf", compliance.StandardNIST800190, label))
	txt, err := exec.CommandContext(ctx, "pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		e.t.Fatalf("pdftotext %s: %v", pdf, err)
	}
	text := string(txt)
	lines := strings.Split(text, "\n")
	for _, c := range r.Controls {
		found := false
		for _, l := range lines {
			if strings.Contains(l, c.ID) && strings.Contains(l, c.Status.Label()) {
				found = true
				break
			}
		}
		if !found {
			e.t.Errorf("%s PDF: no line with control %s and its status %q", label, c.ID, c.Status.Label())
		}
	}
	prefix := filepath.Join(dir, fmt.Sprintf("%s-%s-page", compliance.StandardNIST800190, label))
	if out, err := exec.CommandContext(ctx, "pdftoppm", "-png", "-r", "60", pdf, prefix).CombinedOutput(); err != nil {
		e.t.Fatalf("pdftoppm: %v %s", err, out)
	}
	pages, _ := filepath.Glob(prefix + "*.png")
	if len(pages) == 0 {
		e.t.Fatal("pdftoppm rendered no page")
	}
	e.t.Logf("%s PDF: %d bytes, %d pages (%s)", label, len(text), len(pages), strings.Join(pages, ", "))
}

// checkHTML opens the HTML report in headless Chromium: every control ID
// is shown with its status, no console error; a screenshot is saved.
func (e *env) checkHTML(ctx context.Context, dir, label string, r *compliance.Report) {
	e.t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		e.t.Fatalf("%s missing (apt-get install chromium): %v", chromium, err)
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.html", compliance.StandardNIST800190, label))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(filepath.Join(e.dir, "chromium-profile")))
	defer cancel()
	bctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		e.t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	lctx, stop := context.WithCancel(bctx)
	defer stop()
	go func() {
		for m, err := range chromedp.Console(lctx) {
			if err != nil || lctx.Err() != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, m.Text)
				mu.Unlock()
			}
		}
	}()
	tctx, cancel3 := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel3()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate("file://"+file),
		chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		e.t.Fatalf("chromium: %v", err)
	}
	body, err := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS("body")))
	if err != nil {
		e.t.Fatal(err)
	}
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(80))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range r.Controls {
		if !strings.Contains(body, c.ID) {
			e.t.Errorf("HTML: control %s not shown", c.ID)
		}
	}
	shown := map[string]bool{}
	for _, c := range r.Controls {
		shown[c.Status.Label()] = true
	}
	for st := range shown {
		if !strings.Contains(body, st) {
			e.t.Errorf("HTML: no %q shown", st)
		}
	}
	// Printed as a person would (A4, the print stylesheet).
	printed, err := chromedp.Run(tctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPrintBackground()))
	if err != nil {
		e.t.Errorf("print: %v", err)
	}
	png := filepath.Join(dir, fmt.Sprintf("%s-%s-html.png", compliance.StandardNIST800190, label))
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if len(printed) > 0 {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s-html-printed.pdf", compliance.StandardNIST800190, label)), printed, 0o644)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		e.t.Errorf("HTML report: browser console: %v", problems)
	}
	e.t.Logf("HTML report in Chromium: %d characters of text, screenshot %s, printed %d bytes", len(body), png, len(printed))
}

func mustQty(s string) resource.Quantity { return resource.MustParse(s) }
