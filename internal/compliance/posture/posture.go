// Package posture holds the postures the compliance engines collect and
// the components report to the server: a node's (compliance/node, run by
// the agent) and a cluster's (compliance/kube, run by the cluster
// component). They are wire types (the API sends them as they are), so
// the package imports nothing of mamori but the model.
package posture

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"mamori/internal/model"
)

// Limits of a posture, checked by Validate: a node or cluster that reports
// more is cut by its collector, and the server refuses more.
const (
	MaxItems = 10_000
	MaxText  = 4096
)

// Status of one checked item.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Unknown: the item could not be read (file absent, not a kubelet node).
	Unknown Status = "unknown"
)

// Item is one checked setting, named by its CIS ID where the CIS
// Kubernetes Benchmark has one ("CIS-K8s-4.2.1").
type Item struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Actual is the value found ("anonymous.enabled=true", "0644 root:root").
	Actual string `json:"actual,omitempty"`
	// Source is where it was read (a file, a flag, an API object).
	Source string `json:"source,omitempty"`
	// Controls are the NIST SP 800-190 controls the item serves.
	Controls []string `json:"controls,omitempty"`
}

// Module is the state of a protection module as the agent reports it.
type Module struct {
	// Active is set when the module runs and has done its work recently
	// (a baseline taken, a scan answered, events delivered).
	Active bool `json:"active"`
	// Detail says what was seen ("baseline of 12,345 files at ...").
	Detail string `json:"detail,omitempty"`
	// LastActivity is the module's last piece of work.
	LastActivity time.Time `json:"lastActivity,omitzero"`
}

// Node is the posture of one node, collected by compliance/node.
type Node struct {
	Node        string    `json:"node"`
	Cluster     string    `json:"cluster,omitempty"`
	CollectedAt time.Time `json:"collectedAt"`
	// Root is the file-system root that was read ("/" on a node; a
	// fixture root in tests).
	Root string `json:"root"`
	// Kubelet items (CIS Kubernetes §4.1, §4.2); empty on a host without
	// a kubelet.
	Kubelet []Item `json:"kubelet,omitempty"`
	// HasKubelet is set when a kubelet configuration was found.
	HasKubelet bool `json:"hasKubelet"`
	// Components are the runtime software versions (containerd, runc,
	// kubelet) as found on the node.
	Components []Component `json:"components,omitempty"`
	// Users with a login shell (not nologin/false).
	Users []User `json:"users,omitempty"`
	// Sudoers rules, each with whether it is allowed by the node's
	// baseline (root and the admin groups).
	Sudoers []SudoRule `json:"sudoers,omitempty"`
	SSHD    []Item     `json:"sshd,omitempty"`
	// Listening sockets; ListeningRead is set when they were read (a
	// collection without /proc has none to show, which is not "none").
	Listening     []Listener `json:"listening,omitempty"`
	ListeningRead bool       `json:"listeningRead"`
	// Modules are the agent's protection modules: "integrity",
	// "antimalware", "runtime" (the eBPF sensor), "drift".
	Modules map[string]Module `json:"modules,omitempty"`
	// Containers running on the node, as the container runtimes list them.
	Containers []Container `json:"containers,omitempty"`
	// Inventory is the host's package inventory (OS packages, kernel and
	// the runtime binaries) for the server to match.
	Inventory *model.Inventory `json:"inventory,omitempty"`
	// Warnings are what could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// Component is a piece of runtime software found on a node.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path,omitempty"`
}

// User is a local account with a login shell.
type User struct {
	Name  string `json:"name"`
	UID   int    `json:"uid"`
	Shell string `json:"shell"`
}

// SudoRule is one user or group specification of the sudoers files.
type SudoRule struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Who is the user, %group or alias the rule grants to.
	Who  string `json:"who"`
	Spec string `json:"spec"`
	// NoPasswd is set when the rule needs no password.
	NoPasswd bool `json:"noPasswd"`
	// Allowed is set when the node's baseline allows the grant.
	Allowed bool `json:"allowed"`
}

