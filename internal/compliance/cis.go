package compliance

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mamori/internal/compliance/posture"
	"mamori/internal/model"
)

// ErrStandard: an unknown standard.
var ErrStandard = fmt.Errorf("compliance: unknown standard")

// Groups of the CIS standards.
const (
	GroupCISImages       = "images"
	GroupCISControlPlane = "control-plane"
	GroupCISWorkerNodes  = "worker-nodes"
	GroupCISPolicies     = "policies"
)

// cisTest is the unit test that makes each CIS item fail.
func cisTest(id string) string { return "internal/compliance TestCISItemsFail/" + id }

// cisItem builds a CIS control.
func cisItem(id, group, title, reads, feature string) Control {
	return Control{ID: id, Group: group, Title: title, Countermeasure: "CIS: " + title + ".", Feature: feature, Reads: reads,
		Tests: []string{cisTest(id)}}
}

const (
	featImageChecks = "image misconfiguration checks (internal/misconfig, CIS Docker Benchmark §4)"
	featKubelet     = "agent: node posture (internal/compliance/node), the kubelet's configuration"
	featAPIServer   = "cluster component: cluster posture (internal/compliance/kube), the kube-apiserver static pod's flags"
	featPods        = "cluster component: Pod Security checks of running pods (internal/misconfig)"
	featRBAC        = "cluster component: RBAC review of the cluster's bindings"
)

// CISDocker returns the CIS Docker Benchmark's §4 items (container images
// and build file) as mamori assesses them from image scans.
func CISDocker() []Control {
	f := "misconfiguration findings of each image's latest scan naming the item"
	return []Control{
		cisItem("CIS-Docker-4.1", GroupCISImages, "Ensure that a user for the container has been created", f, featImageChecks),
		cisItem("CIS-Docker-4.2", GroupCISImages, "Ensure that containers use only trusted base images",
			"manual in the benchmark: the base image's provenance is not recorded in an image", featImageChecks),
		cisItem("CIS-Docker-4.3", GroupCISImages, "Ensure that unnecessary packages are not installed in the container", f, featImageChecks),
		cisItem("CIS-Docker-4.4", GroupCISImages, "Ensure images are scanned and rebuilt to include security patches",
			"each image's latest scan: vulnerability scanner ran, no fixable vulnerability at the threshold, rebuilt within the age limit",
			"image scanner, vulnerability DB, registry rescans"),
		cisItem("CIS-Docker-4.5", GroupCISImages, "Ensure Content trust for Docker is Enabled",
			"the signature verification of each image a signature rule covers", "image signature verification (internal/sign)"),
		cisItem("CIS-Docker-4.6", GroupCISImages, "Ensure that HEALTHCHECK instructions have been added to container images", f, featImageChecks),
		cisItem("CIS-Docker-4.7", GroupCISImages, "Ensure update instructions are not used alone in Dockerfiles", f, featImageChecks),
		cisItem("CIS-Docker-4.8", GroupCISImages, "Ensure setuid and setgid permissions are removed", f, featImageChecks),
		cisItem("CIS-Docker-4.9", GroupCISImages, "Ensure that COPY is used instead of ADD in Dockerfiles", f, featImageChecks),
		cisItem("CIS-Docker-4.10", GroupCISImages, "Ensure secrets are not stored in Dockerfiles",
			f+", and the secret scanner's findings", featImageChecks+"; secret scanning"),
		cisItem("CIS-Docker-4.11", GroupCISImages, "Ensure only verified packages are installed",
			"manual in the benchmark: package signature checks happen at build time and leave no trace in the image", featImageChecks),
	}
}

// cisManual are the items no evidence can decide.
var cisManual = map[string]string{
	"CIS-Docker-4.2":  "not assessed: manual item (the base image's provenance is not recorded in the image; the registries and signatures policy rules cover trusted images under NIST SP 800-190 4.1.5)",
	"CIS-Docker-4.11": "not assessed: manual item (package signature verification happens at build time and leaves no trace in the image)",
}

