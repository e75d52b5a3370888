package cluster_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"mamori/internal/api"
	"mamori/internal/cluster/executor"
	"mamori/internal/cluster/inventory"
)

// deployment runs one replica of pod's spec on the real node.
func deployment(name string, pod *corev1.Pod) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	lbl := map[string]string{"app": name}
	for k, v := range pod.Labels {
		lbl[k] = v
	}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: pod.Spec}}}
}

// runningPod returns the ready pod of a deployment.
func (e *e2e) runningPod(t *testing.T, ctx context.Context, ns, app string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, ctx, "a ready pod of "+app, func() (bool, error) {
		pods, err := e.c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Ready {
				pod = p
				return true, nil
			}
		}
		return false, nil
	})
	return pod
}

// compliance: running compliant pods become violations on a policy change
// (isolate: a NetworkPolicy selecting exactly the pod) and on a
// vulnerability database change (terminate: the pods deleted, their
// Deployments making new ones); the pods and their images are in the
// runtime vulnerability view.
func (e *e2e) compliance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := e.c.Namespace(t)
	ref := e.images["IMAGE_CLEAN"]
	for _, d := range []*appsv1.Deployment{
		deployment("web", realPod(e.c, "", ref, map[string]string{"e2e": "compliance"})),
		deployment("api", realPod(e.c, "", ref, nil)),
	} {
		if _, err := e.c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web, apiPod := e.runningPod(t, ctx, ns, "web"), e.runningPod(t, ctx, ns, "api")
	digest := inventory.Digest(web.Status.ContainerStatuses[0].ImageID)
	want, err := e.built["IMAGE_CLEAN"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if digest != want.String() {
		t.Fatalf("running digest %q (imageID %q), want the image's %s", digest, web.Status.ContainerStatuses[0].ImageID, want)
	}

	// The inventory has the pods with the digest that runs.
	waitFor(t, ctx, "the pods in the server's inventory", func() (bool, error) {
		objs, err := e.admin.ClusterObjects(ctx, e.clusterID, url.Values{"kind": {"Pod"}, "namespace": {ns}})
		if err != nil {
			return false, err
		}
		n := 0
		for _, o := range objs.Objects {
			if len(o.Containers) == 1 && o.Containers[0].ImageDigest == digest && o.Owner != nil && o.Owner.Kind == "Deployment" {
				n++
			}
		}
		return n == 2, nil
	})

	// The runtime vulnerability view: the running image's vulnerabilities
	// (openssl, high), not those of images that do not run (curl, blocked
	// at admission), with the workloads where they run.
	view := func(id string) (bool, []api.AffectedWorkload) {
		t.Helper()
		p, err := e.admin.ListVulnerabilities(ctx, url.Values{"running": {"true"}, "cluster": {e.status["MAMORI_CLUSTER_NAME"]}, "q": {id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Vulnerabilities) == 0 {
			return false, nil
		}
		d, err := e.admin.GetVulnerability(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var ws []api.AffectedWorkload
		for _, w := range d.Workloads {
			if w.Namespace == ns {
				ws = append(ws, w)
			}
		}
		return true, ws
	}
	if found, ws := view("DEBIAN-CVE-2023-5363"); !found || len(ws) != 2 {
		t.Fatalf("runtime view: DEBIAN-CVE-2023-5363 found %v, workloads %+v", found, ws)
	} else {
		for _, w := range ws {
			if w.Cluster != e.status["MAMORI_CLUSTER_NAME"] || w.Kind != "Deployment" || (w.Name != "web" && w.Name != "api") ||
				w.Container != "app" || w.LastDetected.IsZero() {
				t.Errorf("runtime view workload %+v", w)
			}
		}
	}
	if found, _ := view("DEBIAN-CVE-2023-38545"); found {
		t.Error("runtime view lists the curl vulnerability of an image that does not run")
	}
	t.Log("runtime vulnerability view: DEBIAN-CVE-2023-5363 in Deployments web and api")

	// 1. A policy change: version 2 isolates the suite's pods running
	// images not pinned by digest (web; api lacks the label).
	e.applyPolicy(t, ctx, "e2e-v2.yaml", "v2")
	var np *networkingv1.NetworkPolicy
	waitFor(t, ctx, "web isolated", func() (bool, error) {
		x, err := e.c.Client.NetworkingV1().NetworkPolicies(ns).Get(ctx, executor.PolicyName(web.Name, string(web.UID)), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		np = x
		return err == nil, err
	})
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var selected []string
	for _, p := range pods.Items {
		if sel.Matches(labels.Set(p.Labels)) {
			selected = append(selected, p.Name)
		}
	}
	if !slices.Equal(selected, []string{web.Name}) || len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 ||
		!slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) ||
		len(np.OwnerReferences) != 1 || np.OwnerReferences[0].UID != web.UID {
		t.Fatalf("quarantine NetworkPolicy %s selects %v (want exactly %s), spec %+v, owners %+v", np.Name, selected, web.Name, np.Spec, np.OwnerReferences)
	}
	t.Logf("isolate: NetworkPolicy %s/%s selects exactly pod %s, denies all ingress and egress", ns, np.Name, web.Name)
	e.expectEvents(t, ctx, ns, "compliance", "pinned-images", "isolate", 1)

	// 2. A vulnerability database change: version 2 adds a critical zlib
	// vulnerability (no fix) that both running pods have: terminated.
	e.importDB(t, ctx, "v2")
	for _, p := range []*corev1.Pod{web, apiPod} {
		waitFor(t, ctx, "pod "+p.Name+" terminated", func() (bool, error) {
			x, err := e.c.Client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return err == nil && x.UID == p.UID && x.DeletionTimestamp != nil, err
		})
	}
	t.Logf("terminate: pods %s and %s deleted", web.Name, apiPod.Name)
	e.expectEvents(t, ctx, ns, "compliance", "critical-running", "terminate", 2)
	// Their Deployments make new pods.
	if n := e.runningPod(t, ctx, ns, "api"); n.UID == apiPod.UID {
		t.Fatal("no new api pod")
	}
	if found, ws := view("DEBIAN-CVE-2023-45853"); !found {
		t.Errorf("runtime view after the database change: DEBIAN-CVE-2023-45853 not listed (workloads %+v)", ws)
	}
	ms, err := e.admin.ListMitigations(ctx, url.Values{"cluster": {e.status["MAMORI_CLUSTER_NAME"]}, "limit": {"100"}})
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]int{}
	for _, m := range ms {
		if m.Namespace == ns && m.State == api.MitigationDone {
			done[string(m.Action)]++
		}
	}
	if done["isolate"] < 1 || done["terminate"] < 2 {
		t.Errorf("mitigations done in %s: %v", ns, done)
	}
	// Back to version 1 of the database and the policy for what follows:
	// the zlib violations end with the re-match.
	if err := e.c.Client.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.importDB(t, ctx, "v1")
	e.applyPolicy(t, ctx, "e2e.yaml", "v1")
}

// expectEvents waits for at least n events of a source, rule and action in
// ns from the server (continuous compliance) and as many from the
// executor (what was done).
func (e *e2e) expectEvents(t *testing.T, ctx context.Context, ns, source, rule, action string, n int) {
	t.Helper()
	waitFor(t, ctx, source+" events of rule "+rule, func() (bool, error) {
		p, err := e.admin.ListEvents(ctx, url.Values{api.EventParamSource: {source}, api.EventParamNamespace: {ns},
			api.EventParamAction: {action}, api.EventParamLimit: {"100"}})
		if err != nil {
			return false, err
		}
		server, executed := 0, 0
		for _, ev := range p.Events {
			switch {
			case ev.Module == "server" && ev.Rule.ID == rule && ev.Workload != nil && ev.Workload.Kind == "Deployment":
				server++
			case ev.Module == "executor" && ev.Rule.ID == rule && ev.ActionError == "" && strings.HasPrefix(ev.Message, "mamori: "+action):
				executed++
			}
		}
		return server >= n && executed >= n, nil
	})
}
