// Package container attributes runtime events to the containers they
// happened in: containerd (plain namespaces and Kubernetes' CRI, with the
// pod, its namespace and labels), Docker, or the host. A Resolver follows
// each runtime's event stream (re-listing on every reconnect, so a runtime
// restart loses nothing), keys what it learns by cgroup v2 id (never
// reused during a boot) and by (PID, start time) for the /proc fallback
// (PIDs are), keeps exited containers for a grace period so that the late
// events of a container that ran for a millisecond are still named, and
// reports what runs on the node (Inventory) for the runtime vulnerability
// view. docs/runtime-attribution.md describes the whole.
package container