// CISKubernetes returns the CIS Kubernetes Benchmark items mamori reads
// from the API (control plane flags, RBAC, running pods) and from the
// nodes (the kubelet's configuration).
func CISKubernetes() []Control {
	cp := func(id, title string) Control {
		return cisItem(id, GroupCISControlPlane, title, "the kube-apiserver static pod's command line (or, for 1.2.1, an anonymous request)", featAPIServer)
	}
	wn := func(id, title string) Control {
		return cisItem(id, GroupCISWorkerNodes, title, "each node's kubelet configuration file and flags", featKubelet)
	}
	pod := func(id, title string) Control {
		return cisItem(id, GroupCISPolicies, title, "running pods' Pod Security findings naming the item", featPods)
	}
	return []Control{
		cp("CIS-K8s-1.2.1", "Ensure that the --anonymous-auth argument is set to false"),
		cp("CIS-K8s-1.2.2", "Ensure that the --token-auth-file parameter is not set"),
		cp("CIS-K8s-1.2.4", "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as appropriate"),
		cp("CIS-K8s-1.2.5", "Ensure that the --kubelet-certificate-authority argument is set as appropriate"),
		cp("CIS-K8s-1.2.6", "Ensure that the --authorization-mode argument is not set to AlwaysAllow"),
		cp("CIS-K8s-1.2.7", "Ensure that the --authorization-mode argument includes Node"),
		cp("CIS-K8s-1.2.8", "Ensure that the --authorization-mode argument includes RBAC"),
		cp("CIS-K8s-1.2.10", "Ensure that the admission control plugin AlwaysAdmit is not set"),
		cp("CIS-K8s-1.2.15", "Ensure that the admission control plugin NodeRestriction is set"),
		cp("CIS-K8s-1.2.16", "Ensure that the --profiling argument is set to false"),
		cp("CIS-K8s-1.2.17", "Ensure that the --audit-log-path argument is set"),
		cp("CIS-K8s-1.2.27", "Ensure that the --service-account-lookup argument is set to true"),
		cp("CIS-K8s-1.2.29", "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate"),
		cp("CIS-K8s-1.2.30", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate"),
		cp("CIS-K8s-1.2.31", "Ensure that the --client-ca-file argument is set as appropriate"),
		cp("CIS-K8s-1.2.33", "Ensure that the --encryption-provider-config argument is set as appropriate"),
		wn("CIS-K8s-4.1.9", "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive"),
		wn("CIS-K8s-4.1.10", "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root"),
		wn("CIS-K8s-4.2.1", "Ensure that the --anonymous-auth argument is set to false"),
		wn("CIS-K8s-4.2.2", "Ensure that the --authorization-mode argument is not set to AlwaysAllow"),
		wn("CIS-K8s-4.2.3", "Ensure that the --client-ca-file argument is set as appropriate"),
		wn("CIS-K8s-4.2.4", "Verify that the --read-only-port argument is set to 0"),
		wn("CIS-K8s-4.2.5", "Ensure that the --streaming-connection-idle-timeout argument is not set to 0"),
		wn("CIS-K8s-4.2.6", "Ensure that the --make-iptables-util-chains argument is set to true"),
		wn("CIS-K8s-4.2.9", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate"),
		wn("CIS-K8s-4.2.10", "Ensure that the --rotate-certificates argument is not set to false"),
		cisItem("CIS-K8s-5.1.1", GroupCISPolicies, "Ensure that the cluster-admin role is only used where required",
			"the cluster's ClusterRoleBindings and RoleBindings granting cluster-admin to non-system subjects", featRBAC),
		cisItem("CIS-K8s-5.1.3", GroupCISPolicies, "Minimize wildcard use in Roles and ClusterRoles",
			"bindings of roles granting every verb on every resource to non-system subjects", featRBAC),
		pod("CIS-K8s-5.1.6", "Ensure that Service Account Tokens are only mounted where necessary"),
		pod("CIS-K8s-5.2.2", "Minimize the admission of privileged containers"),
		pod("CIS-K8s-5.2.3", "Minimize the admission of containers wishing to share the host process ID namespace"),
		pod("CIS-K8s-5.2.4", "Minimize the admission of containers wishing to share the host IPC namespace"),
		pod("CIS-K8s-5.2.5", "Minimize the admission of containers wishing to share the host network namespace"),
		pod("CIS-K8s-5.2.6", "Minimize the admission of containers with allowPrivilegeEscalation"),
		pod("CIS-K8s-5.2.7", "Minimize the admission of root containers"),
		pod("CIS-K8s-5.2.8", "Minimize the admission of containers with the NET_RAW capability"),
		pod("CIS-K8s-5.2.9", "Minimize the admission of containers with added capabilities"),
		pod("CIS-K8s-5.2.10", "Minimize the admission of containers with capabilities assigned"),
		pod("CIS-K8s-5.2.11", "Minimize the admission of Windows HostProcess containers"),
		pod("CIS-K8s-5.2.12", "Minimize the admission of HostPath volumes"),
		pod("CIS-K8s-5.2.13", "Minimize the admission of containers which use HostPorts"),
		cisItem("CIS-K8s-5.3.2", GroupCISPolicies, "Ensure that all Namespaces have Network Policies defined",
			"each non-system namespace that runs pods and its NetworkPolicies", "cluster component: NetworkPolicy review"),
		pod("CIS-K8s-5.7.2", "Ensure that the seccomp profile is set to docker/default in your pod definitions"),
	}
}

// AssessStandard assesses ev against a standard (StandardNIST800190,
// StandardCISDocker or StandardCISKubernetes).
func AssessStandard(standard string, ev *Evidence, set Settings, now time.Time) (*Report, error) {
	switch standard {
	case StandardNIST800190, "":
		return Assess(ev, set, now), nil
	case StandardCISDocker:
		return assessCISDocker(ev, set, now), nil
	case StandardCISKubernetes:
		return assessCISKubernetes(ev, set, now), nil
	}
	return nil, fmt.Errorf("%w %q: want %s, %s or %s", ErrStandard, standard, StandardNIST800190, StandardCISDocker, StandardCISKubernetes)
}

func assessCISDocker(ev *Evidence, set Settings, now time.Time) *Report {
	a := &assessment{ev: ev, set: set.withDefaults(), now: now.UTC(), scanned: map[string]*ImageEvidence{}}
	r := &Report{SchemaVersion: ReportSchemaVersion, Standard: StandardCISDocker,
		Title: "CIS Docker Benchmark §4: Container Images and Build File", GeneratedAt: a.now}
	for _, c := range CISDocker() {
		j := &judge{}
		switch c.ID {
		case "CIS-Docker-4.2", "CIS-Docker-4.11":
			j.need(cisManual[c.ID])
		case "CIS-Docker-4.4":
			a.cisPatched(j)
		case "CIS-Docker-4.5":
			a.cisContentTrust(j)
		case "CIS-Docker-4.10":
			a.cisImageFindings(j, c.ID, true)
		default:
			a.cisImageFindings(j, c.ID, false)
		}
		r.Controls = append(r.Controls, j.result(c))
	}
	r.finish([]string{GroupCISImages})
	return r
}

// cisImageFindings fails an image with a misconfiguration finding naming
// the item (any severity: a CIS item holds or not); secrets adds the
// secret scanner's findings.
func (a *assessment) cisImageFindings(j *judge, id string, secrets bool) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "misconfig") {
			j.fail("image", im.Ref, "the misconfiguration checks did not run in its latest scan", im.Link)
			return
		}
		var bad []string
		for _, f := range im.Findings {
			if (f.Kind == model.KindMisconfig && has(f.Controls, id)) || (secrets && f.Kind == model.KindSecret) {
				s := f.ID
				if f.Where != "" {
					s += " at " + f.Where
				}
				bad = append(bad, s)
			}
		}
		if secrets && !has(im.Scanners, "secret") {
			bad = append(bad, "the secret scanner did not run")
		}
		if len(bad) > 0 {
			j.fail("image", im.Ref, first(bad, 5), im.Link)
			return
		}
		j.pass("image", im.Ref, "no finding", im.Link)
	})
}

