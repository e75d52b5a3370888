package misconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"mamori/internal/model"
)

// Check IDs of this file.
const (
	K8sPrivileged       = "MSC-K8S-001"
	K8sHostPID          = "MSC-K8S-002"
	K8sHostIPC          = "MSC-K8S-003"
	K8sHostNetwork      = "MSC-K8S-004"
	K8sHostProcess      = "MSC-K8S-005"
	K8sCapsBaseline     = "MSC-K8S-006"
	K8sHostPath         = "MSC-K8S-007"
	K8sHostPathSens     = "MSC-K8S-008"
	K8sHostPort         = "MSC-K8S-009"
	K8sAppArmor         = "MSC-K8S-010"
	K8sSELinux          = "MSC-K8S-011"
	K8sProcMount        = "MSC-K8S-012"
	K8sSeccompBaseline  = "MSC-K8S-013"
	K8sSysctls          = "MSC-K8S-014"
	K8sVolumeTypes      = "MSC-K8S-015"
	K8sPrivEscalation   = "MSC-K8S-016"
	K8sRunAsNonRoot     = "MSC-K8S-017"
	K8sRunAsUserRoot    = "MSC-K8S-018"
	K8sSeccompRestrict  = "MSC-K8S-019"
	K8sCapsDropAll      = "MSC-K8S-020"
	K8sCapsAddRestrict  = "MSC-K8S-021"
	K8sReadOnlyRootFS   = "MSC-K8S-022"
	K8sNoLimits         = "MSC-K8S-023"
	K8sNoRequests       = "MSC-K8S-024"
	K8sImageTag         = "MSC-K8S-025"
	K8sAutomountSAToken = "MSC-K8S-026"
	K8sPullPolicy       = "MSC-K8S-027"
)

