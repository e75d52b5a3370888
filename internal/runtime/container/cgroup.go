package container

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Runtime names: the values of event.Container.Runtime.
const (
	RuntimeContainerd = "containerd" // a plain containerd container (ctr, nerdctl, a containerd client)
	RuntimeCRI        = "cri"        // a Kubernetes container, through containerd's CRI plugin
	RuntimeDocker     = "docker"
	RuntimeCRIO       = "cri-o" // recognised in cgroup paths; no metadata source yet
)

// CgroupRef is what a cgroup path says about the container in it.
type CgroupRef struct {
	// Runtime is the runtime the path's form belongs to; "" when the path
	// is not a container's (a host service, a user session, the root).
	Runtime string
	// Namespace is the containerd namespace of the plain containerd form
	// /<namespace>/<id>.
	Namespace string
	ID        string
	// PodUID is the pod of a Kubernetes path (kubepods.../pod<uid>/...).
	PodUID string
	// Guess says the form is shared with paths that are not containers
	// (/<namespace>/<id> looks like /<slice>/<service>): only a runtime
	// that knows the container may confirm it.
	Guess bool
}

// IsContainer says whether the path is (possibly, see Guess) a container's.
func (r CgroupRef) IsContainer() bool { return r.Runtime != "" }

// maxCgroupPath bounds the paths parsed: cgroup paths are short, anything
// longer is not one a runtime made.
const maxCgroupPath = 4096

// ParseCgroupPath reads a cgroup path (as in /proc/PID/cgroup or relative
// to a hierarchy's root) in the forms the runtimes make:
//
//	/<namespace>/<id>                                      containerd (ctr, nerdctl): Guess
//	/docker/<64 hex>                                       Docker, cgroupfs driver
//	/system.slice/docker-<64 hex>.scope                    Docker, systemd driver
//	/kubepods/burstable/pod<uid>/<64 hex>                  CRI, cgroupfs driver (also besteffort, guaranteed = no QoS level)
//	/kubepods.slice/kubepods-burstable.slice/
//	  kubepods-burstable-pod<uid_>.slice/cri-containerd-<64 hex>.scope   CRI, systemd driver
//	.../crio-<64 hex>.scope                                CRI-O
//
// Nested forms (kind: /docker/<node>/kubepods/...) resolve to the innermost
// container. Anything else is the host.
func ParseCgroupPath(p string) CgroupRef {
	if len(p) > maxCgroupPath || p == "" {
		return CgroupRef{}
	}
	comps := splitPath(p)
	n := len(comps)
	if n == 0 {
		return CgroupRef{}
	}
	last := comps[n-1]
	// systemd driver scopes.
	if id, ok := scopeID(last, "docker-"); ok {
		return CgroupRef{Runtime: RuntimeDocker, ID: id}
	}
	if id, ok := scopeID(last, "cri-containerd-"); ok {
		ref := CgroupRef{Runtime: RuntimeCRI, ID: id}
		if n >= 2 {
			ref.PodUID = systemdPodUID(comps[n-2])
		}
		return ref
	}
	if id, ok := scopeID(last, "crio-"); ok {
		ref := CgroupRef{Runtime: RuntimeCRIO, ID: id}
		if n >= 2 {
			ref.PodUID = systemdPodUID(comps[n-2])
		}
		return ref
	}
	// cgroupfs driver.
	if n >= 2 && isHex64(last) {
		parent := comps[n-2]
		if uid, ok := strings.CutPrefix(parent, "pod"); ok && isPodUID(uid) {
			return CgroupRef{Runtime: RuntimeCRI, ID: last, PodUID: uid}
		}
		if parent == "docker" {
			return CgroupRef{Runtime: RuntimeDocker, ID: last}
		}
	}
	// Plain containerd: /<namespace>/<id> at the root of the hierarchy.
	// The parents of Docker's and kubelet's cgroups are never namespaces.
	if n == 2 && validNamespace(comps[0]) && validContainerID(comps[1]) && !systemdUnit(comps[0]) && !systemdUnit(comps[1]) &&
		comps[0] != "docker" && !strings.HasPrefix(comps[0], "kubepods") {
		return CgroupRef{Runtime: RuntimeContainerd, Namespace: comps[0], ID: comps[1], Guess: true}
	}
	return CgroupRef{}
}

