package testkube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/remotecommand"
)

// FieldManager is the server-side apply field manager of Apply.
const FieldManager = "mamori-testkube"

// Namespace creates a namespace for the test (name from the test's name
// plus a random suffix) and deletes it when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	name := dnsLabel("e2e-"+t.Name(), 50) + "-" + rand.String(5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		shared.mu.Lock()
		down := shared.down
		shared.mu.Unlock()
		if down {
			return // went with the cluster
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bg := metav1.DeletePropagationBackground
		if err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel lower-cases s and keeps it a valid DNS label of at most n characters.
func dnsLabel(s string, n int) string {
	s = notDNS.ReplaceAllString(strings.ToLower(s), "-")
	if len(s) > n {
		s = s[:n]
	}
	return strings.Trim(s, "-")
}

// Apply server-side-applies every object of a YAML or JSON manifest (one or
// more documents) and returns them as the apiserver stored them. Namespaced
// objects without a namespace go to namespace. An error names the document
// and object that failed (admission denials come back as errors).
func (c *Cluster) Apply(ctx context.Context, namespace string, manifest []byte) ([]*unstructured.Unstructured, error) {
	return c.apply(ctx, namespace, manifest, nil)
}

// ApplyDryRun is Apply with dryRun=All: the apiserver validates, defaults
// and admits (webhooks included) but stores nothing.
func (c *Cluster) ApplyDryRun(ctx context.Context, namespace string, manifest []byte) ([]*unstructured.Unstructured, error) {
	return c.apply(ctx, namespace, manifest, []string{metav1.DryRunAll})
}

func (c *Cluster) apply(ctx context.Context, namespace string, manifest []byte, dryRun []string) ([]*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: dryRun}
	objs, err := DecodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	var out []*unstructured.Unstructured
	for i, obj := range objs {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) { // a CRD applied just before
			mapper.Reset()
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			return out, fmt.Errorf("manifest document %d (%s %s): %w", i+1, gvk.Kind, obj.GetName(), err)
		}
		r := c.Dynamic.Resource(m.Resource)
		var applied *unstructured.Unstructured
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(namespace)
			}
			applied, err = r.Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
		} else {
			applied, err = r.Apply(ctx, obj.GetName(), obj, opts)
		}
		if err != nil {
			return out, fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		out = append(out, applied)
	}
	return out, nil
}

// Warnings collects the warnings the apiserver returns (admission webhook
// and Pod Security warnings, deprecations) on requests of a Recording copy.
type Warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *Warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// Take returns the warnings collected so far and forgets them.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// Recording returns a copy of the cluster whose clients (Client, Dynamic,
// Apply) record the apiserver's warnings in the returned Warnings.
func (c *Cluster) Recording() (*Cluster, *Warnings, error) {
	w := &Warnings{}
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("dynamic client: %w", err)
	}
	cp := *c
	cp.RESTConfig, cp.Client, cp.Dynamic = cfg, cs, dyn
	return &cp, w, nil
}

// DecodeManifest splits a YAML (---separated) or JSON manifest into
// objects; empty documents are skipped, and a document without kind,
// apiVersion or metadata.name is an error.
func DecodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("manifest document %d: no kind or apiVersion", i)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("manifest document %d (%s): no metadata.name", i, u.GetKind())
		}
		objs = append(objs, u)
	}
}

// WaitPod polls the pod until done says so, the context ends or done
// returns an error. A timeout error carries the pod's last status.
func (c *Cluster) WaitPod(ctx context.Context, ns, name string, done func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	var last *corev1.Pod
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			lastErr = err
			return false, nil // not created yet, or a transient error
		}
		last = p
		return done(p)
	})
	if err != nil {
		if last == nil {
			return nil, fmt.Errorf("pod %s/%s: %w (last error: %v)", ns, name, err, lastErr)
		}
		return last, fmt.Errorf("pod %s/%s: %w; last status: %s", ns, name, err, PodSummary(last))
	}
	return last, nil
}

// WaitPodPhase waits for the pod to reach phase; a pod that reaches Failed
// (or Succeeded when waiting for Running) is an error at once.
func (c *Cluster) WaitPodPhase(ctx context.Context, ns, name string, phase corev1.PodPhase) (*corev1.Pod, error) {
	return c.WaitPod(ctx, ns, name, func(p *corev1.Pod) (bool, error) {
		switch {
		case p.Status.Phase == phase:
			return true, nil
		case p.Status.Phase == corev1.PodFailed, p.Status.Phase == corev1.PodSucceeded && phase == corev1.PodRunning:
			return false, fmt.Errorf("pod is %s: %s", p.Status.Phase, PodSummary(p))
		}
		return false, nil
	})
}

