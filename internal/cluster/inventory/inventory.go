// Package inventory watches a cluster with client-go informers — nodes,
// namespaces, every pod controller and pods — and keeps the server's copy
// current: every change is sent as it happens (the object's state at
// sending time, so a burst of changes to one object is one upsert), and a
// full resync runs at start and periodically, after which the server drops
// whatever it holds from older resyncs. A watch that restarts (the API
// server's watch cache expired, a network cut) relists and reports the
// differences, deletions seen only by the relist included; a component
// that restarts begins with a full resync of a new generation. Its caches
// also serve admission (namespace and pod labels).
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"mamori/internal/api"
	"mamori/internal/model"
)

// Defaults, each with its reason.
const (
	// DefaultResync: a full resync every ten minutes bounds how long the
	// server's copy can be wrong after something no watch reported.
	DefaultResync = 10 * time.Minute
	// DefaultFlush: changes go out within this of happening, batched.
	DefaultFlush = time.Second
	// maxBatchBytes keeps a batch well under the server's cap
	// (api.MaxInventoryBatchBytes) before compression.
	maxBatchBytes = 8 << 20
	// viewTimeout bounds a direct read when a label lookup misses the caches.
	viewTimeout = 2 * time.Second
)

// Sender is the server call (client.SendInventory).
type Sender func(ctx context.Context, b api.InventoryBatch) (api.InventoryResult, error)

// Options configure a Watcher.
type Options struct {
	// Resync and Flush: zero takes the defaults.
	Resync, Flush time.Duration
	Logger        *slog.Logger
	// Generation returns a new resync generation (default: the clock in
	// nanoseconds, so a restarted component's generations are newer).
	Generation func() int64
}

// kinds are the watched kinds in resync order (namespaces and owners
// before what they hold).
var kinds = []string{"Node", "Namespace", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "CronJob", "Job",
	"ReplicationController", "Pod"}

// key names one object in the dirty set.
type key struct{ kind, namespace, name string }

// Stats count what the watcher sent.
type Stats struct {
	Upserts, Deletes, Batches, Resyncs, Failures atomic.Int64
}

// Watcher is the inventory watcher.
type Watcher struct {
	kube    kubernetes.Interface
	send    Sender
	o       Options
	log     *slog.Logger
	factory informers.SharedInformerFactory
	infs    map[string]cache.SharedIndexInformer
	Stats   Stats

	mu     sync.Mutex
	dirty  map[key]bool
	wake   chan struct{}
	gen    int64
	synced atomic.Bool
}

// New returns a watcher of the cluster kube reaches.
func New(kube kubernetes.Interface, send Sender, o Options) *Watcher {
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Flush <= 0 {
		o.Flush = DefaultFlush
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Generation == nil {
		o.Generation = func() int64 { return time.Now().UnixNano() }
	}
	w := &Watcher{kube: kube, send: send, o: o, log: o.Logger, dirty: map[key]bool{}, wake: make(chan struct{}, 1),
		infs: map[string]cache.SharedIndexInformer{}}
	// No informer resync: the full resync reads the caches itself.
	w.factory = informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTransform(trim))
	f := w.factory
	w.infs["Node"] = f.Core().V1().Nodes().Informer()
	w.infs["Namespace"] = f.Core().V1().Namespaces().Informer()
	w.infs["Pod"] = f.Core().V1().Pods().Informer()
	w.infs["ReplicationController"] = f.Core().V1().ReplicationControllers().Informer()
	w.infs["Deployment"] = f.Apps().V1().Deployments().Informer()
	w.infs["ReplicaSet"] = f.Apps().V1().ReplicaSets().Informer()
	w.infs["StatefulSet"] = f.Apps().V1().StatefulSets().Informer()
	w.infs["DaemonSet"] = f.Apps().V1().DaemonSets().Informer()
	w.infs["Job"] = f.Batch().V1().Jobs().Informer()
	w.infs["CronJob"] = f.Batch().V1().CronJobs().Informer()
	return w
}

