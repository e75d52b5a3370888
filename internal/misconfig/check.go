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

// Check IDs.
const (
	ImgRootUser         = "MSC-IMG-001"
	ImgNoHealthcheck    = "MSC-IMG-002"
	ImgUpdateAlone      = "MSC-IMG-003"
	ImgAddRemote        = "MSC-IMG-004"
	ImgSecrets          = "MSC-IMG-005"
	ImgRemoteAdminPkg   = "MSC-IMG-006"
	ImgPrivilegedPort   = "MSC-IMG-007"
	ImgSetuid           = "MSC-IMG-008"
	ImgRemoteAdminPort  = "MSC-IMG-009"
	ImgWorldWritable    = "MSC-IMG-010"
	ImgEmptyPassword    = "MSC-IMG-011"
	ImgDuplicateAccount = "MSC-IMG-012"
	ImgLeftoverFile     = "MSC-IMG-013"
	ImgSensitiveVolume  = "MSC-IMG-014"
	ImgLatestBase       = "MSC-IMG-015"
	ImgAddLocal         = "MSC-IMG-016"
	DFRootUser          = "MSC-DF-001"
	DFNoHealthcheck     = "MSC-DF-002"
	DFAddURL            = "MSC-DF-003"
	DFAddLocal          = "MSC-DF-004"
	DFUpdateAlone       = "MSC-DF-005"
	DFUnpinnedBase      = "MSC-DF-006"
	DFSudo              = "MSC-DF-007"
	DFPipeToShell       = "MSC-DF-008"
	DFSecretValue       = "MSC-DF-009"
	DFSensitiveArg      = "MSC-DF-010"
	DFNoInstallRecs     = "MSC-DF-011"
	DFExposeSSH         = "MSC-DF-012"
	DFChmodWorld        = "MSC-DF-013"
	DFPkgCache          = "MSC-DF-014"
	DFDistUpgrade       = "MSC-DF-015"
	DFAptNoYes          = "MSC-DF-016"
	DFRepeated          = "MSC-DF-017"
	DFStageAlias        = "MSC-DF-018"
	DFPortRange         = "MSC-DF-019"
	DFWorkdirRelative   = "MSC-DF-020"
	DFWorkdirSystem     = "MSC-DF-021"
	DFCopyDestSlash     = "MSC-DF-022"
	DFRunCd             = "MSC-DF-023"
	DFCurlAndWget       = "MSC-DF-024"
	DFMaintainer        = "MSC-DF-025"
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
	// RBAC (Role, ClusterRole, RoleBinding, ClusterRoleBinding).
	K8sRBACWildcard         = "MSC-K8S-028"
	K8sRBACAllResources     = "MSC-K8S-029"
	K8sRBACWildcardVerb     = "MSC-K8S-030"
	K8sRBACSecretsCluster   = "MSC-K8S-031"
	K8sRBACSecretsNamespace = "MSC-K8S-032"
	K8sRBACNodeProxy        = "MSC-K8S-033"
	K8sRBACWorkloads        = "MSC-K8S-034"
	K8sRBACConfigMaps       = "MSC-K8S-035"
	K8sRBACEscalate         = "MSC-K8S-036"
	K8sRBACExec             = "MSC-K8S-037"
	K8sRBACNetworking       = "MSC-K8S-038"
	K8sRBACAdminBinding     = "MSC-K8S-039"
	K8sRBACBroadSubject     = "MSC-K8S-040"
)