func (a *assessment) cisPatched(j *judge) {
	a.eachImage(j, func(im *ImageEvidence) {
		if !has(im.Scanners, "vuln") {
			j.fail("image", im.Ref, "the vulnerability scanner did not run in its latest scan", im.Link)
			return
		}
		var why []string
		for _, v := range im.Vulnerabilities {
			if v.Severity >= a.set.VulnThreshold && v.Fixed != "" {
				why = append(why, v.ID)
			}
		}
		if len(why) > 0 {
			why = []string{fmt.Sprintf("%d fixable vulnerabilities at %s or above: %s", len(why), a.set.VulnThreshold, first(why, 5))}
		}
		if plausibleBuild(im.BuiltAt) && a.now.Sub(im.BuiltAt) > a.set.MaxImageAge {
			why = append(why, fmt.Sprintf("not rebuilt for %d days", int(a.now.Sub(im.BuiltAt).Hours()/24)))
		}
		if len(why) > 0 {
			j.fail("image", im.Ref, strings.Join(why, "; "), im.Link)
			return
		}
		j.pass("image", im.Ref, "scanned "+im.ScannedAt.Format("2006-01-02")+", patched", im.Link)
	})
}

func (a *assessment) cisContentTrust(j *judge) {
	if len(a.ev.Policies) == 0 {
		j.need(reasonNoPolicy)
		return
	}
	covered := 0
	for i := range a.ev.Images {
		im := &a.ev.Images[i]
		if !a.signatureRequired(im.Ref) {
			continue
		}
		covered++
		switch s := im.Signature; {
		case s == nil:
			j.fail("image", im.Ref, "never verified", im.Link)
		case !s.Verified:
			j.fail("image", im.Ref, s.Reason, im.Link)
		default:
			j.pass("image", im.Ref, "signed by "+s.Signer, im.Link)
		}
	}
	if covered == 0 {
		j.need("not assessed: no policy requires signatures of the stored images (signatures rule)")
	}
}