// splitPath splits a cgroup path into its non-empty components; "." and
// ".." (cgroup namespaces show paths outside their root with "..") are
// dropped.
func splitPath(p string) []string {
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			continue
		}
		comps = append(comps, c)
	}
	return comps
}

// scopeID reads "<prefix><64 hex>.scope".
func scopeID(comp, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(comp, prefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, ".scope")
	if !ok || !isHex64(id) {
		return "", false
	}
	return id, true
}

// systemdPodUID reads the pod UID of "kubepods-<qos>-pod<uid with _>.slice".
func systemdPodUID(comp string) string {
	s, ok := strings.CutSuffix(comp, ".slice")
	if !ok {
		return ""
	}
	i := strings.LastIndex(s, "-pod")
	if i < 0 {
		return ""
	}
	uid := strings.ReplaceAll(s[i+len("-pod"):], "_", "-")
	if !isPodUID(uid) {
		return ""
	}
	return uid
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isPodUID accepts the UID forms kubelet uses: a UUID, or (static pods) a
// 32-hex-digit hash.
func isPodUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && c != '-' {
			return false
		}
	}
	return true
}

// validNamespace is containerd's namespace rule
// (pkg/identifiers: [A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*, at most 76).
func validNamespace(s string) bool {
	return validIdentifier(s, 76)
}

// validContainerID is containerd's identifier rule (same grammar).
func validContainerID(s string) bool {
	return validIdentifier(s, 76)
}

func validIdentifier(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	prevSep := true // a separator may not start the name
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			prevSep = false
		case c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// systemdUnit says whether a component is a systemd unit (system.slice,
// sshd.service, session-1.scope, ...): such paths are the host's even
// when they look like /<namespace>/<id>.
func systemdUnit(c string) bool {
	for _, suf := range []string{".slice", ".scope", ".service", ".socket", ".mount", ".swap", ".target"} {
		if strings.HasSuffix(c, suf) {
			return true
		}
	}
	return false
}

// ProcCgroup is a parsed /proc/PID/cgroup.
type ProcCgroup struct {
	// Unified is the cgroup v2 path ("0::<path>"); "" when the process
	// has no v2 line (a pure v1 host).
	Unified string
	// V1 maps a v1 hierarchy's controllers ("cpu,cpuacct",
	// "name=systemd") to the process's path in it.
	V1 map[string]string
}

// ErrMalformed says a /proc file did not parse.
var ErrMalformed = errors.New("container: malformed")

// maxProcCgroup bounds /proc/PID/cgroup (a dozen short lines).
const maxProcCgroup = 64 << 10

// ParseProcCgroup reads /proc/PID/cgroup: "<id>:<controllers>:<path>" lines.
func ParseProcCgroup(b []byte) (ProcCgroup, error) {
	var pc ProcCgroup
	if len(b) > maxProcCgroup {
		return pc, fmt.Errorf("%w: /proc/PID/cgroup of %d bytes", ErrMalformed, len(b))
	}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		id, rest, ok1 := bytes.Cut(line, []byte{':'})
		ctrls, path, ok2 := bytes.Cut(rest, []byte{':'})
		if !ok1 || !ok2 || len(path) == 0 || path[0] != '/' {
			return pc, fmt.Errorf("%w: /proc/PID/cgroup line %q", ErrMalformed, truncate(line, 80))
		}
		if string(id) == "0" && len(ctrls) == 0 {
			pc.Unified = string(path)
			continue
		}
		if pc.V1 == nil {
			pc.V1 = map[string]string{}
		}
		pc.V1[string(ctrls)] = string(path)
	}
	return pc, nil
}

// v1Preference is the order v1 hierarchies are asked for a container
// path when the unified line has none: runc puts a container in every
// hierarchy, and these are mounted on every v1 host.
var v1Preference = []string{"name=systemd", "pids", "memory", "cpu,cpuacct", "cpu", "devices", "freezer", "blkio"}

// ContainerRef returns the container the process is in: from the unified
// path when it names one, else from the v1 hierarchies (hybrid and v1
// hosts), and the path it came from.
func (pc ProcCgroup) ContainerRef() (CgroupRef, string) {
	if ref := ParseCgroupPath(pc.Unified); ref.IsContainer() {
		return ref, pc.Unified
	}
	for _, h := range v1Preference {
		if p, ok := pc.V1[h]; ok {
			if ref := ParseCgroupPath(p); ref.IsContainer() {
				return ref, p
			}
		}
	}
	return CgroupRef{}, pc.Unified
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