// Checks returns every check, in ID order. The slice is freshly built.
func Checks() []CheckInfo {
	crit, high, med, low := model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow
	img := func(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
		return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetImage, Description: desc, Remediation: fix,
			Controls: controls, References: []string{refCISDocker, refNIST}}
	}
	rbac := func(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
		return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetKubernetes, Description: desc, Remediation: fix,
			Controls: controls, References: []string{refRBAC, refNIST}}
	}
	df := func(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
		c := img(id, title, sev, desc, fix, controls...)
		c.Target = TargetDockerfile
		return c
	}
	k8s := func(id, title string, sev model.Severity, desc, fix string, controls ...string) CheckInfo {
		return CheckInfo{ID: id, Title: title, Severity: sev, Target: TargetKubernetes, Description: desc, Remediation: fix,
			Controls: controls, References: []string{refPSS, refNIST}}
	}
	checks := []CheckInfo{
		img(ImgRootUser, "Image runs as root", high,
			"The image configuration sets no user, or root (User empty, \"root\", \"0\", \"0:0\"): its processes run as root unless the runtime overrides it.",
			"Create an unprivileged user and end the Dockerfile with USER <name or uid>.", nistImageConfig, "CIS-Docker-4.1"),
		img(ImgNoHealthcheck, "Image has no HEALTHCHECK", low,
			"The image configuration has no health check, so the engine cannot tell a hung container from a healthy one.",
			"Add a HEALTHCHECK instruction (orchestrators use their own probes instead).", nistImageConfig, "CIS-Docker-4.6"),
		img(ImgUpdateAlone, "Package index update in its own layer", med,
			"A history entry runs a package index update (apt-get update, apk update, yum makecache ...) without installing in the same RUN; the cached index goes stale and later installs get old packages.",
			"Update and install in one RUN: apt-get update && apt-get install -y ...", nistImageConfig, "CIS-Docker-4.7"),
		img(ImgAddRemote, "ADD from a remote URL", med,
			"A layer was added from a URL with ADD: the content is fetched unverified at build time.",
			"Download with curl or wget and verify a checksum, or use ADD --checksum; prefer COPY for local files.", nistImageConfig, nistUntrustedImages, "CIS-Docker-4.9"),
		img(ImgSecrets, "Secrets in the image configuration", crit,
			"The environment, labels, entrypoint or build history (where build arguments are recorded) holds credentials; anyone who can pull the image can read them.",
			"Remove the secret, revoke it, and pass secrets at run time or with BuildKit secret mounts.", nistImageSecrets, "CIS-Docker-4.10"),
		img(ImgRemoteAdminPkg, "Remote administration daemon installed", high,
			"A package providing a remote login or file-transfer daemon (sshd, telnetd, ftpd, rsh, VNC ...) is installed; containers should be administered through the runtime, not a daemon inside them.",
			"Remove the package from the image.", nistImageConfig, "CIS-Docker-4.3", "CIS-Docker-5.7"),
		img(ImgPrivilegedPort, "Exposes a privileged port", low,
			"The image exposes a TCP/UDP port below 1024, which needs root or CAP_NET_BIND_SERVICE to bind.",
			"Listen on a port at or above 1024 and map it at run time.", nistImageConfig, "CIS-Docker-5.8"),
		img(ImgSetuid, "setuid or setgid file", low,
			"A regular file has the setuid or setgid bit: a local privilege escalation path if the program is exploitable.",
			"Remove the bit (chmod a-s) from files that do not need it, or run with no-new-privileges.", nistImageConfig, "CIS-Docker-4.8"),
		img(ImgRemoteAdminPort, "Exposes a remote administration port", med,
			"The image exposes port 22 (SSH) or 23 (telnet).",
			"Remove the EXPOSE and the daemon; use the runtime's exec for administration.", nistImageConfig, "CIS-Docker-5.7"),
		img(ImgWorldWritable, "World-writable file", med,
			"A regular file is writable by every user: any process in the container can change it.",
			"Remove the other-write bit (chmod o-w).", nistImageConfig, nistHostFS),
		img(ImgEmptyPassword, "Account with an empty password", high,
			"An account's password field is empty in /etc/shadow (or BSD /etc/master.passwd), or in /etc/passwd itself: su and login accept it with no password (pam_unix nullok, Debian's default). Locked fields (!, !!, *) are not empty. Alpine images before 3.9.2 shipped root this way (CVE-2019-5021).",
			"Lock the account (passwd -l NAME, or usermod -p '!' NAME), or remove it; set a password only if someone must log in.", nistImageConfig, "CIS-Docker-4.1"),
		img(ImgDuplicateAccount, "Duplicate user or group ID", med,
			"/etc/passwd gives one UID to several user names, or /etc/group one GID to several group names, or a name is defined twice: file ownership and audit trails cannot tell the accounts apart, and a second UID 0 name is a hidden root account.",
			"Give every account and group its own ID and remove the duplicates (userdel, groupdel or edit the files in the Dockerfile).", nistImageConfig),
		img(ImgLeftoverFile, "Unnecessary file in the image", low,
			"The image ships a file that only the build needed or that leaked in from a developer's machine: version-control metadata (.git, .svn, .hg: the source and its history), Dockerfiles and Compose files, cloud CLI profile directories (.aws, .azure, .gcp), IDE settings, caches, an SSH authorized_keys. This check reports that the file is there; credentials inside such files are reported by the secret scanner.",
			"Exclude it from the build context (.dockerignore) or delete it in the same RUN that created it; use multi-stage builds so that only the artefacts reach the final stage.", nistImageConfig, nistImageSecrets),
		img(ImgSensitiveVolume, "VOLUME on a system directory", med,
			"The image declares a VOLUME on a system directory (/, /etc, /root, /boot, /usr, /lib, /bin, /sbin, /var/run, /run, or /proc, /sys, /dev and below): the directory becomes a separate, persistent mount that outlives the container and image updates (a tampered /etc/passwd survives an upgrade), other containers can attach it with --volumes-from, and over /proc, /sys or /dev it hides the kernel interfaces the runtime sets up.",
			"Remove the VOLUME instruction; declare volumes only for application data directories.", nistImageConfig, nistRuntimeConfig),
		img(ImgLatestBase, "Base image tag latest or missing", med,
			"The image's org.opencontainers.image.base.name label names its base image by the tag latest or by no tag, with no base digest label: which base was used cannot be told, and rebuilds pick up whatever the tag points to.",
			"Build FROM a version tag and a digest, and record them in the base.name and base.digest labels.", nistUntrustedImages, nistStaleImages),
		img(ImgAddLocal, "ADD of a local file in the history", low,
			"A history entry (other than the base image's root file system) added local files with ADD rather than COPY (CIS Docker 4.9): ADD's implicit archive extraction and URL fetching are surprises waiting to happen. BuildKit history names the sources, and archives (a legitimate use of ADD) are not reported; the classic builder records only \"ADD file:<hash> in <dest>\", so those are all reported.",
			"Use COPY for local files and directories.", nistImageConfig, "CIS-Docker-4.9"),

		df(DFRootUser, "Final stage runs as root", high,
			"The last stage has no USER instruction, or its last USER is root (0).",
			"Add USER <non-root user> near the end of the final stage.", nistImageConfig, "CIS-Docker-4.1"),
		df(DFNoHealthcheck, "No HEALTHCHECK instruction", low,
			"The Dockerfile has no HEALTHCHECK (or HEALTHCHECK NONE).",
			"Add a HEALTHCHECK instruction (orchestrators use their own probes instead).", nistImageConfig, "CIS-Docker-4.6"),
		df(DFAddURL, "ADD from a URL", med,
			"ADD fetches a remote URL without verifying it.",
			"Use curl/wget with checksum verification, or ADD --checksum=sha256:...", nistImageConfig, nistUntrustedImages, "CIS-Docker-4.9"),
		df(DFAddLocal, "ADD used instead of COPY", low,
			"ADD of a local file that is not an archive: ADD's implicit extraction and URL handling are surprises waiting to happen.",
			"Use COPY.", nistImageConfig, "CIS-Docker-4.9"),
		df(DFUpdateAlone, "Package index update without install", med,
			"A RUN updates the package index (apt-get update, apk update ...) without installing in the same RUN; the layer cache keeps a stale index.",
			"Update and install in one RUN.", nistImageConfig, "CIS-Docker-4.7"),
		df(DFUnpinnedBase, "Base image not pinned", med,
			"FROM names an image with no tag or the tag latest: builds are not reproducible and may pull an untrusted or changed base.",
			"Pin the base image by a version tag and, better, a digest (image:tag@sha256:...).", nistUntrustedImages, nistStaleImages),
		df(DFSudo, "RUN uses sudo", med,
			"sudo in a Dockerfile hides privilege changes and leaves sudo installed.",
			"Run privileged steps before USER switches to the unprivileged user; do not install sudo.", nistImageConfig),
		df(DFPipeToShell, "Downloaded script piped into a shell", high,
			"A RUN pipes curl or wget output straight into a shell: whatever the server returns is executed unverified.",
			"Download to a file, verify its checksum or signature, then run it.", nistUntrustedImages, nistImageConfig),
		df(DFSecretValue, "Secret in ENV or ARG", crit,
			"An ENV or ARG instruction holds a credential; it is stored in the image configuration or its history.",
			"Remove and revoke it; use RUN --mount=type=secret or runtime secrets.", nistImageSecrets, "CIS-Docker-4.10"),
		df(DFSensitiveArg, "Secret passed as a build argument", med,
			"An ARG whose name says it holds a secret (PASSWORD, TOKEN, API_KEY ...): build argument values used by RUN are recorded in the image history.",
			"Use RUN --mount=type=secret,id=... instead of build arguments.", nistImageSecrets, "CIS-Docker-4.10"),
		df(DFNoInstallRecs, "apt-get install without --no-install-recommends", low,
			"apt-get install pulls recommended packages too, growing the attack surface.",
			"Add --no-install-recommends.", nistImageConfig, "CIS-Docker-4.3"),
		df(DFExposeSSH, "EXPOSE of a remote administration port", med,
			"The Dockerfile exposes port 22 (SSH) or 23 (telnet).",
			"Remove the EXPOSE and the daemon.", nistImageConfig, "CIS-Docker-5.7"),
		df(DFChmodWorld, "chmod makes files world-writable", med,
			"A RUN gives write permission to all users (chmod 777, 666, o+w, a+w).",
			"Grant write access to the owning user or group only.", nistImageConfig),
		df(DFPkgCache, "Package manager cache left in the layer", low,
			"A RUN leaves the package manager's index or cache in its layer: apt-get update without removing /var/lib/apt/lists, apk add without --no-cache, yum/dnf/microdnf install without a later clean all, zypper install without zypper clean. Later layers cannot shrink it, and the stale index is shipped. Cache mounts (RUN --mount=type=cache) are not reported.",
			"Clean in the same RUN: rm -rf /var/lib/apt/lists/*, apk add --no-cache, yum clean all, dnf clean all, microdnf clean all, zypper clean -a; or use a BuildKit cache mount.", nistImageConfig),
		df(DFDistUpgrade, "apt-get dist-upgrade in the build", low,
			"apt-get dist-upgrade (or full-upgrade) may install and remove packages to follow dependency changes, so the image drifts from its base release and builds stop being reproducible.",
			"Use a newer base image, or apt-get upgrade of the packages you need.", nistImageConfig, nistStaleImages),
		df(DFAptNoYes, "apt-get install without -y", low,
			"apt-get install without -y (--yes, --assume-yes or -qq) asks for confirmation whenever it would install more than named, and a build has no one to answer: the build aborts.",
			"Add -y.", nistImageConfig),
		df(DFRepeated, "CMD, ENTRYPOINT or HEALTHCHECK repeated in a stage", low,
			"A stage has more than one CMD, ENTRYPOINT or HEALTHCHECK: only the last takes effect, so the image runs or probes something other than what the first one reads.",
			"Keep one of each per stage.", nistImageConfig),
		df(DFStageAlias, "Stage name reused or copied from itself", low,
			"Two FROM instructions name the same stage (AS name), or COPY --from names the stage it is in: the build fails, or copies from a stage other than the one intended.",
			"Give every stage its own name, and copy only from earlier stages.", nistImageConfig),
		df(DFPortRange, "EXPOSE of a port out of range", low,
			"EXPOSE names a port above 65535.",
			"Expose a port between 1 and 65535.", nistImageConfig),
		df(DFWorkdirRelative, "WORKDIR path not absolute", low,
			"A relative WORKDIR resolves against the previous one (or the base image's), so where files land depends on instructions elsewhere.",
			"Use an absolute path (or a variable holding one).", nistImageConfig),
		df(DFWorkdirSystem, "WORKDIR in a system directory", med,
			"WORKDIR is /proc, /sys, /dev, /boot, /initrd, /lost+found or below: at run time these hold the kernel's interfaces and boot files, so the process starts inside them and relative writes land there.",
			"Use an application directory such as /app or /srv/app.", nistImageConfig, nistRuntimeConfig),
		df(DFCopyDestSlash, "COPY or ADD of several sources to a destination without a trailing slash", low,
			"With more than one source, COPY and ADD need a directory destination ending in /; without it the build fails.",
			"End the destination with /.", nistImageConfig),
		df(DFRunCd, "RUN cd instead of WORKDIR", low,
			"A RUN changes directory with cd: the change lasts for that RUN only, which hides where later instructions run and makes the Dockerfile hard to follow.",
			"Use WORKDIR to change directory.", nistImageConfig),
		df(DFCurlAndWget, "Both curl and wget used", low,
			"RUN instructions call both curl and wget: two download tools where one does, more in the image and in its attack surface.",
			"Pick one of curl or wget.", nistImageConfig),
		df(DFMaintainer, "Deprecated MAINTAINER instruction", low,
			"MAINTAINER is deprecated since Docker 1.13.",
			"Use LABEL org.opencontainers.image.authors=\"...\" instead.", nistImageConfig),

		k8s(K8sPrivileged, "Privileged container", crit,
			"securityContext.privileged is true: the container has all capabilities and device access — root on the node.",
			"Remove privileged: true.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.2"),
		k8s(K8sHostPID, "Host PID namespace shared", high,
			"hostPID: true lets the pod see and signal every process on the node.",
			"Remove hostPID.", nistRuntimeConfig, nistSharedKernel, pssBaseline, "CIS-K8s-5.2.3"),
		k8s(K8sHostIPC, "Host IPC namespace shared", high,
			"hostIPC: true shares the node's System V IPC and POSIX message queues.",
			"Remove hostIPC.", nistRuntimeConfig, nistSharedKernel, pssBaseline, "CIS-K8s-5.2.4"),
		k8s(K8sHostNetwork, "Host network namespace shared", high,
			"hostNetwork: true puts the pod on the node's network stack, bypassing network policies.",
			"Remove hostNetwork.", nistRuntimeConfig, nistNetAccess, pssBaseline, "CIS-K8s-5.2.5"),
		k8s(K8sHostProcess, "Windows HostProcess container", high,
			"windowsOptions.hostProcess: true runs the container as a process on the Windows node.",
			"Remove hostProcess.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.11"),
		k8s(K8sCapsBaseline, "Capability added beyond the baseline set", high,
			"capabilities.add names a capability outside the Pod Security Standards baseline set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).",
			"Remove the capability (SYS_ADMIN, NET_ADMIN, NET_RAW ... are rarely needed).", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.9"),
		k8s(K8sHostPath, "hostPath volume", high,
			"A hostPath volume exposes the node's file system to the pod.",
			"Use a PersistentVolumeClaim, emptyDir, configMap or secret volume instead.", nistHostFS, pssBaseline, "CIS-K8s-5.2.12"),
		k8s(K8sHostPathSens, "hostPath to a sensitive host path", crit,
			"A hostPath volume mounts a sensitive node path (/, /etc, /proc, /boot, /root, the container runtime socket, /var/lib/kubelet ...): a path to node takeover.",
			"Remove the volume.", nistHostFS, nistRuntimeConfig, pssBaseline, "CIS-K8s-5.2.12"),
		k8s(K8sHostPort, "hostPort used", med,
			"A container port is bound on the node (hostPort), bypassing services and network policy.",
			"Remove hostPort; expose the pod with a Service.", nistNetAccess, pssBaseline, "CIS-K8s-5.2.13"),
		k8s(K8sAppArmor, "AppArmor disabled", med,
			"The AppArmor profile is set to unconfined (appArmorProfile.type Unconfined or the container.apparmor.security.beta.kubernetes.io annotation).",
			"Use RuntimeDefault or a Localhost profile.", nistRuntimeConfig, pssBaseline),
		k8s(K8sSELinux, "SELinux options not allowed", med,
			"seLinuxOptions sets a user or role, or a type other than container_t, container_init_t, container_kvm_t or container_engine_t.",
			"Remove the custom SELinux options.", nistRuntimeConfig, pssBaseline),
		k8s(K8sProcMount, "/proc mount unmasked", med,
			"securityContext.procMount is not Default: masked /proc paths become visible.",
			"Remove procMount or set it to Default.", nistRuntimeConfig, pssBaseline),
		k8s(K8sSeccompBaseline, "Seccomp disabled", med,
			"seccompProfile.type is Unconfined: every system call is allowed.",
			"Use seccompProfile type RuntimeDefault or Localhost.", nistRuntimeConfig, pssBaseline, "CIS-K8s-5.7.2"),
		k8s(K8sSysctls, "Unsafe sysctl", high,
			"securityContext.sysctls sets a sysctl outside the Pod Security Standards safe set.",
			"Remove the sysctl.", nistRuntimeConfig, nistSharedKernel, pssBaseline),
		k8s(K8sVolumeTypes, "Volume type not allowed by the restricted profile", low,
			"The restricted profile allows only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes.",
			"Use a PersistentVolumeClaim or one of the allowed types.", nistRuntimeConfig, pssRestricted),
		k8s(K8sPrivEscalation, "Privilege escalation allowed", med,
			"allowPrivilegeEscalation is not set to false: setuid binaries and file capabilities can raise privileges.",
			"Set securityContext.allowPrivilegeEscalation: false.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.6"),
		k8s(K8sRunAsNonRoot, "runAsNonRoot not set", med,
			"Neither the pod nor the container sets runAsNonRoot: true, so the image's user (often root) is used.",
			"Set securityContext.runAsNonRoot: true (and a non-zero runAsUser).", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.7"),
		k8s(K8sRunAsUserRoot, "Runs as UID 0", high,
			"runAsUser is 0 (root).",
			"Set runAsUser to a non-zero UID.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.7"),
		k8s(K8sSeccompRestrict, "Seccomp profile not set", low,
			"The restricted profile requires seccompProfile.type RuntimeDefault or Localhost on the pod or every container.",
			"Set securityContext.seccompProfile.type: RuntimeDefault.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.7.2"),
		k8s(K8sCapsDropAll, "Capabilities not dropped", low,
			"capabilities.drop does not include ALL: the container keeps the runtime's default capabilities (NET_RAW among them).",
			"Set capabilities.drop: [ALL] and add back only NET_BIND_SERVICE if needed.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.8", "CIS-K8s-5.2.10"),
		k8s(K8sCapsAddRestrict, "Capability added beyond NET_BIND_SERVICE", med,
			"The restricted profile allows adding only NET_BIND_SERVICE.",
			"Remove the added capability.", nistRuntimeConfig, pssRestricted, "CIS-K8s-5.2.9"),
		k8s(K8sReadOnlyRootFS, "Root file system writable", low,
			"readOnlyRootFilesystem is not true: an intruder can modify the container's binaries and configuration.",
			"Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where writes are needed.", nistRuntimeConfig, "CIS-Docker-5.12"),
		k8s(K8sNoLimits, "No CPU or memory limit", low,
			"The container sets no CPU or no memory limit: it can starve its neighbours.",
			"Set resources.limits.cpu and resources.limits.memory.", nistRuntimeConfig, "CIS-Docker-5.10", "CIS-Docker-5.11"),
		k8s(K8sNoRequests, "No CPU or memory request", low,
			"The container sets no CPU or no memory request: the scheduler cannot place it safely.",
			"Set resources.requests.cpu and resources.requests.memory.", nistRuntimeConfig),
		k8s(K8sImageTag, "Image tag latest or missing", med,
			"The container image has no tag or the tag latest: what runs changes whenever the tag moves.",
			"Pin the image by a version tag and a digest.", nistStaleImages, nistUntrustedImages),
		k8s(K8sAutomountSAToken, "Service account token mounted", low,
			"automountServiceAccountToken is not false: the pod gets API credentials it may not need.",
			"Set automountServiceAccountToken: false unless the workload calls the Kubernetes API.", nistOrchAccess, "CIS-K8s-5.1.6"),
		k8s(K8sPullPolicy, "imagePullPolicy is not Always for a mutable tag", low,
			"The image is referenced by tag, not digest, and imagePullPolicy is not Always: nodes may run a stale cached image.",
			"Reference the image by digest, or set imagePullPolicy: Always.", nistStaleImages),

		rbac(K8sRBACWildcard, "Role grants every verb on every resource", crit,
			"A Role or ClusterRole rule has verbs [*] on resources [*]: whoever is bound to it is (namespace or cluster) admin, including every secret and the RBAC objects themselves.",
			"List the resources and verbs the subject needs; bind the default admin or edit roles explicitly if that is really meant.", nistOrchAdmin, "CIS-K8s-5.1.3"),
		rbac(K8sRBACAllResources, "Role grants access to every resource", crit,
			"A rule names resources [*] (with verbs other than *): read or write access to every resource type, secrets and custom resources included, present and future.",
			"List the resources the subject needs instead of *.", nistOrchAdmin, "CIS-K8s-5.1.3"),
		rbac(K8sRBACWildcardVerb, "Role grants every verb on sensitive resources", high,
			"A rule grants verbs [*] on secrets, pods, workload controllers, service accounts, users, groups or the RBAC objects: every current and future verb, escalate, bind and impersonate included.",
			"List the verbs the subject needs.", nistOrchAdmin, "CIS-K8s-5.1.3"),
		rbac(K8sRBACSecretsCluster, "ClusterRole grants access to secrets", crit,
			"A ClusterRole rule allows reading or changing secrets: bound cluster-wide, it reads every service account token, and some of those tokens are bound to cluster-admin.",
			"Remove secrets from the ClusterRole; grant access to named secrets (resourceNames) in a namespaced Role if needed.", nistOrchAdmin, nistOrchAccess, "CIS-K8s-5.1.2"),
		rbac(K8sRBACSecretsNamespace, "Role grants access to secrets in its namespace", med,
			"A Role rule allows reading or changing the secrets of its namespace: the tokens of more privileged service accounts there are within reach.",
			"Restrict the rule to the secrets needed (resourceNames) and the verbs needed.", nistOrchAccess, "CIS-K8s-5.1.2"),
		rbac(K8sRBACNodeProxy, "Role grants nodes/proxy", high,
			"A rule allows get or create on nodes/proxy: direct access to the kubelet API, which runs commands in any pod on the node and bypasses audit logging and admission.",
			"Remove nodes/proxy; monitoring that needs kubelet metrics can use nodes/metrics or nodes/stats.", nistOrchAdmin, "CIS-K8s-5.1.10"),
		rbac(K8sRBACWorkloads, "Role can create or change workloads", med,
			"A rule allows creating, changing or deleting pods or workload controllers: depending on admission policy, a subject can run privileged pods that escape to the node, mount any secret of the namespace, or run under a more privileged service account.",
			"Grant write access to workloads only to deployment tooling, and enforce Pod Security Admission in the namespace.", nistOrchAdmin, "CIS-K8s-5.1.4"),
		rbac(K8sRBACConfigMaps, "Role can change ConfigMaps", med,
			"A rule allows creating, changing or deleting ConfigMaps: workloads read configuration (and sometimes credentials) from them, so a change alters what they run or where they connect.",
			"Remove write verbs on configmaps, or restrict them to named ConfigMaps (resourceNames).", nistOrchAccess),
		rbac(K8sRBACEscalate, "Role can escalate, bind or impersonate", crit,
			"A rule allows escalate or bind on roles and bindings, or impersonate on users, groups or service accounts: each lets the subject exceed its own permissions (RBAC's escalation prevention does not apply), up to cluster-admin.",
			"Remove escalate, bind and impersonate; grant them only to the controllers that manage RBAC.", nistOrchAdmin, "CIS-K8s-5.1.8"),
		rbac(K8sRBACExec, "Role can exec or attach into pods", high,
			"A rule allows create (or get) on pods/exec or pods/attach: a shell in any pod of the scope, with its service account, its secrets and, for privileged pods, the node.",
			"Remove pods/exec and pods/attach; use break-glass access for debugging.", nistOrchAdmin, nistRuntimeConfig),
		rbac(K8sRBACNetworking, "Role can change Services or network policies", med,
			"A rule allows changing Services, Endpoints, EndpointSlices, Ingresses or NetworkPolicies: traffic meant for other pods can be redirected to the subject's pods, and network segmentation lifted.",
			"Grant write access to networking objects only to the controllers and tooling that own them.", nistOrchNetwork, nistOrchAdmin),
		rbac(K8sRBACAdminBinding, "Binding to cluster-admin, admin or edit", med,
			"A RoleBinding or ClusterRoleBinding grants the default cluster-admin, admin or edit ClusterRole: full control of the cluster, or of a namespace's workloads and secrets.",
			"Bind a role with only the permissions the subject needs.", nistOrchAdmin, "CIS-K8s-5.1.1"),
		rbac(K8sRBACBroadSubject, "Binding to anonymous users, all authenticated users or system:masters", crit,
			"A binding names system:anonymous, system:unauthenticated or system:authenticated (every request, or every user and service account in the cluster), or system:masters (a group whose members bypass RBAC).",
			"Bind named users, groups or service accounts instead.", nistOrchAccess, nistOrchAdmin),
	}
	for i := range checks {
		checks[i].Peers = append([]string(nil), peerIDs[checks[i].ID]...)
	}
	return checks
}

// peerIDs maps mamori checks to the equivalent dockle (v0.4.15) and trivy
// (trivy-checks bundled with v0.74.0) checks; see bench/README.md.
var peerIDs = map[string][]string{
	ImgRootUser: {"CIS-DI-0001", "DS-0002"}, ImgNoHealthcheck: {"CIS-DI-0006", "DS-0026"},
	ImgUpdateAlone: {"CIS-DI-0007", "DS-0017"}, ImgAddRemote: {"CIS-DI-0009"}, ImgSecrets: {"CIS-DI-0010", "DS-0031"},
	ImgSetuid: {"CIS-DI-0008"}, ImgRemoteAdminPort: {"DS-0004"}, ImgEmptyPassword: {"DKL-LI-0001"},
	ImgDuplicateAccount: {"DKL-LI-0002"}, ImgLeftoverFile: {"DKL-LI-0003"}, ImgSensitiveVolume: {"DKL-DI-0002"},
	ImgLatestBase: {"DKL-DI-0006"}, ImgAddLocal: {"CIS-DI-0009", "DS-0005"},

	DFRootUser: {"DS-0002"}, DFNoHealthcheck: {"DS-0026"}, DFAddLocal: {"DS-0005"}, DFUpdateAlone: {"DS-0017"},
	DFUnpinnedBase: {"DS-0001"}, DFSudo: {"DS-0010", "DKL-DI-0001"}, DFSecretValue: {"DS-0031"},
	DFSensitiveArg: {"DS-0031"}, DFNoInstallRecs: {"DS-0029"}, DFExposeSSH: {"DS-0004"},
	DFPkgCache:    {"DS-0015", "DS-0019", "DS-0020", "DS-0025", "DS-0027", "DKL-DI-0004", "DKL-DI-0005"},
	DFDistUpgrade: {"DS-0024", "DKL-DI-0003"}, DFAptNoYes: {"DS-0021"}, DFRepeated: {"DS-0007", "DS-0016", "DS-0023"},
	DFStageAlias: {"DS-0006", "DS-0012"}, DFPortRange: {"DS-0008"}, DFWorkdirRelative: {"DS-0009"},
	DFWorkdirSystem: {"DS-0030"}, DFCopyDestSlash: {"DS-0011"}, DFRunCd: {"DS-0013"}, DFCurlAndWget: {"DS-0014"},
	DFMaintainer: {"DS-0022"},

	K8sPrivileged: {"KSV-0017"}, K8sHostPID: {"KSV-0010"}, K8sHostIPC: {"KSV-0008"}, K8sHostNetwork: {"KSV-0009"},
	K8sHostProcess: {"KSV-0103"}, K8sCapsBaseline: {"KSV-0005", "KSV-0022", "KSV-0119", "KSV-0120"},
	K8sHostPath: {"KSV-0023"}, K8sHostPathSens: {"KSV-0006", "KSV-0023", "KSV-0121"}, K8sHostPort: {"KSV-0024"},
	K8sAppArmor: {"KSV-0002"}, K8sSELinux: {"KSV-0025"}, K8sProcMount: {"KSV-0027"}, K8sSeccompBaseline: {"KSV-0104"},
	K8sSysctls: {"KSV-0026"}, K8sVolumeTypes: {"KSV-0028"}, K8sPrivEscalation: {"KSV-0001"}, K8sRunAsNonRoot: {"KSV-0012"},
	K8sRunAsUserRoot: {"KSV-0105"}, K8sSeccompRestrict: {"KSV-0030", "KSV-0104"},
	K8sCapsDropAll: {"KSV-0003", "KSV-0004", "KSV-0106"}, K8sCapsAddRestrict: {"KSV-0022", "KSV-0106"},
	K8sReadOnlyRootFS: {"KSV-0014"}, K8sNoLimits: {"KSV-0011", "KSV-0018"}, K8sNoRequests: {"KSV-0015", "KSV-0016"},
	K8sImageTag: {"KSV-0013"}, K8sAutomountSAToken: {"KSV-0036"},

	K8sRBACWildcard: {"KSV-0044", "KSV-0046"}, K8sRBACAllResources: {"KSV-0046", "KSV-0112"}, K8sRBACWildcardVerb: {"KSV-0045"},
	K8sRBACSecretsCluster: {"KSV-0041"}, K8sRBACSecretsNamespace: {"KSV-0113"}, K8sRBACNodeProxy: {"KSV-0047"},
	K8sRBACWorkloads: {"KSV-0048"}, K8sRBACConfigMaps: {"KSV-0049"}, K8sRBACEscalate: {"KSV-0050", "KSV-0043"},
	K8sRBACExec: {"KSV-0053", "KSV-0054"}, K8sRBACNetworking: {"KSV-0056"}, K8sRBACAdminBinding: {"KSV-0111"},
	K8sRBACBroadSubject: {"KSV-0122", "KSV-0123", "KSV-01011"},
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