func assessCISKubernetes(ev *Evidence, set Settings, now time.Time) *Report {
	a := &assessment{ev: ev, set: set.withDefaults(), now: now.UTC(), scanned: map[string]*ImageEvidence{}}
	r := &Report{SchemaVersion: ReportSchemaVersion, Standard: StandardCISKubernetes,
		Title: "CIS Kubernetes Benchmark: items read from the API and the nodes", GeneratedAt: a.now}
	for _, c := range CISKubernetes() {
		j := &judge{}
		switch {
		case c.Group == GroupCISControlPlane:
			a.cisClusterItem(j, c.ID)
		case c.Group == GroupCISWorkerNodes:
			a.cisNodeItem(j, c.ID)
		case c.ID == "CIS-K8s-5.1.1":
			a.cisBindings(j, "cluster-admin")
		case c.ID == "CIS-K8s-5.1.3":
			a.cisBindings(j, "wildcard")
		case c.ID == "CIS-K8s-5.3.2":
			a.cisNetworkPolicies(j)
		default:
			a.cisPodItem(j, c.ID)
		}
		r.Controls = append(r.Controls, j.result(c))
	}
	r.finish([]string{GroupCISControlPlane, GroupCISWorkerNodes, GroupCISPolicies})
	return r
}

// itemEvidence adds the posture items with id.
func itemEvidence(j *judge, owner string, its []posture.Item, id string) int {
	n := 0
	for _, it := range its {
		if it.ID != id {
			continue
		}
		detail := it.Title
		if it.Actual != "" {
			detail += ": " + it.Actual
		}
		if it.Source != "" {
			detail += " (" + it.Source + ")"
		}
		switch it.Status {
		case posture.Pass:
			j.pass("setting", owner, detail, "")
			n++
		case posture.Fail:
			j.fail("setting", owner, detail, "")
			n++
		}
	}
	return n
}