// trim drops what the inventory never needs before it is cached: managed
// fields of every object and the image list of nodes (hundreds of entries).
func trim(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return obj, nil
}

// Start registers the handlers and starts the informers; Synced waits for
// their first lists.
func (w *Watcher) Start(ctx context.Context) error {
	for _, k := range kinds {
		kind := k
		_, err := w.infs[kind].AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.mark(kind, obj) },
			UpdateFunc: func(_, obj any) { w.mark(kind, obj) },
			DeleteFunc: func(obj any) { w.mark(kind, obj) },
		})
		if err != nil {
			return fmt.Errorf("inventory: watch %s: %w", kind, err)
		}
	}
	w.factory.Start(ctx.Done())
	return nil
}

// WaitSynced waits until every informer has its first list.
func (w *Watcher) WaitSynced(ctx context.Context) bool {
	for _, inf := range w.infs {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return false
		}
	}
	w.synced.Store(true)
	return true
}

// Shutdown stops the informers (after ctx of Start ended).
func (w *Watcher) Shutdown() { w.factory.Shutdown() }

// mark records that an object changed (or went).
func (w *Watcher) mark(kind string, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.dirty[key{kind, m.GetNamespace(), m.GetName()}] = true
	w.mu.Unlock()
}

// Run sends a full resync, then every change, until ctx ends; a full
// resync runs again every Resync.
func (w *Watcher) Run(ctx context.Context) {
	if !w.WaitSynced(ctx) {
		return
	}
	next := time.Now()
	t := time.NewTicker(w.o.Flush)
	defer t.Stop()
	backoff := time.Duration(0)
	for {
		var err error
		if !time.Now().Before(next) {
			if err = w.resync(ctx); err == nil {
				next = time.Now().Add(w.o.Resync)
			}
		} else {
			err = w.flush(ctx)
		}
		if err != nil && ctx.Err() == nil {
			w.Stats.Failures.Add(1)
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			w.log.Warn("inventory not delivered, retrying", "err", err, "retryIn", backoff)
		} else {
			backoff = 0
		}
		wait := w.o.Flush
		if backoff > 0 {
			wait = backoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-w.wake:
		}
	}
}

// Resync asks for a full resync now (tests, a reconnect).
func (w *Watcher) Resync(ctx context.Context) error { return w.resync(ctx) }

// resync sends every cached object under a new generation.
func (w *Watcher) resync(ctx context.Context) error {
	gen := w.o.Generation()
	// The dirty set is covered by the resync (it reads the current state).
	w.mu.Lock()
	clear(w.dirty)
	w.mu.Unlock()
	b := &batcher{w: w, ctx: ctx, b: api.InventoryBatch{Generation: gen, Begin: true}}
	for _, kind := range kinds {
		for _, obj := range w.infs[kind].GetStore().List() {
			o, err := w.object(kind, obj)
			if err != nil {
				w.log.Warn("inventory: object skipped", "kind", kind, "err", err)
				continue
			}
			if err := b.add(o, nil); err != nil {
				return w.resyncFailed(err)
			}
		}
	}
	b.b.End = true
	if err := b.flush(); err != nil {
		return w.resyncFailed(err)
	}
	w.mu.Lock()
	w.gen = gen
	w.mu.Unlock()
	w.Stats.Resyncs.Add(1)
	return nil
}

// resyncFailed wraps a failed resync's error. Nothing is lost: Run tries a
// full resync again (it covers the changes marked meanwhile too).
func (w *Watcher) resyncFailed(err error) error {
	return fmt.Errorf("inventory: full resync: %w", err)
}

