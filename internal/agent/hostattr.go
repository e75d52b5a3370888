package agent

import (
	"path/filepath"
	"strconv"
	"strings"

	"mamori/internal/model"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
)

// Container attribution for the host modules (issue 12): an event of
// anti-malware, application control or integrity that concerns a process
// or a file inside a container carries the container as the runtime
// module's events do (ID, name, image, digest, runtime, labels; pod and
// namespace), from the runtime module's resolver (containerd, CRI, Docker
// metadata), not only the ID a cgroup path holds.

// HostAttribution is a container as a host event carries it.
type HostAttribution struct {
	Container      *model.ContainerRef
	Namespace, Pod string
}

// ContainerOfPID attributes a process to its container through the
// runtime module's resolver (the process's cgroup, then the runtime's
// metadata); the zero HostAttribution for a host process, one that is
// gone, or when the runtime module does not run.
func (r *Runtime) ContainerOfPID(pid int) HostAttribution {
	if r == nil || r.res == nil {
		return HostAttribution{}
	}
	return attributePID(r.res, pid)
}

// ContainerOfPath attributes a file path that is inside a container as
// the host sees it: under /proc/PID/root (the container of PID) or a
// containerd task's root file system
// (/run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/rootfs).
func (r *Runtime) ContainerOfPath(path string) HostAttribution {
	if r == nil || r.res == nil {
		return HostAttribution{}
	}
	return attributePath(r.res, r.cfg.ProcRoot, path)
}

func attributePID(res *container.Resolver, pid int) HostAttribution {
	if pid <= 0 {
		return HostAttribution{}
	}
	e := &event.Event{}
	e.Process.PID = pid
	if res.Attribute(e) == nil {
		return HostAttribution{}
	}
	return HostAttribution{Container: e.ModelContainer(), Namespace: e.Container.Namespace, Pod: e.Container.Pod}
}

// containerdTaskDir is where containerd's runc shim keeps each task's
// bundle, the rootfs mounted inside.
const containerdTaskDir = "/run/containerd/io.containerd.runtime.v2.task/"

func attributePath(res *container.Resolver, procRoot, path string) HostAttribution {
	if procRoot == "" {
		procRoot = "/proc"
	}
	path = filepath.Clean(path)
	if rest, ok := strings.CutPrefix(path, filepath.Clean(procRoot)+"/"); ok {
		pidText, tail, _ := strings.Cut(rest, "/")
		if pid, err := strconv.Atoi(pidText); err == nil && (tail == "root" || strings.HasPrefix(tail, "root/")) {
			return attributePID(res, pid)
		}
		return HostAttribution{}
	}
	if rest, ok := strings.CutPrefix(path, containerdTaskDir); ok {
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) >= 3 && parts[2] == "rootfs" {
			if inf := res.Get(container.Key{Runtime: container.RuntimeContainerd, Namespace: parts[0], ID: parts[1]}); inf != nil {
				e := &event.Event{Container: inf.Container}
				return HostAttribution{Container: e.ModelContainer(), Namespace: inf.Namespace, Pod: inf.Pod}
			}
		}
	}
	return HostAttribution{}
}