func (a *assessment) cisClusterItem(j *judge, id string) {
	read := 0
	a.eachCluster(j, func(c *posture.Cluster) {
		read += itemEvidence(j, c.Cluster, c.APIServer, id)
		if id == "CIS-K8s-1.2.1" && !slices.ContainsFunc(c.APIServer, func(it posture.Item) bool { return it.ID == id }) {
			read += itemEvidence(j, c.Cluster, c.Anonymous, id)
		}
	})
	if len(a.ev.Clusters) > 0 && read == 0 {
		j.need("not assessed: the API server's flags were not readable (no kube-apiserver pod: a managed or external control plane)")
	}
}

func (a *assessment) cisNodeItem(j *judge, id string) {
	kubelets := 0
	a.eachNode(j, func(n *posture.Node) {
		if !n.HasKubelet {
			return
		}
		kubelets++
		itemEvidence(j, n.Node, n.Kubelet, id)
	})
	if len(a.ev.Nodes) > 0 && kubelets == 0 {
		j.na = "not applicable: no node runs a kubelet"
	}
}

func (a *assessment) cisBindings(j *judge, reason string) {
	a.eachCluster(j, func(c *posture.Cluster) {
		bad := 0
		for _, b := range c.Bindings {
			if b.Allowed || b.Reason != reason {
				continue
			}
			bad++
			name := b.Name
			if b.Namespace != "" {
				name = b.Namespace + "/" + b.Name
			}
			j.fail("binding", b.Kind+" "+name, fmt.Sprintf("grants %s to %s", b.Role, strings.Join(b.Subjects, ", ")), "")
		}
		if bad == 0 {
			j.pass("cluster", c.Cluster, fmt.Sprintf("%d bindings reviewed, no %s grant to a non-system subject", c.BindingsReviewed, reason), "")
		}
	})
}

func (a *assessment) cisNetworkPolicies(j *judge) {
	a.eachCluster(j, func(c *posture.Cluster) {
		for _, ns := range c.Namespaces {
			if ns.Pods == 0 {
				continue
			}
			if len(ns.Policies) == 0 {
				j.fail("namespace", c.Cluster+"/"+ns.Name, fmt.Sprintf("no NetworkPolicy (%d pods)", ns.Pods), "")
				continue
			}
			j.pass("namespace", c.Cluster+"/"+ns.Name, "NetworkPolicies: "+strings.Join(ns.Policies, ", "), "")
		}
	})
	if len(a.ev.Clusters) > 0 && len(j.ev) == 0 {
		j.na = "not applicable: no application namespace runs pods"
	}
}

func (a *assessment) cisPodItem(j *judge, id string) {
	a.eachCluster(j, func(c *posture.Cluster) {
		if len(c.Pods) == 0 {
			return
		}
		bad := 0
		for _, pod := range c.Pods {
			var fs []string
			for _, f := range pod.Findings {
				if has(f.Controls, id) {
					fs = append(fs, f.ID+" "+f.Title)
				}
			}
			if len(fs) > 0 {
				bad++
				j.fail("pod", c.Cluster+"/"+pod.Namespace+"/"+pod.Name, first(fs, 4), "")
			}
		}
		if bad == 0 {
			j.pass("cluster", c.Cluster, fmt.Sprintf("%d running pods, none against the item", len(c.Pods)), "")
		}
	})
	if len(a.ev.Clusters) > 0 && len(j.ev) == 0 {
		j.na = "not applicable: no application pod runs"
	}
}
