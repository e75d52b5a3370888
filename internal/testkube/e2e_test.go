package testkube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

var digestRef = regexp.MustCompile(`^[a-z0-9./:-]+@sha256:[0-9a-f]{64}$`)

// TestE2E runs against the real local cluster: a pod of the busybox image
// on the real node (image digest in its status, logs, exec), an image
// imported by the harness, a deployment on the kwok nodes, mamori server,
// and, when this binary started the cluster, down leaving nothing behind.
func TestE2E(t *testing.T) {
	c := Start(t)
	t.Run("cluster", func(t *testing.T) { testCluster(t, c) })
	t.Run("down leaves nothing", func(t *testing.T) {
		if !c.Owned() {
			t.Skip("the cluster was already up (not started by this test binary): not taking it down")
		}
		// the check sees a live cluster's processes, mounts, cgroups and ports...
		live := strings.Join(Leftovers(c.Dir, c.PortBase, nil), "\n")
		for _, want := range []string{"run dir ", "process ", "mount ", "cgroup ", fmt.Sprintf("listener on 127.0.0.1:%d", c.PortBase)} {
			if !strings.Contains(live, want) {
				t.Errorf("Leftovers of the running cluster lists no %q:\n%s", want, live)
			}
		}
		// ...and none after down (Down runs the same check, sysctls included)
		t0 := time.Now()
		if err := c.Down(); err != nil {
			t.Fatal(err)
		}
		t.Logf("down in %s", time.Since(t0).Round(10*time.Millisecond))
	})
}