// Listener is a listening socket.
type Listener struct {
	Proto   string `json:"proto"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Process is the owning process's name when it could be found.
	Process string `json:"process,omitempty"`
	// Expected is set for the services the node is expected to run
	// (sshd, kubelet, containerd, the agent) and for loopback.
	Expected bool `json:"expected"`
}

// Container is a container as a runtime on the node lists it.
type Container struct {
	ID      string `json:"id"`
	Runtime string `json:"runtime"`
	Image   string `json:"image"`
	Digest  string `json:"digest,omitempty"`
	// Managed is set for containers an orchestrator manages (a CRI pod
	// sandbox or container of the kubelet).
	Managed   bool   `json:"managed"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
}

// Cluster is the posture of one cluster, collected by compliance/kube.
type Cluster struct {
	Cluster     string    `json:"cluster"`
	CollectedAt time.Time `json:"collectedAt"`
	// Bindings grant cluster-admin or a wildcard role to a non-system
	// subject (each is a violation of 4.3.1); Allowed marks those the
	// cluster's baseline accepts.
	Bindings []Binding `json:"bindings,omitempty"`
	// BindingsReviewed counts the bindings read.
	BindingsReviewed int `json:"bindingsReviewed"`
	// Anonymous are the anonymous API probes.
	Anonymous []Item `json:"anonymous,omitempty"`
	// Namespaces are the non-system namespaces with their policies.
	Namespaces []Namespace `json:"namespaces,omitempty"`
	// Nodes with the sensitivity levels of the pods they run.
	Nodes []NodeWorkloads `json:"nodes,omitempty"`
	// Pods are the running pods with their images and findings.
	Pods []Pod `json:"pods,omitempty"`
	// APIServer items (CIS Kubernetes §1.2) read from the API server's
	// static pod, when the cluster runs it as a pod.
	APIServer []Item   `json:"apiServer,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Binding is a (Cluster)RoleBinding that grants broad rights.
type Binding struct {
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	Role      string   `json:"role"`
	Subjects  []string `json:"subjects"`
	// Reason is "cluster-admin" or "wildcard".
	Reason  string `json:"reason"`
	Allowed bool   `json:"allowed"`
}

// Namespace is a namespace and its NetworkPolicy coverage.
type Namespace struct {
	Name string `json:"name"`
	// DefaultDenyIngress / Egress: a policy selecting every pod with that
	// policy type and no rule letting traffic in (out).
	DefaultDenyIngress bool     `json:"defaultDenyIngress"`
	DefaultDenyEgress  bool     `json:"defaultDenyEgress"`
	Policies           []string `json:"policies,omitempty"`
	Pods               int      `json:"pods"`
}

// NodeWorkloads is a node and the sensitivity levels of its pods.
type NodeWorkloads struct {
	Node string `json:"node"`
	// Levels maps a sensitivity level to the pods (namespace/name) of it.
	Levels map[string][]string `json:"levels"`
}

// Pod is a running pod.
type Pod struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Node      string    `json:"node,omitempty"`
	Images    []Image   `json:"images"`
	Findings  []Finding `json:"findings,omitempty"`
	// Sensitivity is the pod's sensitivity label value.
	Sensitivity string `json:"sensitivity,omitempty"`
}

// Image is an image a pod runs: as written and as resolved.
type Image struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	Digest    string `json:"digest,omitempty"`
}

// Finding is a misconfiguration of a running pod.
type Finding struct {
	ID       string         `json:"id"`
	Title    string         `json:"title"`
	Severity model.Severity `json:"severity"`
	Controls []string       `json:"controls"`
	Evidence string         `json:"evidence,omitempty"`
}

// Validate checks a node posture's limits and text: the server refuses a
// posture that fails it, and the collectors cut theirs to fit.
func (n *Node) Validate() error {
	v := &checker{}
	v.name("node", n.Node)
	v.text("cluster", n.Cluster)
	v.text("root", n.Root)
	v.items("kubelet", n.Kubelet)
	v.items("sshd", n.SSHD)
	v.count("components", len(n.Components))
	for _, c := range n.Components {
		v.text("component", c.Name, c.Version, c.Path)
	}
	v.count("users", len(n.Users))
	for _, u := range n.Users {
		v.text("user", u.Name, u.Shell)
	}
	v.count("sudoers", len(n.Sudoers))
	for _, r := range n.Sudoers {
		v.text("sudoers", r.File, r.Who, r.Spec)
	}
	v.count("listening", len(n.Listening))
	for _, l := range n.Listening {
		v.text("listener", l.Proto, l.Address, l.Process)
		if l.Port < 0 || l.Port > 65535 {
			v.fail("listener port %d out of range", l.Port)
		}
	}
	v.count("modules", len(n.Modules))
	for k, m := range n.Modules {
		v.text("module", k, m.Detail)
	}
	v.count("containers", len(n.Containers))
	for _, c := range n.Containers {
		v.text("container", c.ID, c.Runtime, c.Image, c.Digest, c.Namespace, c.Pod)
	}
	v.count("warnings", len(n.Warnings))
	v.text("warning", n.Warnings...)
	if n.Inventory != nil {
		if err := n.Inventory.Validate(); err != nil {
			v.fail("inventory: %v", err)
		}
	}
	return v.err
}

// Validate checks a cluster posture's limits and text.
func (c *Cluster) Validate() error {
	v := &checker{}
	v.text("cluster", c.Cluster)
	v.count("bindings", len(c.Bindings))
	for _, b := range c.Bindings {
		v.text("binding", b.Kind, b.Name, b.Namespace, b.Role, b.Reason)
		v.count("binding subjects", len(b.Subjects))
		v.text("subject", b.Subjects...)
	}
	if c.BindingsReviewed < 0 {
		v.fail("bindingsReviewed %d", c.BindingsReviewed)
	}
	v.items("anonymous", c.Anonymous)
	v.items("apiServer", c.APIServer)
	v.count("namespaces", len(c.Namespaces))
	for _, n := range c.Namespaces {
		v.text("namespace", n.Name)
		v.count("namespace policies", len(n.Policies))
		v.text("policy", n.Policies...)
		if n.Pods < 0 {
			v.fail("namespace %s: %d pods", n.Name, n.Pods)
		}
	}
	v.count("nodes", len(c.Nodes))
	total := 0
	for _, n := range c.Nodes {
		v.text("node", n.Node)
		for l, ps := range n.Levels {
			v.text("sensitivity", l)
			v.text("pod", ps...)
			total += len(ps)
		}
	}
	v.count("node pods", total)
	v.count("pods", len(c.Pods))
	for _, p := range c.Pods {
		v.text("pod", p.Namespace, p.Name, p.Node, p.Sensitivity)
		v.count("pod images", len(p.Images))
		for _, im := range p.Images {
			v.text("image", im.Container, im.Image, im.Digest)
		}
		v.count("pod findings", len(p.Findings))
		for _, f := range p.Findings {
			v.text("finding", f.ID, f.Title, f.Evidence)
			v.text("control", f.Controls...)
		}
	}
	v.count("warnings", len(c.Warnings))
	v.text("warning", c.Warnings...)
	return v.err
}

type checker struct{ err error }

func (v *checker) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("posture: "+format, args...)
	}
}

func (v *checker) count(what string, n int) {
	if n > MaxItems {
		v.fail("%d %s, at most %d", n, what, MaxItems)
	}
}

// text refuses overlong strings, invalid UTF-8 and control characters
// (they end up in reports, logs and a PDF).
func (v *checker) text(what string, ss ...string) {
	for _, s := range ss {
		switch {
		case len(s) > MaxText:
			v.fail("%s: %d bytes, at most %d", what, len(s), MaxText)
		case !utf8.ValidString(s):
			v.fail("%s: not UTF-8", what)
		case strings.IndexFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) >= 0:
			v.fail("%s: control characters in %q", what, clip(s))
		}
	}
}

// name is a required node name (the agent's, as the identities service
// checks it).
func (v *checker) name(what, s string) {
	if s == "" {
		v.fail("%s: empty", what)
		return
	}
	if len(s) > 253 {
		v.fail("%s: %d bytes, at most 253", what, len(s))
		return
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			v.fail("%s %q: only letters, digits, '.', '-' and '_'", what, clip(s))
			return
		}
	}
}

func (v *checker) items(what string, its []Item) {
	v.count(what, len(its))
	for _, it := range its {
		v.text(what, it.ID, it.Title, it.Actual, it.Source)
		v.text(what+" control", it.Controls...)
		switch it.Status {
		case Pass, Fail, Unknown:
		default:
			v.fail("%s %s: status %q", what, clip(it.ID), clip(string(it.Status)))
		}
	}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