// flush sends the current state of every dirty object.
func (w *Watcher) flush(ctx context.Context) error {
	w.mu.Lock()
	keys := make([]key, 0, len(w.dirty))
	for k := range w.dirty {
		keys = append(keys, k)
	}
	clear(w.dirty)
	gen := w.gen
	w.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	b := &batcher{w: w, ctx: ctx, b: api.InventoryBatch{Generation: gen}}
	var err error
	for i, k := range keys {
		obj, exists, gerr := w.infs[k.kind].GetStore().GetByKey(storeKey(k))
		switch {
		case gerr != nil:
			err = gerr
		case !exists:
			err = b.add(nil, &api.InventoryRef{Kind: k.kind, Namespace: k.namespace, Name: k.name})
		default:
			o, oerr := w.object(k.kind, obj)
			if oerr != nil {
				w.log.Warn("inventory: object skipped", "kind", k.kind, "name", k.name, "err", oerr)
				continue
			}
			err = b.add(o, nil)
		}
		if err != nil {
			w.redirty(keys[i:])
			return err
		}
	}
	if err := b.flush(); err != nil {
		w.redirty(b.pending)
		return err
	}
	return nil
}

func (w *Watcher) redirty(keys []key) {
	w.mu.Lock()
	for _, k := range keys {
		w.dirty[k] = true
	}
	w.mu.Unlock()
}

func storeKey(k key) string {
	if k.namespace == "" {
		return k.name
	}
	return k.namespace + "/" + k.name
}

// batcher fills batches and sends them when full.
type batcher struct {
	w       *Watcher
	ctx     context.Context
	b       api.InventoryBatch
	size    int
	pending []key // keys of the batch being filled
}

func (b *batcher) add(o *api.InventoryObject, del *api.InventoryRef) error {
	n := 256
	if o != nil {
		n += len(o.Object)
	}
	if len(b.b.Objects)+len(b.b.Deleted) >= api.MaxInventoryObjects || (b.size+n > maxBatchBytes && b.size > 0) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if o != nil {
		b.b.Objects = append(b.b.Objects, *o)
		b.pending = append(b.pending, key{o.Kind, o.Namespace, o.Name})
	} else {
		b.b.Deleted = append(b.b.Deleted, *del)
		b.pending = append(b.pending, key{del.Kind, del.Namespace, del.Name})
	}
	b.size += n
	return nil
}

// flush sends the batch (also an empty one that begins or ends a resync).
func (b *batcher) flush() error {
	if len(b.b.Objects)+len(b.b.Deleted) == 0 && !b.b.Begin && !b.b.End {
		return nil
	}
	if _, err := b.w.send(b.ctx, b.b); err != nil {
		return err
	}
	b.w.Stats.Batches.Add(1)
	b.w.Stats.Upserts.Add(int64(len(b.b.Objects)))
	b.w.Stats.Deletes.Add(int64(len(b.b.Deleted)))
	b.b = api.InventoryBatch{Generation: b.b.Generation}
	b.size, b.pending = 0, nil
	return nil
}

// object converts a cached object to what the server keeps.
func (w *Watcher) object(kind string, obj any) (*api.InventoryObject, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	o := &api.InventoryObject{InventoryRef: api.InventoryRef{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: string(m.GetUID())},
		ResourceVersion: m.GetResourceVersion(), Labels: m.GetLabels()}
	ro, ok := obj.(runtime.Object)
	if !ok {
		return nil, fmt.Errorf("%s %s: not a runtime object", kind, m.GetName())
	}
	body, err := json.Marshal(withKind(ro, kind))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, m.GetName(), err)
	}
	if len(body) > api.MaxInventoryObjectBytes {
		body = nil // kept without its JSON (compliance skips it)
	}
	o.Object = body
	if kind != "Node" && kind != "Namespace" {
		o.Owner = w.topOwner(m.GetNamespace(), m.GetOwnerReferences())
	}
	if p, ok := obj.(*corev1.Pod); ok {
		o.Node, o.Phase = p.Spec.NodeName, string(p.Status.Phase)
		o.Containers = containers(p)
	}
	return o, nil
}