// testCluster: the parts that need the cluster up (their namespace is
// deleted before down).
func testCluster(t *testing.T, c *Cluster) {
	ns := c.Namespace(t)
	// each part has its own deadline: one stuck part does not starve the rest
	part := func(t *testing.T, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("real node pod", func(t *testing.T) {
		ctx := part(t, 3*time.Minute)
		t0 := time.Now()
		want, err := OCITarManifestDigest(filepath.Join(c.ImageDir, "busybox.tar"))
		if err != nil {
			t.Fatal(err)
		}
		pod := busyboxPod("bb", BusyboxImage, "echo started; exec sleep 3600")
		c.OnRealNode(&pod.Spec)
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := c.WaitPodReady(ctx, ns, "bb")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pod ready on %s in %s", p.Spec.NodeName, time.Since(t0).Round(10*time.Millisecond))
		cs := p.Status.ContainerStatuses[0]
		if got := "mamori.local/busybox@" + want; cs.ImageID != got {
			t.Errorf("imageID = %q, want %q (the manifest digest of busybox.tar)", cs.ImageID, got)
		}
		if !strings.HasPrefix(cs.ContainerID, "containerd://") {
			t.Errorf("containerID = %q", cs.ContainerID)
		}
		if !strings.HasPrefix(p.Status.PodIP, "10.245.") {
			t.Errorf("pod IP %q not from the node's pod range 10.245.0.0/16", p.Status.PodIP)
		}
		// the pod really runs under the kubelet's cgroup root
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", CgroupRoot(c.Dir), "kubepods", "besteffort", "pod"+string(p.UID))); err != nil && c.Dir != "" {
			t.Errorf("pod cgroup: %v", err)
		}
		logs, err := c.Client.CoreV1().Pods(ns).GetLogs("bb", &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil || strings.TrimSpace(string(logs)) != "started" {
			t.Errorf("logs = %q, %v", logs, err)
		}
		out, stderr, err := c.Exec(ctx, ns, "bb", "c", []string{"sh", "-c", "echo hello; id -u; ls /bin/busybox"}, nil)
		if err != nil || string(out) != "hello\n0\n/bin/busybox\n" {
			t.Errorf("exec: %q %q %v", out, stderr, err)
		}
		if _, _, err := c.Exec(ctx, ns, "bb", "c", []string{"sh", "-c", "exit 3"}, nil); err == nil || !strings.Contains(err.Error(), "exit code 3") {
			t.Errorf("exec exit 3: err = %v", err)
		}
	})

	t.Run("imported image", func(t *testing.T) {
		ctx := part(t, 3*time.Minute)
		// the busybox layer with a config of its own: a new image digest
		base, err := ReadOCITar(filepath.Join(c.ImageDir, "busybox.tar"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := base.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		cfg.Config.Env = append(cfg.Config.Env, "MARKER=imported-"+ns)
		img, err := mutate.ConfigFile(base, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := c.ImportV1Image(ctx, img, "mamori.local/e2e-imported:"+ns)
		if err != nil {
			t.Fatal(err)
		}
		pod := busyboxPod("imported", "mamori.local/e2e-imported:"+ns, "exec sleep 3600")
		c.OnRealNode(&pod.Spec)
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := c.WaitPodReady(ctx, ns, "imported")
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Status.ContainerStatuses[0].ImageID; got != ref || !digestRef.MatchString(got) {
			t.Errorf("imageID = %q, want %q", got, ref)
		}
		out, _, err := c.Exec(ctx, ns, "imported", "c", []string{"sh", "-c", "echo $MARKER"}, nil)
		if err != nil || strings.TrimSpace(string(out)) != "imported-"+ns {
			t.Errorf("exec: %q, %v", out, err)
		}
	})

	t.Run("kwok nodes", func(t *testing.T) {
		ctx := part(t, 2*time.Minute)
		t0 := time.Now()
		kw, err := c.KwokNodes(ctx)
		if err != nil || len(kw) < 2 {
			t.Fatalf("kwok nodes %v, %v", kw, err)
		}
		const n = 20
		labels := map[string]string{"app": "scale"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "scale"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](n),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					// no node selector: the real node's taint sends them to kwok nodes
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/never-pulled:1"}}},
				},
			},
		}
		if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pods *corev1.PodList
		for {
			pods, err = c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=scale"})
			if err != nil {
				t.Fatal(err)
			}
			running := 0
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
					running++
				}
			}
			if running == n {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d kwok pods running", running, n)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%d pods running on kwok nodes in %s", n, time.Since(t0).Round(10*time.Millisecond))
		perNode := map[string]int{}
		for _, p := range pods.Items {
			perNode[p.Spec.NodeName]++
		}
		for node := range perNode {
			if !strings.HasPrefix(node, "kwok-node-") {
				t.Errorf("a pod of the deployment landed on %q", node)
			}
		}
		if len(perNode) < 2 {
			t.Errorf("pods not spread over the kwok nodes: %v", perNode)
		}
		dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "scale", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dep.Status.ReadyReplicas != n {
			// the deployment controller's status may trail the pods by a moment
			time.Sleep(2 * time.Second)
			if dep, err = c.Client.AppsV1().Deployments(ns).Get(ctx, "scale", metav1.GetOptions{}); err != nil || dep.Status.ReadyReplicas != n {
				t.Errorf("deployment ready replicas %d, want %d (%v)", dep.Status.ReadyReplicas, n, err)
			}
		}
	})

	t.Run("apply manifest", func(t *testing.T) {
		ctx := part(t, time.Minute)
		objs, err := c.Apply(ctx, ns, []byte(`
apiVersion: v1
kind: ConfigMap
metadata: {name: applied}
data: {k: v}
---
apiVersion: v1
kind: Pod
metadata: {name: applied}
spec:
  nodeSelector: {mamori.local/node: kwok}
  containers: [{name: c, image: registry.example/x:1}]
`))
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 2 || objs[0].GetNamespace() != ns || objs[1].GetUID() == "" {
			t.Fatalf("applied %v", objs)
		}
		if _, err := c.WaitPodPhase(ctx, ns, "applied", corev1.PodRunning); err != nil {
			t.Fatal(err)
		}
		// dry run: admitted and defaulted, not stored
		dry, err := c.ApplyDryRun(ctx, ns, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\n"))
		if err != nil || len(dry) != 1 {
			t.Fatalf("dry run: %v %v", dry, err)
		}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "dry", metav1.GetOptions{}); err == nil {
			t.Error("dry-run ConfigMap was stored")
		}
		// warnings: Pod Security admission in warn mode on the namespace
		rc, warns, err := c.Recording()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Apply(ctx, "", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+", labels: {pod-security.kubernetes.io/warn: baseline}}\n")); err != nil {
			t.Fatal(err)
		}
		warns.Take()
		if _, err := rc.ApplyDryRun(ctx, ns, []byte(`
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  nodeSelector: {mamori.local/node: kwok}
  containers: [{name: c, image: registry.example/x:1, securityContext: {privileged: true}}]
`)); err != nil && !c.deniedByMamori(err) {
			// with mamori cluster running (cluster.sh up starts it with the
			// default policy), its webhook denies the privileged pod after
			// Pod Security admission warned: the warning still comes back
			t.Fatal(err)
		}
		if w := strings.Join(warns.Take(), "\n"); !strings.Contains(w, "would violate PodSecurity") || !strings.Contains(w, "privileged") {
			t.Errorf("warnings %q, want the PodSecurity baseline warning", w)
		}
		// a denial comes back as an error naming the object
		_, err = c.Apply(ctx, ns, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n"))
		if err == nil || !strings.Contains(err.Error(), "Bad_Name") {
			t.Errorf("invalid pod: err = %v", err)
		}
	})

	t.Run("mamori server", func(t *testing.T) {
		ctx := part(t, 30*time.Second)
		if c.ServerURL == "" {
			t.Skip("no mamori server in this cluster's status")
		}
		tok, err := c.ServerToken()
		if err != nil {
			t.Fatal(err)
		}
		pem, err := os.ReadFile(c.ServerCA)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatal("no certificate in", c.ServerCA)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		for _, tc := range []struct {
			token string
			code  int
		}{{tok, 200}, {"wrong-token-of-forty-characters-0000000000", 401}, {"", 401}} {
			req, _ := http.NewRequestWithContext(ctx, "GET", c.ServerURL+"/api/v1/whoami", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var who struct{ Role string }
			_ = json.NewDecoder(resp.Body).Decode(&who)
			resp.Body.Close()
			if resp.StatusCode != tc.code || (tc.code == 200 && who.Role != "admin") {
				t.Errorf("whoami with token %.6q...: %d %+v, want %d", tc.token, resp.StatusCode, who, tc.code)
			}
		}
	})
}

func busyboxPod(name, image, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers: []corev1.Container{{
				Name: "c", Image: image, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", script},
			}},
		},
	}
}

// deniedByMamori reports whether err is mamori cluster's webhook denying
// a request: expected of a privileged pod when the component runs.
func (c *Cluster) deniedByMamori(err error) bool {
	return c.Component == "running" && strings.Contains(err.Error(), `admission webhook "workloads.`) &&
		strings.Contains(err.Error(), "denied the request: mamori:")
}