// podSecurityChecks are the workload (Pod Security Standards and hygiene) checks of this file: metadata here, logic below, tests in k8s_test.go.
func podSecurityChecks() []CheckInfo {
	return []CheckInfo{
		k8s(K8sPrivileged, "Privileged container", crit,
			"securityContext.privileged is true: the container has all capabilities and device access — root on the node.",
			"Remove privileged: true.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.2").withPeers("KSV-0017"),
		k8s(K8sHostPID, "Host PID namespace shared", high,
			"hostPID: true lets the pod see and signal every process on the node.",
			"Remove hostPID.", nistRuntimeConfig, nistSharedKernel, pssBaseline, "CIS-K8s-5.2.3").withPeers("KSV-0010"),
		k8s(K8sHostIPC, "Host IPC namespace shared", high,
			"hostIPC: true shares the node's System V IPC and POSIX message queues.",
			"Remove hostIPC.", nistRuntimeConfig, nistSharedKernel, pssBaseline, "CIS-K8s-5.2.4").withPeers("KSV-0008"),
		k8s(K8sHostNetwork, "Host network namespace shared", high,
			"hostNetwork: true puts the pod on the node's network stack, bypassing network policies.",
			"Remove hostNetwork.", nistRuntimeConfig, nistNetAccess, pssBaseline, "CIS-K8s-5.2.5").withPeers("KSV-0009"),
		k8s(K8sHostProcess, "Windows HostProcess container", high,
			"windowsOptions.hostProcess: true runs the container as a process on the Windows node.",
			"Remove hostProcess.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.11").withPeers("KSV-0103"),
		k8s(K8sCapsBaseline, "Capability added beyond the baseline set", high,
			"capabilities.add names a capability outside the Pod Security Standards baseline set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).",
			"Remove the capability (SYS_ADMIN, NET_ADMIN, NET_RAW ... are rarely needed).", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.9").withPeers("KSV-0005", "KSV-0022", "KSV-0119", "KSV-0120"),
		k8s(K8sHostPath, "hostPath volume", high,
			"A hostPath volume exposes the node's file system to the pod.",
			"Use a PersistentVolumeClaim, emptyDir, configMap or secret volume instead.", nistHostFS, pssBaseline, "CIS-K8s-5.2.12").withPeers("KSV-0023"),
		k8s(K8sHostPathSens, "hostPath to a sensitive host path", crit,
			"A hostPath volume mounts a sensitive node path (/, /etc, /proc, /boot, /root, the container runtime socket, /var/lib/kubelet ...): a path to node takeover.",
			"Remove the volume.", nistHostFS, nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.12").withPeers("KSV-0006", "KSV-0023", "KSV-0121"),
		k8s(K8sHostPort, "hostPort used", med,
			"A container port is bound on the node (hostPort), bypassing services and network policy.",
			"Remove hostPort; expose the pod with a Service.", nistNetAccess, pssBaseline, "CIS-K8s-5.2.13").withPeers("KSV-0024"),
		k8s(K8sAppArmor, "AppArmor disabled", med,
			"The AppArmor profile is set to unconfined (appArmorProfile.type Unconfined or the container.apparmor.security.beta.kubernetes.io annotation).",
			"Use RuntimeDefault or a Localhost profile.", nistRuntimeConfig, pssBaseline).withPeers("KSV-0002"),
		k8s(K8sSELinux, "SELinux options not allowed", med,
			"seLinuxOptions sets a user or role, or a type other than container_t, container_init_t, container_kvm_t or container_engine_t.",
			"Remove the custom SELinux options.", nistRuntimeConfig, pssBaseline).withPeers("KSV-0025"),
		k8s(K8sProcMount, "/proc mount unmasked", med,
			"securityContext.procMount is not Default: masked /proc paths become visible.",
			"Remove procMount or set it to Default.", nistRuntimeConfig, pssBaseline).withPeers("KSV-0027"),
		k8s(K8sSeccompBaseline, "Seccomp disabled", med,
			"seccompProfile.type is Unconfined: every system call is allowed.",
			"Use seccompProfile type RuntimeDefault or Localhost.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.7.2").withPeers("KSV-0104"),
		k8s(K8sSysctls, "Unsafe sysctl", high,
			"securityContext.sysctls sets a sysctl outside the Pod Security Standards safe set.",
			"Remove the sysctl.", nistRuntimeConfig, nistSharedKernel, pssBaseline).withPeers("KSV-0026"),
		k8s(K8sVolumeTypes, "Volume type not allowed by the restricted profile", low,
			"The restricted profile allows only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes.",
			"Use a PersistentVolumeClaim or one of the allowed types.", nistRuntimeConfig, pssRestricted).withPeers("KSV-0028"),
		k8s(K8sPrivEscalation, "Privilege escalation allowed", med,
			"allowPrivilegeEscalation is not set to false: setuid binaries and file capabilities can raise privileges.",
			"Set securityContext.allowPrivilegeEscalation: false.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.6").withPeers("KSV-0001"),
		k8s(K8sRunAsNonRoot, "runAsNonRoot not set", med,
			"Neither the pod nor the container sets runAsNonRoot: true, so the image's user (often root) is used.",
			"Set securityContext.runAsNonRoot: true (and a non-zero runAsUser).", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.7").withPeers("KSV-0012"),
		k8s(K8sRunAsUserRoot, "Runs as UID 0", high,
			"runAsUser is 0 (root).",
			"Set runAsUser to a non-zero UID.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.7").withPeers("KSV-0105"),
		k8s(K8sSeccompRestrict, "Seccomp profile not set", low,
			"The restricted profile requires seccompProfile.type RuntimeDefault or Localhost on the pod or every container.",
			"Set securityContext.seccompProfile.type: RuntimeDefault.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.7.2").withPeers("KSV-0030", "KSV-0104"),
		k8s(K8sCapsDropAll, "Capabilities not dropped", low,
			"capabilities.drop does not include ALL: the container keeps the runtime's default capabilities (NET_RAW among them).",
			"Set capabilities.drop: [ALL] and add back only NET_BIND_SERVICE if needed.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.8", "CIS-K8s-5.2.10").withPeers("KSV-0003", "KSV-0004", "KSV-0106"),
		k8s(K8sCapsAddRestrict, "Capability added beyond NET_BIND_SERVICE", med,
			"The restricted profile allows adding only NET_BIND_SERVICE.",
			"Remove the added capability.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.9").withPeers("KSV-0022", "KSV-0106"),
		k8s(K8sReadOnlyRootFS, "Root file system writable", low,
			"readOnlyRootFilesystem is not true: an intruder can modify the container's binaries and configuration.",
			"Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where writes are needed.", nistRuntimeConfig, "CIS-Docker-5.12").withPeers("KSV-0014"),
		k8s(K8sNoLimits, "No CPU or memory limit", low,
			"The container sets no CPU or no memory limit: it can starve its neighbours.",
			"Set resources.limits.cpu and resources.limits.memory.", nistRuntimeConfig, "CIS-Docker-5.10", "CIS-Docker-5.11").withPeers("KSV-0011", "KSV-0018"),
		k8s(K8sNoRequests, "No CPU or memory request", low,
			"The container sets no CPU or no memory request: the scheduler cannot place it safely.",
			"Set resources.requests.cpu and resources.requests.memory.", nistRuntimeConfig).withPeers("KSV-0015", "KSV-0016"),
		k8s(K8sImageTag, "Image tag latest or missing", med,
			"The container image has no tag or the tag latest: what runs changes whenever the tag moves.",
			"Pin the image by a version tag and a digest.", nistStaleImages, nistUntrustedImages).withPeers("KSV-0013"),
		k8s(K8sAutomountSAToken, "Service account token mounted", low,
			"automountServiceAccountToken is not false: the pod gets API credentials it may not need.",
			"Set automountServiceAccountToken: false unless the workload calls the Kubernetes API.", nistOrchAccess, "CIS-K8s-5.1.6").withPeers("KSV-0036"),
		k8s(K8sPullPolicy, "imagePullPolicy is not Always for a mutable tag", low,
			"The image is referenced by tag, not digest, and imagePullPolicy is not Always: nodes may run a stale cached image.",
			"Reference the image by digest, or set imagePullPolicy: Always.", nistStaleImages),
	}
}

const (
	// MaxManifestSize caps a manifest file read into memory (10 MiB holds
	// the rendered output of the largest Helm charts several times over).
	MaxManifestSize = 10 << 20
	// MaxManifestDocuments caps the YAML documents read from one file.
	MaxManifestDocuments = 5000
	// maxListDepth bounds nested List objects (a List of Lists ...).
	maxListDepth = 4
)

// Light, typed subset of the Kubernetes API: only the fields the checks
// read (k8s.io/api would pull in apimachinery for a dozen fields).

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type seLinuxOptions struct {
	User  string `yaml:"user"`
	Role  string `yaml:"role"`
	Type  string `yaml:"type"`
	Level string `yaml:"level"`
}

type profile struct {
	Type             string `yaml:"type"`
	LocalhostProfile string `yaml:"localhostProfile"`
}

type windowsOptions struct {
	HostProcess *bool `yaml:"hostProcess"`
}

type sysctl struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type podSecurityContext struct {
	RunAsNonRoot    *bool           `yaml:"runAsNonRoot"`
	RunAsUser       *int64          `yaml:"runAsUser"`
	SELinuxOptions  *seLinuxOptions `yaml:"seLinuxOptions"`
	SeccompProfile  *profile        `yaml:"seccompProfile"`
	AppArmorProfile *profile        `yaml:"appArmorProfile"`
	Sysctls         []sysctl        `yaml:"sysctls"`
	WindowsOptions  *windowsOptions `yaml:"windowsOptions"`
}

type capabilities struct {
	Add  []string `yaml:"add"`
	Drop []string `yaml:"drop"`
}

type securityContext struct {
	Privileged               *bool           `yaml:"privileged"`
	AllowPrivilegeEscalation *bool           `yaml:"allowPrivilegeEscalation"`
	Capabilities             *capabilities   `yaml:"capabilities"`
	ReadOnlyRootFilesystem   *bool           `yaml:"readOnlyRootFilesystem"`
	RunAsNonRoot             *bool           `yaml:"runAsNonRoot"`
	RunAsUser                *int64          `yaml:"runAsUser"`
	SELinuxOptions           *seLinuxOptions `yaml:"seLinuxOptions"`
	SeccompProfile           *profile        `yaml:"seccompProfile"`
	AppArmorProfile          *profile        `yaml:"appArmorProfile"`
	ProcMount                string          `yaml:"procMount"`
	WindowsOptions           *windowsOptions `yaml:"windowsOptions"`
}

type containerPort struct {
	ContainerPort int32 `yaml:"containerPort"`
	HostPort      int32 `yaml:"hostPort"`
}

type resources struct {
	Limits   map[string]any `yaml:"limits"`
	Requests map[string]any `yaml:"requests"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	ImagePullPolicy string           `yaml:"imagePullPolicy"`
	Ports           []containerPort  `yaml:"ports"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Resources       *resources       `yaml:"resources"`
}

type podSpec struct {
	HostNetwork                  bool                `yaml:"hostNetwork"`
	HostPID                      bool                `yaml:"hostPID"`
	HostIPC                      bool                `yaml:"hostIPC"`
	AutomountServiceAccountToken *bool               `yaml:"automountServiceAccountToken"`
	SecurityContext              *podSecurityContext `yaml:"securityContext"`
	Containers                   []container         `yaml:"containers"`
	InitContainers               []container         `yaml:"initContainers"`
	EphemeralContainers          []container         `yaml:"ephemeralContainers"`
	OS                           *struct {
		Name string `yaml:"name"`
	} `yaml:"os"`
}

// workload is one pod template found in a manifest.
type workload struct {
	kind, namespace, name string
	path                  string // file path
	line                  int    // line of the object
	annotations           map[string]string
	spec                  podSpec
	specNode              *yaml.Node
}

func (w *workload) object() string {
	ns := w.namespace
	if ns == "" {
		ns = "default"
	}
	return w.kind + "/" + ns + "/" + w.name
}

// podSpecPath gives, per workload kind, the keys leading from the object to
// its pod spec and to the metadata holding pod annotations.
var podSpecPath = map[string][]string{
	"Pod":                   {"spec"},
	"PodTemplate":           {"template", "spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// CheckManifests runs the Kubernetes checks on the YAML or JSON documents
// in content (multi-document streams, List kinds and Helm output with
// comments are all accepted), read from path. Workloads (pod templates)
// and RBAC objects (Role, ClusterRole and their bindings) are checked;
// other objects are ignored. A document that cannot be decoded is reported in
// the returned error (wrapping ErrParse) and the others are still checked.
func CheckManifests(path string, content []byte) ([]model.Finding, error) {
	if len(content) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes (limit %d)", ErrTooLarge, len(content), MaxManifestSize)
	}
	ws, roles, err := parseManifests(path, content)
	var out []model.Finding
	for i := range ws {
		out = append(out, checkWorkload(&ws[i])...)
	}
	for i := range roles {
		out = append(out, checkRBAC(&roles[i])...)
	}
	return out, err
}

// parseManifests decodes every document into yaml.Node trees (which keep
// line numbers and do not expand aliases) and collects the workloads and
// the RBAC objects.
func parseManifests(path string, content []byte) ([]workload, []rbacObject, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var out []workload
	var roles []rbacObject
	var errs []error
	for doc := 0; ; doc++ {
		if doc >= MaxManifestDocuments {
			errs = append(errs, fmt.Errorf("%w: more than %d documents", ErrTooLarge, MaxManifestDocuments))
			break
		}
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The decoder cannot resynchronise after a syntax error.
			errs = append(errs, fmt.Errorf("%w: %s: document %d: %w", ErrParse, path, doc+1, err))
			break
		}
		if len(n.Content) == 0 {
			continue // empty document (only comments)
		}
		ws, err := collectWorkloads(path, n.Content[0], 0, &roles)
		out = append(out, ws...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: document %d: %w", ErrParse, path, doc+1, err))
		}
	}
	return out, roles, errors.Join(errs...)
}

// decodeNode decodes n into v, turning yaml.v3's panics-by-design into
// errors (its decoder reports some failures through panic/recover; an
// escaping one must not crash a scan).
func decodeNode(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode: %v", r)
		}
	}()
	return n.Decode(v)
}

// collectWorkloads returns the workloads in root (an object or a List of
// them) and appends its RBAC objects to roles.
func collectWorkloads(path string, root *yaml.Node, depth int, roles *[]rbacObject) ([]workload, error) {
	if root.Kind != yaml.MappingNode {
		return nil, nil
	}
	var head struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
	}
	apiNode, kindNode := mapValue(root, "apiVersion"), mapValue(root, "kind")
	if apiNode == nil || kindNode == nil {
		return nil, nil // not a Kubernetes object
	}
	head.APIVersion, head.Kind = apiNode.Value, kindNode.Value
	if md := mapValue(root, "metadata"); md != nil {
		if err := decodeNode(md, &head.Metadata); err != nil {
			return nil, fmt.Errorf("%s metadata: %w", head.Kind, err)
		}
	}
	if head.Kind == "List" || strings.HasSuffix(head.Kind, "List") {
		if depth >= maxListDepth {
			return nil, fmt.Errorf("%s nested deeper than %d", head.Kind, maxListDepth)
		}
		items := mapValue(root, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil, nil
		}
		var out []workload
		var errs []error
		for _, it := range items.Content {
			ws, err := collectWorkloads(path, it, depth+1, roles)
			out = append(out, ws...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		return out, errors.Join(errs...)
	}
	if rbacKinds[head.Kind] && strings.HasPrefix(head.APIVersion, "rbac.authorization.k8s.io/") {
		r, err := decodeRBAC(path, root, head.Kind, head.Metadata)
		if err != nil {
			return nil, err
		}
		*roles = append(*roles, r)
		return nil, nil
	}
	keys, ok := podSpecPath[head.Kind]
	if !ok {
		return nil, nil
	}
	specNode := root
	var tmplMeta *yaml.Node
	for i, k := range keys {
		if k == "spec" && i == len(keys)-1 && i > 0 {
			tmplMeta = mapValue(specNode, "metadata")
		}
		specNode = mapValue(specNode, k)
		if specNode == nil {
			return nil, nil // incomplete object: nothing to check
		}
	}
	w := workload{kind: head.Kind, namespace: head.Metadata.Namespace, name: head.Metadata.Name,
		path: path, line: root.Line, annotations: head.Metadata.Annotations, specNode: specNode}
	if tmplMeta != nil {
		var md objectMeta
		if err := decodeNode(tmplMeta, &md); err != nil {
			return nil, fmt.Errorf("%s %s template metadata: %w", head.Kind, head.Metadata.Name, err)
		}
		w.annotations = md.Annotations // pod annotations live on the template
	}
	if err := decodeNode(specNode, &w.spec); err != nil {
		return nil, fmt.Errorf("%s %s pod spec: %w", head.Kind, head.Metadata.Name, err)
	}
	return []workload{w}, nil
}

// mapValue returns the value of key in mapping node n (following one
// alias), or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// PSS constants (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
var (
	baselineCaps = map[string]bool{"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true,
		"FSETID": true, "KILL": true, "MKNOD": true, "NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true,
		"SETPCAP": true, "SETUID": true, "SYS_CHROOT": true}
	safeSysctls = map[string]bool{"kernel.shm_rmid_forced": true, "net.ipv4.ip_local_port_range": true,
		"net.ipv4.ip_unprivileged_port_start": true, "net.ipv4.tcp_syncookies": true, "net.ipv4.ping_group_range": true,
		"net.ipv4.ip_local_reserved_ports": true, "net.ipv4.tcp_keepalive_time": true, "net.ipv4.tcp_fin_timeout": true,
		"net.ipv4.tcp_keepalive_intvl": true, "net.ipv4.tcp_keepalive_probes": true}
	allowedSELinuxTypes = map[string]bool{"": true, "container_t": true, "container_init_t": true,
		"container_kvm_t": true, "container_engine_t": true}
	restrictedVolumes = map[string]bool{"configMap": true, "csi": true, "downwardAPI": true, "emptyDir": true,
		"ephemeral": true, "persistentVolumeClaim": true, "projected": true, "secret": true}
	// Host paths whose mount hands the node to the pod: exact matches.
	sensitiveExact = []string{"/", "/etc", "/sys", "/dev", "/var", "/var/run", "/run", "/usr", "/lib", "/home", "/var/lib", "/bin", "/sbin"}
	// ... and trees (the path or anything below it).
	sensitiveTrees = []string{"/proc", "/boot", "/root", "/etc/kubernetes", "/var/lib/kubelet", "/var/lib/docker",
		"/var/lib/containerd", "/var/lib/etcd", "/etc/shadow", "/etc/sudoers", "/etc/crontab", "/etc/cron.d", "/etc/ssh",
		"/var/run/docker.sock", "/run/docker.sock", "/var/run/containerd", "/run/containerd", "/var/run/crio",
		"/run/crio", "/var/run/cri-dockerd.sock", "/run/podman", "/var/log"}
)

// sensitiveHostPath reports whether p is a host path whose mount is a
// path to node takeover.
func sensitiveHostPath(p string) bool {
	if p == "" {
		return false
	}
	c := path.Clean("/" + strings.TrimSpace(p))
	for _, e := range sensitiveExact {
		if c == e {
			return true
		}
	}
	for _, t := range sensitiveTrees {
		if c == t || strings.HasPrefix(c, t+"/") {
			return true
		}
	}
	return false
}

func boolTrue(b *bool) bool  { return b != nil && *b }
func boolFalse(b *bool) bool { return b != nil && !*b }

// checkWorkload runs every Kubernetes check on one workload.
func checkWorkload(w *workload) []model.Finding {
	var out []model.Finding
	obj := w.object()
	podLoc := model.Location{Path: w.path, Config: obj, StartLine: w.line}
	if w.specNode != nil {
		podLoc.StartLine = w.specNode.Line
	}
	add := func(id string, loc model.Location, ev string) { out = append(out, newFinding(id, loc, ev)) }
	s := &w.spec
	psc := s.SecurityContext
	if psc == nil {
		psc = &podSecurityContext{}
	}
	windows := s.OS != nil && strings.EqualFold(s.OS.Name, "windows")

	// Pod-level controls.
	if s.HostPID {
		add(K8sHostPID, podLoc, "hostPID: true")
	}
	if s.HostIPC {
		add(K8sHostIPC, podLoc, "hostIPC: true")
	}
	if s.HostNetwork {
		add(K8sHostNetwork, podLoc, "hostNetwork: true")
	}
	if psc.WindowsOptions != nil && boolTrue(psc.WindowsOptions.HostProcess) {
		add(K8sHostProcess, podLoc, "securityContext.windowsOptions.hostProcess: true")
	}
	for _, sc := range psc.Sysctls {
		if !safeSysctls[sc.Name] {
			add(K8sSysctls, podLoc, "sysctl "+sc.Name)
		}
	}
	if psc.SELinuxOptions != nil {
		if ev := badSELinux(psc.SELinuxOptions); ev != "" {
			add(K8sSELinux, podLoc, "pod "+ev)
		}
	}
	if psc.SeccompProfile != nil && psc.SeccompProfile.Type == "Unconfined" {
		add(K8sSeccompBaseline, podLoc, "pod seccompProfile.type: Unconfined")
	}
	if psc.AppArmorProfile != nil && psc.AppArmorProfile.Type == "Unconfined" {
		add(K8sAppArmor, podLoc, "pod appArmorProfile.type: Unconfined")
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		add(K8sRunAsUserRoot, podLoc, "pod runAsUser: 0")
	}
	if !boolFalse(s.AutomountServiceAccountToken) {
		add(K8sAutomountSAToken, podLoc, "automountServiceAccountToken not false")
	}
	out = append(out, checkVolumes(w, podLoc)...)

	// Container-level controls.
	type kc struct {
		field string
		list  []container
	}
	for _, group := range []kc{{"initContainers", s.InitContainers}, {"containers", s.Containers}, {"ephemeralContainers", s.EphemeralContainers}} {
		nodes := mapValue(w.specNode, group.field)
		for i := range group.list {
			c := &group.list[i]
			loc := model.Location{Path: w.path, Config: obj + "/" + group.field + "/" + c.Name, StartLine: podLoc.StartLine}
			if nodes != nil && nodes.Kind == yaml.SequenceNode && i < len(nodes.Content) {
				loc.StartLine = nodes.Content[i].Line
			}
			out = append(out, checkContainer(w, c, psc, group.field, windows, loc)...)
		}
	}
	return out
}

func badSELinux(o *seLinuxOptions) string {
	var bad []string
	if !allowedSELinuxTypes[o.Type] {
		bad = append(bad, "type "+o.Type)
	}
	if o.User != "" {
		bad = append(bad, "user "+o.User)
	}
	if o.Role != "" {
		bad = append(bad, "role "+o.Role)
	}
	return strings.Join(bad, ", ")
}

func checkVolumes(w *workload, podLoc model.Location) []model.Finding {
	var out []model.Finding
	vols := mapValue(w.specNode, "volumes")
	if vols == nil || vols.Kind != yaml.SequenceNode {
		return nil
	}
	for _, v := range vols.Content {
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.MappingNode {
			continue
		}
		loc := podLoc
		loc.StartLine = v.Line
		name := ""
		if n := mapValue(v, "name"); n != nil {
			name = n.Value
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i].Value
			if k == "name" {
				continue
			}
			if k == "hostPath" {
				p := ""
				if pn := mapValue(v.Content[i+1], "path"); pn != nil {
					p = pn.Value
				}
				if sensitiveHostPath(p) {
					out = append(out, newFinding(K8sHostPathSens, loc, "volume "+name+" hostPath "+p))
				} else {
					out = append(out, newFinding(K8sHostPath, loc, "volume "+name+" hostPath "+p))
				}
			}
			if !restrictedVolumes[k] {
				out = append(out, newFinding(K8sVolumeTypes, loc, "volume "+name+" type "+k))
			}
		}
	}
	return out
}

func checkContainer(w *workload, c *container, psc *podSecurityContext, field string, windows bool, loc model.Location) []model.Finding {
	var out []model.Finding
	add := func(id, ev string) { out = append(out, newFinding(id, loc, ev)) }
	sc := c.SecurityContext
	if sc == nil {
		sc = &securityContext{}
	}
	if boolTrue(sc.Privileged) {
		add(K8sPrivileged, "privileged: true")
	}
	if sc.WindowsOptions != nil && boolTrue(sc.WindowsOptions.HostProcess) {
		add(K8sHostProcess, "windowsOptions.hostProcess: true")
	}
	var added []string
	dropAll := false
	if sc.Capabilities != nil {
		added = sc.Capabilities.Add
		for _, d := range sc.Capabilities.Drop {
			if strings.EqualFold(d, "ALL") {
				dropAll = true
			}
		}
	}
	for _, a := range added {
		capName := strings.TrimPrefix(strings.ToUpper(a), "CAP_")
		switch {
		case !baselineCaps[capName]:
			add(K8sCapsBaseline, "capabilities.add "+a)
		case capName != "NET_BIND_SERVICE":
			add(K8sCapsAddRestrict, "capabilities.add "+a)
		}
	}
	if !dropAll && !windows {
		add(K8sCapsDropAll, "capabilities.drop lacks ALL")
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			add(K8sHostPort, "hostPort "+strconv.Itoa(int(p.HostPort)))
		}
	}
	if v, ok := w.annotations["container.apparmor.security.beta.kubernetes.io/"+c.Name]; ok &&
		v != "runtime/default" && !strings.HasPrefix(v, "localhost/") {
		add(K8sAppArmor, "annotation apparmor "+v)
	}
	if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == "Unconfined" {
		add(K8sAppArmor, "appArmorProfile.type: Unconfined")
	}
	if sc.SELinuxOptions != nil {
		if ev := badSELinux(sc.SELinuxOptions); ev != "" {
			add(K8sSELinux, ev)
		}
	}
	if sc.ProcMount != "" && sc.ProcMount != "Default" {
		add(K8sProcMount, "procMount: "+sc.ProcMount)
	}
	if sc.SeccompProfile != nil && sc.SeccompProfile.Type == "Unconfined" {
		add(K8sSeccompBaseline, "seccompProfile.type: Unconfined")
	}
	// Restricted.
	if !boolFalse(sc.AllowPrivilegeEscalation) && !windows {
		add(K8sPrivEscalation, "allowPrivilegeEscalation not false")
	}
	if !(boolTrue(sc.RunAsNonRoot) || sc.RunAsNonRoot == nil && boolTrue(psc.RunAsNonRoot)) {
		add(K8sRunAsNonRoot, "runAsNonRoot not true")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		add(K8sRunAsUserRoot, "runAsUser: 0")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if !windows && (seccomp == nil || seccomp.Type != "RuntimeDefault" && seccomp.Type != "Localhost") {
		add(K8sSeccompRestrict, "seccompProfile not RuntimeDefault or Localhost")
	}
	// Hardening beyond PSS.
	if !boolTrue(sc.ReadOnlyRootFilesystem) {
		add(K8sReadOnlyRootFS, "readOnlyRootFilesystem not true")
	}
	if field != "ephemeralContainers" { // ephemeral containers cannot set resources
		var lim, req map[string]any
		if c.Resources != nil {
			lim, req = c.Resources.Limits, c.Resources.Requests
		}
		if missing := missingKeys(lim, "cpu", "memory"); missing != "" {
			add(K8sNoLimits, "resources.limits lacks "+missing)
		}
		if missing := missingKeys(req, "cpu", "memory"); missing != "" {
			add(K8sNoRequests, "resources.requests lacks "+missing)
		}
	}
	if c.Image != "" && !strings.Contains(c.Image, "@") {
		tag := imageTag(c.Image)
		if tag == "" || tag == "latest" {
			add(K8sImageTag, "image "+c.Image)
		}
		mutableDefault := tag == "" || tag == "latest" // the default policy is then Always
		if c.ImagePullPolicy != "Always" && !(c.ImagePullPolicy == "" && mutableDefault) {
			// Report an explicit or defaulted IfNotPresent/Never on a tag.
			pol := c.ImagePullPolicy
			if pol == "" {
				pol = "IfNotPresent (default)"
			}
			add(K8sPullPolicy, "image "+c.Image+", imagePullPolicy "+pol)
		}
	}
	return out
}

func missingKeys(m map[string]any, keys ...string) string {
	var miss []string
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			miss = append(miss, k)
		}
	}
	sort.Strings(miss)
	return strings.Join(miss, ", ")
}