// WaitPodReady waits for the pod's Ready condition.
func (c *Cluster) WaitPodReady(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return c.WaitPod(ctx, ns, name, func(p *corev1.Pod) (bool, error) {
		if p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("pod failed: %s", PodSummary(p))
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// PodSummary is a one-line account of a pod's state for error messages.
func PodSummary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s node=%s", p.Status.Phase, p.Spec.NodeName)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason=%s", p.Status.Reason)
	}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Message != "" {
			fmt.Fprintf(&b, " %s=%s(%s)", cond.Type, cond.Status, cond.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " %s:waiting(%s: %s)", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " %s:terminated(%s, exit %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		case cs.State.Running != nil:
			fmt.Fprintf(&b, " %s:running", cs.Name)
		}
	}
	return b.String()
}

// OnRealNode makes the pod run on the real node (kubelet + containerd):
// its name in nodeName and a toleration of RealNodeTaint. Images there are
// only the imported ones: use BusyboxImage, or ImportImage first, with
// imagePullPolicy Never or IfNotPresent.
func (c *Cluster) OnRealNode(spec *corev1.PodSpec) {
	spec.NodeName = c.RealNode
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: RealNodeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
}

// OnKwokNodes makes the scheduler place the pod on a kwok (fake) node.
// Untainted kwok nodes are where pods go by default anyway.
func OnKwokNodes(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[NodeLabel] = "kwok"
}

// KwokNodes lists the fake nodes.
func (c *Cluster) KwokNodes(ctx context.Context) ([]string, error) {
	l, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodeLabel + "=kwok"})
	if err != nil {
		return nil, fmt.Errorf("list kwok nodes: %w", err)
	}
	names := make([]string, 0, len(l.Items))
	for _, n := range l.Items {
		names = append(names, n.Name)
	}
	return names, nil
}

// Exec runs cmd in a container through the apiserver (the kubelet's exec
// endpoint, as kubectl exec) and returns its output. A non-zero exit is an
// error (remotecommand's exit error) with the output still returned.
func (c *Cluster) Exec(ctx context.Context, ns, pod, container string, cmd []string, stdin io.Reader) (stdout, stderr []byte, err error) {
	req := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(c.RESTConfig, "GET", req.URL().String())
	if err != nil {
		return nil, nil, fmt.Errorf("exec %s/%s: websocket executor: %w", ns, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(c.RESTConfig, "POST", req.URL())
	if err != nil {
		return nil, nil, fmt.Errorf("exec %s/%s: spdy executor: %w", ns, pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("exec %s/%s: %w", ns, pod, err)
	}
	var o, e bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &o, Stderr: &e})
	if err != nil {
		return o.Bytes(), e.Bytes(), fmt.Errorf("exec %v in %s/%s: %w", cmd, ns, pod, err)
	}
	return o.Bytes(), e.Bytes(), nil
}

// ImportImage imports a docker-archive or OCI-layout tar into the real
// node's containerd (namespace k8s.io, where the kubelet's images live)
// and adds a repo@digest reference beside each imported name, as a pull
// would, so container statuses carry the manifest digest as imageID.
// It returns the imported names.
func (c *Cluster) ImportImage(ctx context.Context, tarPath string) ([]string, error) {
	if c.ContainerdSocket == "" {
		return nil, errors.New("import image: this cluster's containerd socket is unknown (no status file)")
	}
	out, err := c.ctr(ctx, "images", "import", tarPath)
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", tarPath, err)
	}
	var names []string
	for _, m := range importLine.FindAllStringSubmatch(out, -1) {
		name, digest := m[1], m[2]
		names = append(names, name)
		if ref, ok := DigestRef(name, digest); ok {
			if _, err := c.ctr(ctx, "images", "tag", "--force", name, ref); err != nil {
				return names, fmt.Errorf("import image %s: add %s: %w", tarPath, ref, err)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("import image %s: no image in ctr's output: %q", tarPath, out)
	}
	return names, nil
}

// ctr's import output: "unpacking NAME (sha256:HEX)...done".
var importLine = regexp.MustCompile(`unpacking (\S+) \((sha256:[0-9a-f]{64})\)`)

// DigestRef turns "repo:tag" and a manifest digest into "repo@digest";
// false when name already is a digest reference.
func DigestRef(name, digest string) (string, bool) {
	if strings.Contains(name, "@") {
		return "", false
	}
	repo := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo = name[:i]
	}
	return repo + "@" + digest, true
}

func (c *Cluster) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.ContainerdSocket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Kubectl runs the cluster's kubectl with its admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	bin := "kubectl"
	if c.BinDir != "" {
		bin = filepath.Join(c.BinDir, "kubectl")
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// Helm is the path of the helm binary built with the cluster (helm v3).
func (c *Cluster) Helm() (string, error) {
	p := filepath.Join(c.BinDir, "helm")
	if c.BinDir == "" {
		return "", errors.New("helm: the cluster's bin dir is unknown (no status file)")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("helm: %w (scripts/cluster.sh build builds it)", err)
	}
	return p, nil
}

// ServerToken reads the mamori server admin token.
func (c *Cluster) ServerToken() (string, error) {
	if c.TokenFile == "" {
		return "", errors.New("mamori server token: unknown (no status file)")
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("mamori server token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
