package compliance

// Standard IDs, as the CLI (--standard) and the API (?standard=) name them.
const (
	StandardNIST800190    = "nist-800-190"
	StandardCISDocker     = "cis-docker"
	StandardCISKubernetes = "cis-kubernetes"
)

// Groups of NIST SP 800-190 (§3 risks, §4 countermeasures), in the guide's
// order; the seed numbering's first digit is the group's position.
const (
	GroupImage        = "image"
	GroupRegistry     = "registry"
	GroupOrchestrator = "orchestrator"
	GroupContainer    = "container"
	GroupHost         = "host"
)

// Groups lists the NIST groups in order.
var Groups = []string{GroupImage, GroupRegistry, GroupOrchestrator, GroupContainer, GroupHost}

// Control is one item of a standard: for NIST SP 800-190 a risk of §3
// with the countermeasures of §4.
type Control struct {
	// ID is the standard's own ID: the guide's §4.x.y ("4.1.1"), a CIS
	// item ("CIS-Docker-4.1", "CIS-K8s-4.2.1").
	ID string `json:"id"`
	// Seed is the seeds' numbering of the risk ("1.1" ... "5.5"); empty
	// outside NIST SP 800-190.
	Seed  string `json:"seed,omitempty"`
	Group string `json:"group"`
	// Title names the risk (NIST) or the item (CIS).
	Title string `json:"title"`
	// Countermeasure is the guide's §4 text, condensed (NIST), or the
	// benchmark's recommendation (CIS).
	Countermeasure string `json:"countermeasure"`
	// Feature names the mamori feature that implements the countermeasure.
	Feature string `json:"feature"`
	// Reads says what evidence the assessment reads.
	Reads string `json:"reads"`
	// Tests name the tests that make the control fail (package and test
	// name): TestEachControlFails/<ID> always, e2e tests where one exists.
	Tests []string `json:"tests"`
}

// failingTest is the unit test every control has (assess_test.go).
func failingTest(id string) string { return "internal/compliance TestEachControlFails/" + id }

// e2eTest is the cluster e2e that flips controls with deliberate
// violations (internal/compliance/e2e).
const e2eTest = "internal/compliance/e2e TestReportBeforeAndAfterViolations"

