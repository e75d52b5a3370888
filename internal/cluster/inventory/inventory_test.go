package inventory

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"mamori/internal/api"
)

type recorder struct {
	mu      sync.Mutex
	batches []api.InventoryBatch
	fail    bool
}

func (r *recorder) send(_ context.Context, b api.InventoryBatch) (api.InventoryResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return api.InventoryResult{}, context.DeadlineExceeded
	}
	r.batches = append(r.batches, b)
	return api.InventoryResult{}, nil
}

func (r *recorder) all() []api.InventoryBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]api.InventoryBatch(nil), r.batches...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestWatcher: a full resync at start (begin and end, every object, pods
// with their top controller and running digest), then each change as it
// happens, deletions included, and a failed send retried.
func TestWatcher(t *testing.T) {
	digest := "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "d1"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8", Namespace: "shop", UID: "r1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr.To(true)}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8-x", Namespace: "shop", UID: "p1", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "web:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ImageID: "docker.io/library/web@" + digest,
			ContainerID: "containerd://c1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "prod"}}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"x"}}}}}
	kube := fake.NewClientset(dep, rs, pod, ns, node)
	rec := &recorder{}
	gen := int64(0)
	w := New(kube, rec.send, Options{Flush: 50 * time.Millisecond, Generation: func() int64 { gen++; return gen }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go w.Run(ctx)
	waitUntil(t, "the first resync", func() bool {
		bs := rec.all()
		return len(bs) > 0 && bs[len(bs)-1].End
	})
	bs := rec.all()
	if !bs[0].Begin || bs[0].Generation != 1 {
		t.Fatalf("first batch %+v", bs[0])
	}
	objs := map[string]api.InventoryObject{}
	for _, b := range bs {
		for _, o := range b.Objects {
			objs[o.Kind+"/"+o.Name] = o
		}
	}
	p, ok := objs["Pod/web-5d8-x"]
	if !ok || p.Owner == nil || p.Owner.Kind != "Deployment" || p.Owner.Name != "web" || p.Node != "node-1" || len(p.Containers) != 1 ||
		p.Containers[0].ImageDigest != digest || !p.Containers[0].Running || len(p.Object) == 0 {
		t.Fatalf("pod %+v", p)
	}
	if string(objs["Namespace/shop"].Object) == "" || objs["Namespace/shop"].Labels["env"] != "prod" || len(objs) != 5 {
		t.Fatalf("objects %v", objs)
	}
	if n := objs["Node/node-1"]; string(n.Object) == "" || contains(string(n.Object), `"images"`) || contains(string(p.Object), "managedFields") {
		t.Fatalf("node or pod not trimmed: %s / %s", n.Object, p.Object)
	}
	// A deletion and a creation, sent as they happen under the resync's generation.
	ctx2 := context.Background()
	if err := kube.CoreV1().Pods("shop").Delete(ctx2, "web-5d8-x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	rec.fail = true // the server is away for a moment: kept and sent again
	rec.mu.Unlock()
	if _, err := kube.CoreV1().Pods("shop").Create(ctx2, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	waitUntil(t, "the deletion and the new pod", func() bool {
		del, add := false, false
		for _, b := range rec.all() {
			for _, d := range b.Deleted {
				del = del || (d.Kind == "Pod" && d.Name == "web-5d8-x" && b.Generation == 1)
			}
			for _, o := range b.Objects {
				add = add || (o.Name == "new" && b.Generation == 1)
			}
		}
		return del && add
	})
	if w.Stats.Failures.Load() == 0 {
		t.Error("no failed send counted")
	}
	// A resync: a new generation, begin to end.
	if err := w.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	last := rec.all()[len(rec.all())-1]
	if !last.End || last.Generation != 2 {
		t.Fatalf("second resync ended with %+v", last)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestDigest(t *testing.T) {
	d := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"docker.io/library/nginx@" + d: d,
		"docker-pullable://nginx@" + d: d,
		d:                              "",
		"":                             "",
		"x@sha256:ZZ":                  "",
		"x@sha256:0123456789abcdef0123456789abcdeF": "",
	} {
		if got := Digest(in); got != want {
			t.Errorf("Digest(%q) = %q, want %q", in, got, want)
		}
	}
}
