package testctr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The labels kubelet puts on every CRI container and sandbox
// (pkg/kubelet/types/labels.go); the harness plays kubelet's part.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// CRI drives the daemon's CRI plugin (k8s.io/cri-api runtime v1 over the
// same socket) the way kubelet does: sandboxes with host networking (no
// CNI on these machines), containers in them, with kubelet's labels. The
// cgroup parent of every pod is under Daemon.CgroupPrefix.
type CRI struct {
	d   *Daemon
	rt  runtimeapi.RuntimeServiceClient
	mu  sync.Mutex
	ids []string // sandboxes to remove at Close
}

// CRI returns the daemon's CRI client; the first call imports the pause
// (sandbox) image into the k8s.io namespace.
func (d *Daemon) CRI(t testing.TB) *CRI {
	t.Helper()
	d.mu.Lock()
	c := d.cri
	d.mu.Unlock()
	if c != nil {
		return c
	}
	img, err := BuildImage(ImageSpec{Cmd: []string{"/bin/sleep", "2147483647"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Import(context.Background(), CRINamespace, img, d.SandboxImage); err != nil {
		t.Fatal(err)
	}
	c = &CRI{d: d, rt: runtimeapi.NewRuntimeServiceClient(d.conn)}
	d.mu.Lock()
	if d.cri == nil {
		d.cri = c
	}
	c = d.cri
	d.mu.Unlock()
	return c
}

// PodSpec is a pod sandbox.
type PodSpec struct {
	Name      string // default "pod-<random>"
	Namespace string // Kubernetes namespace; default "default"
	UID       string // default a random UUID-shaped string
	Labels    map[string]string
}

// Pod is a running sandbox.
type Pod struct {
	c            *CRI
	ID           string // sandbox id (64 hex digits)
	Spec         PodSpec
	CgroupParent string // <CgroupPrefix>/besteffort/pod<uid>
}

// RunPod runs a sandbox (removed at the end of the test).
func (c *CRI) RunPod(t testing.TB, spec PodSpec) *Pod {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "pod-" + RandomTag()
	}
	if spec.Namespace == "" {
		spec.Namespace = "default"
	}
	if spec.UID == "" {
		r := RandomTag() + RandomTag() + RandomTag()
		spec.UID = r[:8] + "-" + r[8:12] + "-" + r[12:16] + "-" + r[16:20] + "-" + r[20:32]
	}
	labels := map[string]string{
		LabelPodName: spec.Name, LabelPodNamespace: spec.Namespace, LabelPodUID: spec.UID,
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	parent := c.d.CgroupPrefix + "/besteffort/pod" + spec.UID
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: spec.Name, Uid: spec.UID, Namespace: spec.Namespace},
		Labels:   labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: parent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
	resp, err := c.rt.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("run pod sandbox %s: %v\ncontainerd log:\n%s", spec.Name, err, c.d.Log())
	}
	p := &Pod{c: c, ID: resp.GetPodSandboxId(), Spec: spec, CgroupParent: parent}
	c.mu.Lock()
	c.ids = append(c.ids, p.ID)
	c.mu.Unlock()
	t.Cleanup(func() {
		if c.d.isClosed() {
			return // Close removed it
		}
		if err := c.removePod(context.Background(), p.ID); err != nil {
			t.Errorf("remove pod %s: %v", spec.Name, err)
		}
	})
	return p
}

func (c *CRI) config(p *Pod) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: p.Spec.Name, Uid: p.Spec.UID, Namespace: p.Spec.Namespace},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: p.CgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
}

// CRIContainerSpec is a container of a pod. Its Image must have been
// imported into the k8s.io namespace (Daemon.BuildImage(t, CRINamespace, ...)).
type CRIContainerSpec struct {
	Name   string // default "ctr-<random>"
	Image  Image
	Args   []string
	Labels map[string]string
}

// CRIContainer is a started CRI container.
type CRIContainer struct {
	ID  string
	PID int
}

// Start creates and starts a container in the pod.
func (p *Pod) Start(t testing.TB, spec CRIContainerSpec) *CRIContainer {
	t.Helper()
	ctx := context.Background()
	if spec.Name == "" {
		spec.Name = "ctr-" + RandomTag()
	}
	labels := map[string]string{
		LabelPodName: p.Spec.Name, LabelPodNamespace: p.Spec.Namespace, LabelPodUID: p.Spec.UID,
		LabelContainerName: spec.Name,
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	resp, err := p.c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.ID,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: spec.Name},
			Image:    &runtimeapi.ImageSpec{Image: spec.Image.Ref},
			Command:  spec.Args,
			Labels:   labels,
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
				},
			},
		},
		SandboxConfig: p.c.config(p),
	})
	if err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
	id := resp.GetContainerId()
	if _, err := p.c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("start container %s: %v\ncontainerd log:\n%s", spec.Name, err, p.c.d.Log())
	}
	task, err := tasksapi.NewTasksClient(p.c.d.conn).Get(WithNamespace(ctx, CRINamespace), &tasksapi.GetRequest{ContainerID: id})
	if err != nil {
		t.Fatalf("task of %s: %v", id, err)
	}
	return &CRIContainer{ID: id, PID: int(task.GetProcess().GetPid())}
}

func (c *CRI) removePod(ctx context.Context, id string) error {
	_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("testctr: stop pod %s: %w", id, err)
	}
	_, err = c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("testctr: remove pod %s: %w", id, err)
	}
	return nil
}

// removeAll removes every sandbox (and so its containers) made through c.
func (c *CRI) removeAll(ctx context.Context) error {
	c.mu.Lock()
	ids := append([]string(nil), c.ids...)
	c.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, c.removePod(ctx, id))
	}
	return errors.Join(errs...)
}

func (c *CRI) close() error { return nil }