// NIST800190 returns the 23 risks of NIST SP 800-190 with their
// countermeasures, in the guide's order. §4.6 (hardware roots of trust) is
// not one of the 23 risks and is listed in docs/compliance.md as not
// assessed.
func NIST800190() []Control {
	cs := []Control{
		{ID: "4.1.1", Seed: "1.1", Group: GroupImage, Title: "Image vulnerabilities",
			Countermeasure: "Use container-specific vulnerability management tools and processes for images that cover the whole image " +
				"lifecycle (build, registry, runtime), see into every layer (base OS packages, application frameworks, custom software), " +
				"and enforce policy-driven quality gates at each stage so that only images meeting the organization's vulnerability " +
				"and configuration policies progress (for example, no vulnerability with a CVSS rating above a threshold).",
			Feature: "image scanner (mamori image / registry rescans) with inventory + match against the vulnerability DB; CI gate and admission policy",
			Reads:   "every image's latest scan: vulnerability scanner ran, no fixable vulnerability at or above the threshold severity"},
		{ID: "4.1.2", Seed: "1.2", Group: GroupImage, Title: "Image configuration defects",
			Countermeasure: "Adopt tools and processes to validate and enforce compliance with secure configuration best practices: " +
				"centralized reporting and monitoring of each image's compliance state, enforcement that prevents non-compliant images " +
				"from running, and base layers from trusted sources that are kept current. Images should run as a non-privileged user " +
				"and not run SSH or other remote administration tools.",
			Feature: "misconfiguration checks of images and Dockerfiles (CIS Docker Benchmark §4)",
			Reads:   "misconfiguration findings serving 4.1.2 at or above the threshold severity on each scanned image"},
		{ID: "4.1.3", Seed: "1.3", Group: GroupImage, Title: "Embedded malware",
			Countermeasure: "Continuously monitor all images for embedded malware, with signature sets and behavioral detection " +
				"heuristics based largely on actual 'in the wild' attacks.",
			Feature: "malware scanning of every image layer (ClamAV, YARA, hash lists, OSV MAL-* packages)",
			Reads:   "every image's latest scan ran the malware scanner and found nothing"},
		{ID: "4.1.4", Seed: "1.4", Group: GroupImage, Title: "Embedded clear text secrets",
			Countermeasure: "Secrets should be stored outside of images and provided dynamically at runtime as needed " +
				"(orchestrator secret management). Tools should discover secrets embedded in images and fail the build or deployment.",
			Feature: "secret scanning of every image layer (built-in rules, entropy, decoding)",
			Reads:   "every image's latest scan ran the secret scanner and found no secret"},
		{ID: "4.1.5", Seed: "1.5", Group: GroupImage, Title: "Use of untrusted images",
			Countermeasure: "Maintain a set of trusted images and registries and ensure that only images from this set are permitted " +
				"to run, enforced centrally with cryptographic signatures that are verified before a container runs, and " +
				"continuously monitored.",
			Feature: "image signature verification (cosign signatures, attestations, sigstore bundles) in mamori image --verify, registry scans and the admission rule 'images from these registries must be signed'",
			Reads:   "a trusted-image rule in the policy, in block mode; every image from a registry that requires signatures verified"},
		{ID: "4.2.1", Seed: "2.1", Group: GroupRegistry, Title: "Insecure connections to registries",
			Countermeasure: "Configure development tools, orchestrators and container runtimes to connect to registries only over " +
				"encrypted channels, so that all data pushed to and pulled from a registry is encrypted in transit and the " +
				"registry's identity is verified.",
			Feature: "registry probe: TLS with a certificate that verifies against the system roots",
			Reads:   "each configured registry's probe: TLS, a valid certificate, not marked insecure"},
		{ID: "4.2.2", Seed: "2.2", Group: GroupRegistry, Title: "Stale images in registries",
			Countermeasure: "Remove unsafe, vulnerable images from registries (time-triggered pruning and labels), and operate " +
				"with immutable names that specify discrete versions of images (not 'latest'), so that only up-to-date " +
				"images are used.",
			Feature: "registry rescans; image age, last scan against the vulnerability DB's build time, 'latest' in use",
			Reads:   "each registry image: rebuilt within the limit, scanned since the last DB update; no running container on 'latest'"},
		{ID: "4.2.3", Seed: "2.3", Group: GroupRegistry, Title: "Insufficient authentication and authorization restrictions",
			Countermeasure: "All access to registries that contain proprietary or sensitive images should require authentication; " +
				"write access should be limited to automated build processes and audited.",
			Feature: "registry probe: anonymous pull of a private repository must be refused",
			Reads:   "each registry configured with credentials: an anonymous pull of its repositories answered 401/403"},
		{ID: "4.3.1", Seed: "3.1", Group: GroupOrchestrator, Title: "Unbounded administrative access",
			Countermeasure: "Orchestrators should use a least-privilege access model in which users are granted the ability to " +
				"perform only the specific actions on the specific hosts, containers and images their job roles require.",
			Feature: "cluster component: RBAC review (cluster-admin and wildcard bindings to non-system subjects)",
			Reads:   "the cluster's ClusterRoleBindings and RoleBindings, with the roles they grant"},
		{ID: "4.3.2", Seed: "3.2", Group: GroupOrchestrator, Title: "Unauthorized access",
			Countermeasure: "Access to cluster-wide administrative accounts should be tightly controlled, with strong " +
				"authentication; anonymous access should be refused and data encrypted at rest.",
			Feature: "cluster component: anonymous API probes; agent: kubelet authentication settings (CIS Kubernetes 4.2.1, 4.2.2)",
			Reads:   "anonymous requests to the API server (what they may list), the kubelet's anonymous-auth and authorization mode"},
		{ID: "4.3.3", Seed: "3.3", Group: GroupOrchestrator, Title: "Poorly separated inter-container network traffic",
			Countermeasure: "Orchestrators should segment network traffic into discrete virtual networks by sensitivity level, " +
				"so that apps of different sensitivity do not share a network.",
			Feature: "cluster component: NetworkPolicy review (a default-deny ingress policy in every application namespace)",
			Reads:   "each non-system namespace and its NetworkPolicies"},
		{ID: "4.3.4", Seed: "3.4", Group: GroupOrchestrator, Title: "Mixing of workload sensitivity levels",
			Countermeasure: "Orchestrators should be configured to isolate deployments to specific sets of hosts by sensitivity " +
				"level, so that a host runs containers of one sensitivity level only.",
			Feature: "cluster component: workloads of different sensitivity labels sharing nodes",
			Reads:   "running pods by node with their sensitivity label (mamori.io/sensitivity)"},
		{ID: "4.3.5", Seed: "3.5", Group: GroupOrchestrator, Title: "Orchestrator node trust",
			Countermeasure: "Orchestration platforms should provide secure configuration by default: nodes authenticated and " +
				"their communications encrypted, the ability to isolate compromised nodes, and cluster-wide configuration " +
				"that cannot be changed by one node.",
			Feature: "agent: kubelet configuration items of the CIS Kubernetes Benchmark §4 (certificates, rotation, read-only port, file permissions)",
			Reads:   "each node's kubelet configuration and files, item by CIS ID"},
		{ID: "4.4.1", Seed: "4.1", Group: GroupContainer, Title: "Vulnerabilities within the runtime software",
			Countermeasure: "Monitor the container runtime for vulnerabilities and use tools that detect and prevent exploitation " +
				"of known runtime vulnerabilities; keep the runtime software up to date.",
			Feature: "agent: host inventory (containerd, runc, kubelet versions) matched by the server against the vulnerability DB",
			Reads:   "each node's runtime components with their versions and matched vulnerabilities"},
		{ID: "4.4.2", Seed: "4.2", Group: GroupContainer, Title: "Unbounded network access from containers",
			Countermeasure: "Control the egress network traffic sent by containers: at a minimum, ensure containers cannot send " +
				"traffic across networks of different sensitivity, using app-aware network filtering.",
			Feature: "cluster component: default-deny egress NetworkPolicies; no workload on the host network",
			Reads:   "each non-system namespace's egress policies; running pods with hostNetwork"},
		{ID: "4.4.3", Seed: "4.3", Group: GroupContainer, Title: "Insecure container runtime configurations",
			Countermeasure: "Automate compliance with container runtime configuration standards (CIS benchmarks), and use mandatory " +
				"access control and secure computing profiles; refuse privileged containers and other dangerous settings.",
			Feature: "admission policy (Pod Security Standards) and misconfiguration checks of running workloads",
			Reads:   "running pods' Pod Security findings serving 4.4.3 (privileged, capabilities, host paths, seccomp)"},
		{ID: "4.4.4", Seed: "4.4", Group: GroupContainer, Title: "App vulnerabilities",
			Countermeasure: "Use container-aware runtime defense that profiles each app's normal behavior and detects and prevents " +
				"anomalies (unexpected processes, file writes, network connections); run containers with read-only root " +
				"file systems.",
			Feature: "agent: eBPF runtime sensor, rules and drift detection",
			Reads:   "each node's runtime sensor state as the agent reports it, and unmitigated critical runtime events"},
		{ID: "4.4.5", Seed: "4.5", Group: GroupContainer, Title: "Rogue containers",
			Countermeasure: "Institute separate environments for development, test and production; control which images may run, " +
				"and track every running container so that none runs outside the orchestrator or from an image that was never vetted.",
			Feature: "agent: the node's container inventory (containerd, Docker) vs the orchestrator's pods; running images vs scanned images",
			Reads:   "containers no orchestrator manages; running images never scanned"},
		{ID: "4.5.1", Seed: "5.1", Group: GroupHost, Title: "Large attack surface",
			Countermeasure: "Use container-specific host OSs where possible; otherwise disable unneeded services and apply the " +
				"OS's hardening guidance, minimizing the network services a host exposes.",
			Feature: "agent: listening services of the node",
			Reads:   "each node's sockets listening beyond loopback, against the expected services"},
		{ID: "4.5.2", Seed: "5.2", Group: GroupHost, Title: "Shared kernel",
			Countermeasure: "Do not mix containerized and non-containerized workloads on the same host, and group containers " +
				"on hosts by purpose and sensitivity; containers must not share the host's namespaces.",
			Feature: "cluster component: pods sharing the host's PID, IPC or network namespace",
			Reads:   "running pods' Pod Security findings serving 4.5.2 (hostPID, hostIPC, hostNetwork)"},
		{ID: "4.5.3", Seed: "5.3", Group: GroupHost, Title: "Host OS component vulnerabilities",
			Countermeasure: "Keep all host OS components (kernel, packages, runtime, orchestrator agents) patched, with tools " +
				"that identify vulnerabilities in them.",
			Feature: "agent: the node's OS package and kernel inventory (the catalogers of mamori rootfs /) matched by the server",
			Reads:   "each node's OS packages and kernel with matched vulnerabilities"},
		{ID: "4.5.4", Seed: "5.4", Group: GroupHost, Title: "Improper user access rights",
			Countermeasure: "Require that all authentication to the OS is audited and that users rarely log in to hosts; grant " +
				"no standing administrative rights, use least privilege, and harden remote access.",
			Feature: "agent: users with login shells, sudoers rules, SSH daemon settings",
			Reads:   "each node's /etc/passwd login users, sudoers rules beyond the allowed ones, sshd PermitRootLogin and PasswordAuthentication"},
		{ID: "4.5.5", Seed: "5.5", Group: GroupHost, Title: "Host OS file system tampering",
			Countermeasure: "Ensure containers run with the minimal set of file system permissions required, never mount " +
				"sensitive host directories, and monitor the host file system for changes (integrity monitoring, anti-malware).",
			Feature: "agent: file integrity monitoring and on-access anti-malware; cluster component: host path mounts of running pods",
			Reads:   "each node's integrity and anti-malware module state; running pods' Pod Security findings serving 4.5.5"},
	}
	// The controls the cluster e2e flips with a deliberate violation.
	e2e := map[string]bool{"4.1.5": true, "4.2.2": true, "4.2.3": true, "4.3.1": true, "4.3.3": true,
		"4.4.2": true, "4.4.3": true, "4.5.4": true}
	for i := range cs {
		cs[i].Tests = []string{failingTest(cs[i].ID)}
		if e2e[cs[i].ID] {
			cs[i].Tests = append(cs[i].Tests, e2eTest)
		}
	}
	return cs
}

// SeedOf maps a seed ID ("1.5") or a guide ID ("4.1.5") to the guide ID.
func SeedOf(id string) (string, bool) {
	for _, c := range NIST800190() {
		if c.ID == id || c.Seed == id {
			return c.ID, true
		}
	}
	return "", false
}
