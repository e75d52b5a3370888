// Command admissionload drives an admission webhook at a fixed rate and
// reports its latency (bench/admission.sh):
//
//   - webhook: AdmissionReview POSTs straight at a webhook, its URL and CA
//     read from a ValidatingWebhookConfiguration;
//   - apiserver: server-side dry-run pod creates through the API server
//     (which calls every webhook that matches).
//
// The load is open-loop: request i is sent at start + i/rate whatever the
// answers do (up to -max-inflight at once); latency is measured from the
// send to the answer. It prints one JSON line of results.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

type result struct {
	Mode     string  `json:"mode"`
	Target   string  `json:"target"`
	Rate     float64 `json:"rate"`
	Seconds  float64 `json:"seconds"`
	Sent     int     `json:"sent"`
	OK       int     `json:"ok"`
	Errors   int     `json:"errors"`
	Allowed  int     `json:"allowed"`
	Denied   int     `json:"denied"`
	Achieved float64 `json:"achievedRate"`
	P50ms    float64 `json:"p50ms"`
	P90ms    float64 `json:"p90ms"`
	P95ms    float64 `json:"p95ms"`
	P99ms    float64 `json:"p99ms"`
	P999ms   float64 `json:"p999ms"`
	// SchedP99ms is the p99 measured from when each request was due rather
	// than from when it left: it counts the wait of requests the generator
	// sent late (coordinated omission), so it is >= P99ms.
	SchedP99ms float64 `json:"schedP99ms"`
	// Decide* are the webhook's own decision times (its Server-Timing
	// header): the latency without the network and the machine's queueing.
	DecideP50ms float64 `json:"decideP50ms,omitempty"`
	DecideP99ms float64 `json:"decideP99ms,omitempty"`
	MaxMs       float64 `json:"maxMs"`
	FirstError  string  `json:"firstError,omitempty"`
	LateSends   int     `json:"lateSends"`
	DistinctPod bool    `json:"distinctPods"`
	// LoadCPUs is the generator's own CPU time (user+system seconds) over
	// the measured run: it shares the machine with what it measures.
	LoadCPUs float64 `json:"loadCPUSeconds"`
}

func main() {
	var (
		mode        = flag.String("mode", "webhook", "webhook (AdmissionReview POSTs) or apiserver (dry-run creates)")
		kubeconfig  = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
		webhookName = flag.String("webhook", "mamori-cluster", "ValidatingWebhookConfiguration to read the URL and CA from (mode webhook): NAME, or NAME/WEBHOOK for one of its webhooks (default the first)")
		namespace   = flag.String("namespace", "bench", "namespace of the pods")
		image       = flag.String("image", "registry.example/app:1", "image of the pods")
		rate        = flag.Float64("rate", 500, "requests per second")
		duration    = flag.Duration("duration", 60*time.Second, "how long to send")
		inflight    = flag.Int("max-inflight", 256, "requests in flight at most")
		distinct    = flag.Bool("distinct", false, "every pod a different template (no decision cache hit)")
		warmup      = flag.Duration("warmup", 3*time.Second, "requests sent first and not measured")
	)
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	var send func(ctx context.Context, i int) (allowed bool, decide time.Duration, err error)
	target := ""
	switch *mode {
	case "webhook":
		url, hc, err := webhookTarget(cfg, *webhookName)
		if err != nil {
			fail(err)
		}
		target = url
		send = func(ctx context.Context, i int) (bool, time.Duration, error) {
			return postReview(ctx, hc, url, *namespace, *image, i, *distinct)
		}
	case "apiserver":
		cfg.QPS, cfg.Burst = float32(*rate*2), int(*rate*2)
		cfg.WarningHandler = rest.NoWarnings{}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			fail(err)
		}
		target = cfg.Host
		send = func(ctx context.Context, i int) (bool, time.Duration, error) {
			_, err := cs.CoreV1().Pods(*namespace).Create(ctx, pod(*namespace, *image, i, *distinct), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil && isDenial(err) {
				return false, 0, nil
			}
			return err == nil, 0, err
		}
	default:
		fail(fmt.Errorf("mode %q: want webhook or apiserver", *mode))
	}
	// Warm-up: connections, caches.
	run(send, *rate, *warmup, *inflight, 1_000_000)
	cpu0 := cpuSeconds()
	r := run(send, *rate, *duration, *inflight, 0)
	r.LoadCPUs = cpuSeconds() - cpu0
	r.Mode, r.Target, r.DistinctPod = *mode, target, *distinct
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func isDenial(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("denied the request"))
}

