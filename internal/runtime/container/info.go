package container

import (
	"time"

	"mamori/internal/runtime/event"
)

// Info is what attribution knows about one container. The embedded
// event.Container is what every event of the container carries; the rest
// serves drift detection, mitigation and the node inventory. An *Info
// handed out by the Resolver is never modified: updates replace it.
type Info struct {
	event.Container

	// RuntimeNamespace is the containerd namespace ("k8s.io", "default",
	// "moby"); "" for Docker.
	RuntimeNamespace string `json:"runtimeNamespace,omitempty"`
	PodUID           string `json:"podUid,omitempty"`
	// Sandbox says the container is a CRI pod sandbox (the pause container).
	Sandbox   bool   `json:"sandbox,omitempty"`
	SandboxID string `json:"sandboxId,omitempty"`
	ImageID   string `json:"imageId,omitempty"` // config digest, when known

	// PID is the container's init process as the host sees it (0 before
	// its task starts). PIDStart is that process's start (USER_HZ ticks
	// since boot, /proc/PID/stat field 22): with it, PID is checked
	// against reuse before anything acts on it.
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pidStart,omitempty"`
	// CgroupPath is the container's cgroup (v2 path when it has one, else
	// its v1 path); CgroupID is the v2 cgroup's id (0 on a pure v1 host
	// or before the task exists).
	CgroupPath string `json:"cgroupPath,omitempty"`
	CgroupID   uint64 `json:"cgroupId,omitempty"`
	MntNS      uint32 `json:"mntNs,omitempty"`
	NetNS      uint32 `json:"netNs,omitempty"`

	Created time.Time `json:"created,omitzero"`
	Started time.Time `json:"started,omitzero"`
	// Exited is when the container's init process exited or the container
	// was deleted; zero while it runs.
	Exited time.Time `json:"exited,omitzero"`
	// Partial says the runtime could not be asked (only what the cgroup
	// path says is known); the resolver asks again later.
	Partial bool `json:"partial,omitempty"`
}

// Key names a container across runtimes.
type Key struct {
	Runtime   string // RuntimeContainerd, RuntimeCRI and RuntimeContainerd share containerd's id space: see key()
	Namespace string // containerd namespace; "" for Docker
	ID        string
}

// key is the container's Key. CRI containers live in a containerd
// namespace like plain ones, so both use the "containerd" id space.
func (i *Info) key() Key {
	rt := i.Runtime
	if rt == RuntimeCRI {
		rt = RuntimeContainerd
	}
	return Key{Runtime: rt, Namespace: i.RuntimeNamespace, ID: i.ID}
}

// Running says the container's task runs (it has a PID and has not exited).
func (i *Info) Running() bool { return i.PID > 0 && i.Exited.IsZero() }
