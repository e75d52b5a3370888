package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsvc "github.com/containerd/containerd/api/services/events/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// containerd is asked through its gRPC API (the generated stubs of
// github.com/containerd/containerd/api only, as internal/image does): the
// containers, tasks, images and namespaces services and the event stream.
// The same services answer from containerd 1.6 to 2.x.

// DefaultContainerdAddress is a stock containerd's socket.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

const (
	namespaceHeader = "containerd-namespace"
	// maxGRPCMessage bounds one answer (a container record with its OCI
	// spec is a few KiB; a List of thousands stays far below).
	maxGRPCMessage = 64 << 20
	// digestTTL is how long an image reference's digest is trusted: a tag
	// can be re-pulled to another manifest.
	digestTTL = time.Minute
	// maxMetaCache bounds the digest and sandbox-label caches.
	maxMetaCache = 4096
	// maxRecent bounds the containers the event watcher remembers between
	// a container's create and its task's start.
	maxRecent = 4096
)

// CRI's labels and annotations (containerd pkg/cri, kubelet pkg/kubelet/types).
const (
	labelCRIKind        = "io.cri-containerd.kind" // "container" or "sandbox"
	labelPodName        = "io.kubernetes.pod.name"
	labelPodNamespace   = "io.kubernetes.pod.namespace"
	labelPodUID         = "io.kubernetes.pod.uid"
	labelContainerName  = "io.kubernetes.container.name"
	annotationSandboxID = "io.kubernetes.cri.sandbox-id"
	labelNerdctlName    = "nerdctl/name"
)

// Containerd is the containerd Source: plain namespaces and CRI's.
type Containerd struct {
	address string
	conn    *grpc.ClientConn
	skip    map[string]bool

	containers containersapi.ContainersClient
	tasks      tasksapi.TasksClient
	images     imagesapi.ImagesClient
	namespaces namespacesapi.NamespacesClient
	events     eventsvc.EventsClient

	mu       sync.Mutex
	digests  map[string]cachedDigest // namespace \x00 image reference
	sandboxs map[string]map[string]string
}

var _ Source = (*Containerd)(nil)

type cachedDigest struct {
	digest string
	at     time.Time
}

// NewContainerd connects (lazily: gRPC reconnects by itself after a
// restart) to containerd at address. Namespaces in skip are ignored:
// "moby" when Docker is a Source too (dockerd's containers live there,
// and Docker describes them better).
func NewContainerd(address string, skip ...string) (*Containerd, error) {
	if address == "" {
		address = DefaultContainerdAddress
	}
	abs, err := filepath.Abs(strings.TrimPrefix(address, "unix://"))
	if err != nil {
		return nil, fmt.Errorf("containerd address %q: %w", address, err)
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage)))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", abs, err)
	}
	c := &Containerd{
		address:    abs,
		conn:       conn,
		skip:       map[string]bool{},
		containers: containersapi.NewContainersClient(conn),
		tasks:      tasksapi.NewTasksClient(conn),
		images:     imagesapi.NewImagesClient(conn),
		namespaces: namespacesapi.NewNamespacesClient(conn),
		events:     eventsvc.NewEventsClient(conn),
		digests:    map[string]cachedDigest{},
		sandboxs:   map[string]map[string]string{},
	}
	for _, ns := range skip {
		c.skip[ns] = true
	}
	return c, nil
}

// Name implements Source.
func (c *Containerd) Name() string { return RuntimeContainerd }

// Owns implements Source: plain containerd and CRI paths.
func (c *Containerd) Owns(ref CgroupRef) bool {
	return ref.Runtime == RuntimeContainerd || ref.Runtime == RuntimeCRI
}

// Close implements Source.
func (c *Containerd) Close() error { return c.conn.Close() }

func nsCtx(ctx context.Context, ns string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, namespaceHeader, ns)
}

