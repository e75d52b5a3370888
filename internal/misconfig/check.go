// Package misconfig checks container images, Dockerfiles and Kubernetes
// manifests against the CIS Docker Benchmark §4, the Kubernetes Pod
// Security Standards (baseline and restricted), the Kubernetes RBAC good
// practices and the NIST SP 800-190 countermeasures.
//
// Every check is a pure function of its input — an image configuration
// plus facts from the image's inventory (CheckImage), a Dockerfile
// (CheckDockerfile) or manifest documents (CheckManifests) — so that the
// CLI, the registry scanner and the admission webhook run the same code.
// Checks() lists every check with its stable ID, severity and controls.
package misconfig

import (
	"errors"
	"sort"
	"strings"

	"mamori/internal/model"
)

// Sentinel errors.
var (
	// ErrParse is returned (wrapped) for input that cannot be parsed.
	ErrParse = errors.New("misconfig: parse error")
	// ErrTooLarge is returned for input above a size or count cap.
	ErrTooLarge = errors.New("misconfig: input too large")
)

// Targets of checks.
const (
	TargetImage      = "image"
	TargetDockerfile = "dockerfile"
	TargetKubernetes = "kubernetes"
)

// CheckInfo describes one check.
type CheckInfo struct {
	// ID is stable: MSC-IMG-nnn, MSC-DF-nnn, MSC-K8S-nnn.
	ID       string
	Title    string
	Severity model.Severity
	// Target is what the check reads: TargetImage, TargetDockerfile or TargetKubernetes.
	Target      string
	Description string
	Remediation string
	// Controls lists NIST SP 800-190 controls ("4.1.2") and CIS items
	// ("CIS-Docker-4.1", "CIS-K8s-5.2.2"); PSS levels appear as
	// "PSS-baseline" / "PSS-restricted".
	Controls []string
	// Peers lists the IDs of the equivalent checks of other scanners
	// (dockle "DKL-LI-0001", "CIS-DI-0009"; trivy "DS-0025", "KSV-0041"), for
	// users moving from them; empty when neither has one.
	Peers      []string
	References []string
}

// NIST SP 800-190 controls used below (§4).
const (
	nistImageConfig     = "4.1.2" // image configuration defects
	nistImageSecrets    = "4.1.4" // embedded clear text secrets
	nistUntrustedImages = "4.1.5" // use of untrusted images
	nistStaleImages     = "4.2.2" // stale images in registries
	nistOrchAdmin       = "4.3.1" // unbounded administrative access (orchestrator)
	nistOrchAccess      = "4.3.2" // unauthorized access (orchestrator)
	nistOrchNetwork     = "4.3.3" // poorly separated inter-container network traffic
	nistNetAccess       = "4.4.2" // unbounded network access from containers
	nistRuntimeConfig   = "4.4.3" // insecure container runtime configurations
	nistSharedKernel    = "4.5.2" // shared kernel
	nistHostFS          = "4.5.5" // host file system tampering
)

const (
	pssBaseline   = "PSS-baseline"
	pssRestricted = "PSS-restricted"
	refCISDocker  = "https://www.cisecurity.org/benchmark/docker"
	refPSS        = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
	refNIST       = "https://doi.org/10.6028/NIST.SP.800-190"
	refRBAC       = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
)

// Checks returns every check, image checks first, then Dockerfile and
// Kubernetes ones, each in ID order: the families' lists, each in
// the file that holds its checks' logic and beside its tests. The slice is
// freshly built.
func Checks() []CheckInfo {
	var out []CheckInfo
	for _, family := range families {
		out = append(out, family()...)
	}
	rank := map[string]int{TargetImage: 0, TargetDockerfile: 1, TargetKubernetes: 2}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if rank[a.Target] != rank[b.Target] {
			return rank[a.Target] < rank[b.Target]
		}
		return a.ID < b.ID
	})
	return out
}

// families is the explicit list of check families.
var families = []func() []CheckInfo{
	imageChecks,          // image.go: configuration and history
	fileModeChecks,       // filemode.go: setuid and world-writable files
	accountChecks,        // accounts.go: passwd, shadow, group
	leftoverChecks,       // leftovers.go: files only the build needed
	dockerfileChecks,     // dockerfile.go
	dockerfileLintChecks, // dockerfile_lint.go
	podSecurityChecks,    // k8s.go: Pod Security Standards and workload hygiene
	rbacChecks,           // rbac.go
}

// Severity shorthands of the check tables.
const (
	crit = model.SeverityCritical
	high = model.SeverityHigh
	med  = model.SeverityMedium
	low  = model.SeverityLow
)

// Constructors of the check tables: each target's defaults (references).
func img(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
	return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetImage, Description: desc, Remediation: fix,
		Controls: controls, References: []string{refCISDocker, refNIST}}
}

func df(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
	c := img(id, title, sev, desc, fix, controls...)
	c.Target = TargetDockerfile
	return c
}

func k8s(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
	return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetKubernetes, Description: desc, Remediation: fix,
		Controls: controls, References: []string{refPSS, refNIST}}
}

func rbac(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
	return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetKubernetes, Description: desc, Remediation: fix,
		Controls: controls, References: []string{refRBAC, refNIST}}
}

// withPeers names the equivalent checks of dockle (v0.4.15) and trivy
// (trivy-checks bundled with v0.74.0); see bench/README.md.
func (c CheckInfo) withPeers(ids ...string) CheckInfo {
	c.Peers = ids
	return c
}

// checkIndex returns Checks() by ID.
func checkIndex() map[string]CheckInfo {
	m := map[string]CheckInfo{}
	for _, c := range Checks() {
		m[c.ID] = c
	}
	return m
}

// maxEvidence caps the evidence copied from the input (a RUN line can be
// kilobytes long).
const maxEvidence = 200

// catalog is built once: Checks() is immutable data.
var catalog = checkIndex()

// newFinding builds a finding of check id at loc, with evidence (the
// offending value or instruction).
func newFinding(id string, loc model.Location, evidence string) model.Finding {
	c, ok := catalog[id]
	if !ok {
		// Programming error; return something visible rather than panic.
		return model.Finding{Kind: model.KindMisconfig, ID: id, Title: id, Location: loc, Evidence: evidence}
	}
	if len(evidence) > maxEvidence {
		evidence = evidence[:maxEvidence] + "..."
	}
	return model.Finding{
		Kind:        model.KindMisconfig,
		ID:          c.ID,
		Title:       c.Title,
		Severity:    c.Severity,
		Location:    loc,
		Category:    categoryOf(c.Target),
		Description: c.Description,
		Remediation: c.Remediation,
		Evidence:    strings.ToValidUTF8(evidence, "?"),
		References:  append([]string(nil), c.References...),
		Controls:    append([]string(nil), c.Controls...),
	}
}

func categoryOf(target string) string {
	switch target {
	case TargetImage:
		return "Image"
	case TargetDockerfile:
		return "Dockerfile"
	default:
		return "Kubernetes"
	}
}