// withKind sets apiVersion and kind (informers' objects have none).
func withKind(o runtime.Object, kind string) runtime.Object {
	o = o.DeepCopyObject()
	gv := "v1"
	switch kind {
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet":
		gv = "apps/v1"
	case "Job", "CronJob":
		gv = "batch/v1"
	}
	o.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(gv, kind))
	return o
}

// topOwner follows controller owner references up through the caches: a
// pod of a ReplicaSet of a Deployment names the Deployment, a pod of a Job
// of a CronJob the CronJob.
func (w *Watcher) topOwner(ns string, refs []metav1.OwnerReference) *model.WorkloadRef {
	var top *model.WorkloadRef
	for depth := 0; depth < 4; depth++ {
		ref := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: refs})
		if ref == nil {
			return top
		}
		top = &model.WorkloadRef{Kind: ref.Kind, Name: ref.Name}
		inf, ok := w.infs[ref.Kind]
		if !ok || (ref.Kind != "ReplicaSet" && ref.Kind != "Job") {
			return top
		}
		obj, exists, err := inf.GetStore().GetByKey(ns + "/" + ref.Name)
		if err != nil || !exists {
			return top
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return top
		}
		refs = m.GetOwnerReferences()
	}
	return top
}

// containers lists a pod's containers with the digest each runs.
func containers(p *corev1.Pod) []api.InventoryContainer {
	status := map[string]corev1.ContainerStatus{}
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range ss {
			status[s.Name] = s
		}
	}
	var out []api.InventoryContainer
	add := func(name, image, kind string) {
		c := api.InventoryContainer{Name: name, Image: image, Kind: kind}
		if s, ok := status[name]; ok {
			c.ImageDigest = Digest(s.ImageID)
			c.ContainerID = s.ContainerID
			c.Running = s.State.Running != nil
		}
		out = append(out, c)
	}
	for _, c := range p.Spec.InitContainers {
		add(c.Name, c.Image, "init")
	}
	for _, c := range p.Spec.Containers {
		add(c.Name, c.Image, "")
	}
	for _, c := range p.Spec.EphemeralContainers {
		add(c.Name, c.Image, "ephemeral")
	}
	return out
}

// Digest extracts the manifest digest from a container status's imageID
// ("docker.io/library/nginx@sha256:…", "docker-pullable://…@sha256:…");
// "" when it holds none.
func Digest(imageID string) string {
	i := strings.LastIndex(imageID, "@")
	if i < 0 {
		return ""
	}
	d := imageID[i+1:]
	if !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
		return ""
	}
	for _, c := range d[7:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return d
}

// NamespaceLabels implements the cluster view of admission.
func (w *Watcher) NamespaceLabels(ctx context.Context, name string) map[string]string {
	if obj, ok, err := w.infs["Namespace"].GetStore().GetByKey(name); err == nil && ok {
		return obj.(*corev1.Namespace).Labels
	}
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	ns, err := w.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) && !errors.Is(err, context.Canceled) {
			w.log.Debug("namespace labels", "namespace", name, "err", err)
		}
		return nil
	}
	return ns.Labels
}

// PodLabels implements the cluster view of admission.
func (w *Watcher) PodLabels(ctx context.Context, namespace, name string) map[string]string {
	if obj, ok, err := w.infs["Pod"].GetStore().GetByKey(namespace + "/" + name); err == nil && ok {
		return obj.(*corev1.Pod).Labels
	}
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	p, err := w.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p.Labels
}

// Counts returns the number of cached objects of each kind.
func (w *Watcher) Counts() map[string]int {
	out := map[string]int{}
	for k, inf := range w.infs {
		out[k] = len(inf.GetStore().ListKeys())
	}
	return out
}

// Pod returns a cached pod.
func (w *Watcher) Pod(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := w.infs["Pod"].GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return obj.(*corev1.Pod), true
}