// run sends at rate for d and measures.
func run(send func(context.Context, int) (bool, time.Duration, error), rate float64, d time.Duration, inflight, offset int) result {
	n := int(rate * d.Seconds())
	lat := make([]time.Duration, n)
	sched := make([]time.Duration, n)
	dec := make([]time.Duration, n)
	okv := make([]bool, n)
	var allowed, denied, errs, late atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		} else if w < -10*time.Millisecond {
			late.Add(1)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t0 := time.Now()
			a, decide, err := send(ctx, offset+i)
			lat[i], sched[i], dec[i] = time.Since(t0), time.Since(at), decide
			switch {
			case err != nil:
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			case a:
				allowed.Add(1)
				okv[i] = true
			default:
				denied.Add(1)
				okv[i] = true
			}
		}(i, at)
	}
	wg.Wait()
	el := time.Since(start)
	var ok, okSched, decided []time.Duration
	for i, d := range lat {
		if okv[i] {
			ok = append(ok, d)
			okSched = append(okSched, sched[i])
			if dec[i] > 0 {
				decided = append(decided, dec[i])
			}
		}
	}
	sort.Slice(ok, func(a, b int) bool { return ok[a] < ok[b] })
	sort.Slice(decided, func(a, b int) bool { return decided[a] < decided[b] })
	sort.Slice(okSched, func(a, b int) bool { return okSched[a] < okSched[b] })
	quant := func(ds []time.Duration, p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	q := func(p float64) float64 { return quant(ok, p) }
	r := result{Rate: rate, Seconds: el.Seconds(), Sent: n, OK: len(ok), Errors: int(errs.Load()), Allowed: int(allowed.Load()),
		Denied: int(denied.Load()), Achieved: float64(len(ok)) / el.Seconds(), P50ms: q(0.50), P90ms: q(0.90), P95ms: q(0.95), P99ms: q(0.99), SchedP99ms: quant(okSched, 0.99),
		P999ms: q(0.999), LateSends: int(late.Load()), DecideP50ms: quant(decided, 0.50), DecideP99ms: quant(decided, 0.99)}
	if len(ok) > 0 {
		r.MaxMs = float64(ok[len(ok)-1].Microseconds()) / 1000
	}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	return r
}

// pod is a restricted-level pod of two containers; with distinct, its
// template differs per request (a label), so no decision is cached.
func pod(ns, image string, i int, distinct bool) *corev1.Pod {
	labels := map[string]string{"app": "bench", "tier": "web"}
	if distinct {
		labels["bench-seq"] = fmt.Sprint(i)
	}
	sc := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	res := corev1.ResourceRequirements{}
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i), Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](10001),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{
				{Name: "app", Image: image, SecurityContext: sc, Resources: res, Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
				{Name: "sidecar", Image: image, SecurityContext: sc, Resources: res},
			}}}
}

func postReview(ctx context.Context, hc *http.Client, url, ns, image string, i int, distinct bool) (bool, time.Duration, error) {
	raw, err := json.Marshal(pod(ns, image, i, distinct))
	if err != nil {
		return false, 0, err
	}
	// The review the API server sends for a dry-run create: it always sets
	// the request kind and resource, the user and the options (Kyverno
	// v1.15.2 panics on a review without RequestKind).
	opts, err := json.Marshal(&metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"},
		DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, 0, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	rev := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID(fmt.Sprintf("bench-%d", i)), Kind: gvk, Resource: gvr,
			RequestKind: &gvk, RequestResource: &gvr, Namespace: ns, Name: fmt.Sprintf("bench-%d", i),
			UserInfo:  authenticationv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"}},
			Operation: admissionv1.Create, DryRun: ptr.To(true), Object: runtime.RawExtension{Raw: raw}, Options: runtime.RawExtension{Raw: opts}}}
	body, err := json.Marshal(&rev)
	if err != nil {
		return false, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url+"?timeout=10s", bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, 0, err
	}
	if resp.StatusCode != 200 {
		return false, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil || out.Response == nil {
		return false, 0, fmt.Errorf("answer: %v", err)
	}
	var ms float64
	_, _ = fmt.Sscanf(resp.Header.Get("Server-Timing"), "decide;dur=%g", &ms)
	return out.Response.Allowed, time.Duration(ms * float64(time.Millisecond)), nil
}

func webhookTarget(cfg *rest.Config, name string) (string, *http.Client, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	cfgName, hook, _ := strings.Cut(name, "/")
	wc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), cfgName, metav1.GetOptions{})
	if err != nil {
		return "", nil, err
	}
	if len(wc.Webhooks) == 0 {
		return "", nil, fmt.Errorf("webhook configuration %s has no webhooks", cfgName)
	}
	cc := wc.Webhooks[0].ClientConfig
	if hook != "" {
		found := false
		for _, w := range wc.Webhooks {
			if w.Name == hook {
				cc, found = w.ClientConfig, true
				break
			}
		}
		if !found {
			return "", nil, fmt.Errorf("webhook configuration %s has no webhook %s", cfgName, hook)
		}
	}
	if cc.URL == nil {
		return "", nil, fmt.Errorf("webhook %s has no URL (a Service webhook: run from inside the cluster)", name)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cc.CABundle) {
		return "", nil, fmt.Errorf("webhook %s: no CA bundle", name)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	return *cc.URL, &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "admissionload:", err)
	os.Exit(1)
}