// List implements Source.
func (c *Containerd) List(ctx context.Context) ([]Info, error) {
	nsl, err := c.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd %s: list namespaces: %w", c.address, err)
	}
	var out []Info
	for _, n := range nsl.GetNamespaces() {
		ns := n.GetName()
		if c.skip[ns] {
			continue
		}
		nctx := nsCtx(ctx, ns)
		cl, err := c.containers.List(nctx, &containersapi.ListContainersRequest{})
		if err != nil {
			return nil, fmt.Errorf("containerd: list containers of %s: %w", ns, err)
		}
		tl, err := c.tasks.List(nctx, &tasksapi.ListTasksRequest{})
		if err != nil {
			return nil, fmt.Errorf("containerd: list tasks of %s: %w", ns, err)
		}
		pids := map[string]uint32{}
		for _, t := range tl.GetTasks() {
			if t.GetStatus() != tasktypes.Status_STOPPED && t.GetStatus() != tasktypes.Status_UNKNOWN {
				pids[t.GetID()] = t.GetPid()
			}
		}
		for _, ct := range cl.GetContainers() {
			inf := c.info(nctx, ns, ct)
			inf.PID = int(pids[ct.GetID()])
			out = append(out, inf)
		}
	}
	return out, nil
}

// Get implements Source. A CRI path carries no namespace: CRI's ("k8s.io")
// is tried first, then every namespace.
func (c *Containerd) Get(ctx context.Context, ref CgroupRef) (Info, error) {
	if !validContainerID(ref.ID) {
		return Info{}, fmt.Errorf("%w: containerd id %q", ErrNotFound, ref.ID)
	}
	var candidates []string
	if ref.Namespace != "" {
		candidates = []string{ref.Namespace}
	} else {
		candidates = []string{"k8s.io"}
		nsl, err := c.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
		if err != nil {
			return Info{}, fmt.Errorf("containerd %s: list namespaces: %w", c.address, err)
		}
		for _, n := range nsl.GetNamespaces() {
			if n.GetName() != "k8s.io" {
				candidates = append(candidates, n.GetName())
			}
		}
	}
	for _, ns := range candidates {
		if c.skip[ns] {
			continue
		}
		inf, err := c.get(ctx, ns, ref.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return inf, err
	}
	return Info{}, fmt.Errorf("%w: containerd container %s", ErrNotFound, ref.ID)
}

// get reads one container and its task's PID.
func (c *Containerd) get(ctx context.Context, ns, id string) (Info, error) {
	nctx := nsCtx(ctx, ns)
	resp, err := c.containers.Get(nctx, &containersapi.GetContainerRequest{ID: id})
	if status.Code(err) == codes.NotFound {
		return Info{}, fmt.Errorf("%w: containerd container %s/%s", ErrNotFound, ns, id)
	}
	if err != nil {
		return Info{}, fmt.Errorf("containerd: get container %s/%s: %w", ns, id, err)
	}
	inf := c.info(nctx, ns, resp.GetContainer())
	tr, err := c.tasks.Get(nctx, &tasksapi.GetRequest{ContainerID: id})
	switch {
	case status.Code(err) == codes.NotFound:
	case err != nil:
		return Info{}, fmt.Errorf("containerd: get task %s/%s: %w", ns, id, err)
	case tr.GetProcess().GetStatus() != tasktypes.Status_STOPPED:
		inf.PID = int(tr.GetProcess().GetPid())
	}
	return inf, nil
}

// ociSpec is the part of a container's OCI runtime spec attribution reads.
type ociSpec struct {
	Annotations map[string]string `json:"annotations"`
	Linux       *struct {
		CgroupsPath string `json:"cgroupsPath"`
	} `json:"linux"`
}

// maxSpec bounds the spec decoded (a spec is a few KiB).
const maxSpec = 1 << 20

// info converts a containerd container record.
func (c *Containerd) info(ctx context.Context, ns string, ct *containersapi.Container) Info {
	inf := Info{RuntimeNamespace: ns}
	inf.ID = ct.GetID()
	inf.Image = ct.GetImage()
	inf.Runtime = RuntimeContainerd
	inf.Namespace = ns
	if t := ct.GetCreatedAt(); t != nil {
		inf.Created = t.AsTime()
	}
	var spec ociSpec
	if v := ct.GetSpec().GetValue(); len(v) > 0 && len(v) <= maxSpec {
		// An unreadable spec leaves the fields it would fill empty; the
		// cgroup path is then read from /proc.
		_ = json.Unmarshal(v, &spec)
	}
	if spec.Linux != nil {
		inf.CgroupPath = cgroupfsPath(spec.Linux.CgroupsPath)
	}
	labels := ct.GetLabels()
	switch labels[labelCRIKind] {
	case "container", "sandbox":
		inf.Runtime = RuntimeCRI
		inf.Pod = labels[labelPodName]
		inf.Namespace = labels[labelPodNamespace]
		inf.PodUID = labels[labelPodUID]
		inf.Sandbox = labels[labelCRIKind] == "sandbox"
		if inf.Sandbox {
			inf.SandboxID = inf.ID
			inf.Name = inf.Pod
			inf.Labels = podLabels(labels)
		} else {
			inf.Name = labels[labelContainerName]
			inf.SandboxID = spec.Annotations[annotationSandboxID]
			inf.Labels = c.sandboxLabels(ctx, inf.SandboxID)
		}
	default:
		inf.Name = labels[labelNerdctlName]
		if inf.Name == "" {
			inf.Name = inf.ID
		}
		if len(labels) > 0 {
			inf.Labels = make(map[string]string, len(labels))
			for k, v := range labels {
				inf.Labels[k] = v
			}
		}
	}
	inf.ImageDigest = c.digest(ctx, ns, inf.Image)
	return inf
}

// cgroupfsPath returns an OCI cgroupsPath in cgroupfs form; a systemd
// driver path ("slice:prefix:name") is expanded as runc's systemd driver
// does ("a-b.slice" lives in "a.slice/a-b.slice").
func cgroupfsPath(p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return ""
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	var b strings.Builder
	base := strings.TrimSuffix(slice, ".slice")
	if base != "-" {
		comps := strings.Split(base, "-")
		for i := range comps {
			b.WriteString("/" + strings.Join(comps[:i+1], "-") + ".slice")
		}
	}
	unit := name
	if prefix != "" {
		unit = prefix + "-" + name
	}
	if !strings.HasSuffix(unit, ".slice") {
		unit += ".scope"
	}
	b.WriteString("/" + unit)
	return b.String()
}

// podLabels keeps a sandbox's user labels (the pod's labels): the
// io.kubernetes.* and io.cri-containerd.* ones are in Info's fields.
func podLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if strings.HasPrefix(k, "io.kubernetes.") || strings.HasPrefix(k, "io.cri-containerd.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// sandboxLabels returns the pod labels of a CRI sandbox (cached: a pod's
// labels in CRI are fixed at sandbox creation).
func (c *Containerd) sandboxLabels(ctx context.Context, id string) map[string]string {
	if id == "" {
		return nil
	}
	c.mu.Lock()
	l, ok := c.sandboxs[id]
	c.mu.Unlock()
	if ok {
		return l
	}
	resp, err := c.containers.Get(ctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return nil // the pod's labels stay unknown; its other fields are the container's own
	}
	l = podLabels(resp.GetContainer().GetLabels())
	c.mu.Lock()
	if len(c.sandboxs) >= maxMetaCache {
		clear(c.sandboxs)
	}
	c.sandboxs[id] = l
	c.mu.Unlock()
	return l
}

// digest returns the manifest digest of an image reference in the image
// store ("" when the store has no such image).
func (c *Containerd) digest(ctx context.Context, ns, ref string) string {
	if ref == "" {
		return ""
	}
	// A CRI container may name its image by ID ("sha256:<config>"): CRI
	// records images under their ID too, with the manifest as target.
	k := ns + "\x00" + ref
	c.mu.Lock()
	d, ok := c.digests[k]
	c.mu.Unlock()
	if ok && time.Since(d.at) < digestTTL {
		return d.digest
	}
	resp, err := c.images.Get(ctx, &imagesapi.GetImageRequest{Name: ref})
	dg := ""
	if err == nil {
		dg = resp.GetImage().GetTarget().GetDigest()
	} else if status.Code(err) != codes.NotFound {
		return "" // not cached: asked again next time
	}
	c.mu.Lock()
	if len(c.digests) >= maxMetaCache {
		clear(c.digests)
	}
	c.digests[k] = cachedDigest{digest: dg, at: time.Now()}
	c.mu.Unlock()
	return dg
}

// eventFilters subscribe to task and container events only.
var eventFilters = []string{`topic~="^/tasks/"`, `topic~="^/containers/"`}

// Watch implements Source.
func (c *Containerd) Watch(ctx context.Context, ready func(), fn func(Change)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.events.Subscribe(ctx, &eventsvc.SubscribeRequest{Filters: eventFilters})
	if err != nil {
		return fmt.Errorf("containerd %s: subscribe: %w", c.address, err)
	}
	ready()
	// recent remembers containers between their create and their task's
	// start: a container that is gone by the time its task event is read
	// (one that exits within a millisecond) is still described.
	recent := map[string]Info{}
	for {
		env, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("containerd %s: event stream: %w", c.address, err)
		}
		ns := env.GetNamespace()
		if c.skip[ns] || env.GetEvent() == nil {
			continue
		}
		at := time.Now()
		if ts := env.GetTimestamp(); ts != nil {
			at = ts.AsTime()
		}
		c.handle(ctx, ns, env.GetTopic(), env.GetEvent().GetValue(), at, recent, fn)
	}
}

// handle turns one containerd event into Changes.
func (c *Containerd) handle(ctx context.Context, ns, topic string, payload []byte, at time.Time, recent map[string]Info, fn func(Change)) {
	key := func(id string) string { return ns + "\x00" + id }
	upsert := func(id string, pid uint32) {
		inf, err := c.get(ctx, ns, id)
		if err != nil {
			r, ok := recent[key(id)]
			if !ok {
				r = Info{RuntimeNamespace: ns, Partial: true}
				r.ID, r.Runtime, r.Namespace = id, RuntimeContainerd, ns
			}
			inf = r
		}
		if pid != 0 {
			inf.PID = int(pid)
		}
		if inf.PID != 0 && inf.Started.IsZero() {
			inf.Started = at
		}
		if len(recent) >= maxRecent {
			clear(recent)
		}
		recent[key(id)] = inf
		fn(Change{Op: OpUpsert, Info: inf, At: at})
	}
	keyInfo := func(id string) Info {
		inf := Info{RuntimeNamespace: ns}
		inf.ID, inf.Runtime = id, RuntimeContainerd
		return inf
	}
	switch topic {
	case "/containers/create":
		var e eventsapi.ContainerCreate
		if proto.Unmarshal(payload, &e) == nil {
			upsert(e.GetID(), 0)
		}
	case "/containers/update":
		var e eventsapi.ContainerUpdate
		if proto.Unmarshal(payload, &e) == nil {
			upsert(e.GetID(), 0)
		}
	case "/tasks/create":
		var e eventsapi.TaskCreate
		if proto.Unmarshal(payload, &e) == nil {
			upsert(e.GetContainerID(), e.GetPid())
		}
	case "/tasks/start":
		var e eventsapi.TaskStart
		if proto.Unmarshal(payload, &e) == nil {
			upsert(e.GetContainerID(), e.GetPid())
		}
	case "/tasks/exit":
		var e eventsapi.TaskExit
		// Exec'd processes exit too; only the init process ends the task.
		if proto.Unmarshal(payload, &e) == nil && (e.GetID() == "" || e.GetID() == e.GetContainerID()) {
			fn(Change{Op: OpExited, Info: keyInfo(e.GetContainerID()), At: at})
		}
	case "/tasks/delete":
		var e eventsapi.TaskDelete
		if proto.Unmarshal(payload, &e) == nil && (e.GetID() == "" || e.GetID() == e.GetContainerID()) {
			fn(Change{Op: OpExited, Info: keyInfo(e.GetContainerID()), At: at})
		}
	case "/containers/delete":
		var e eventsapi.ContainerDelete
		if proto.Unmarshal(payload, &e) == nil {
			delete(recent, key(e.GetID()))
			fn(Change{Op: OpDeleted, Info: keyInfo(e.GetID()), At: at})
		}
	}
}
