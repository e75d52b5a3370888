package policy

// Control names: the keys of rule criteria in YAML and Violation.Control.
const (
	// Pod Security Standards, baseline.
	CtlHostProcess    = "hostProcess"
	CtlHostNamespaces = "hostNamespaces"
	CtlPrivileged     = "privileged"
	CtlCapabilities   = "capabilities"
	CtlHostPath       = "hostPathVolumes"
	CtlHostPorts      = "hostPorts"
	CtlHostProbes     = "hostProbes"
	CtlAppArmor       = "appArmor"
	CtlSELinux        = "seLinux"
	CtlProcMount      = "procMount"
	CtlSeccomp        = "seccomp"
	CtlSysctls        = "sysctls"
	// Pod Security Standards, restricted.
	CtlVolumeTypes            = "volumeTypes"
	CtlPrivilegeEscalation    = "privilegeEscalation"
	CtlRunAsNonRoot           = "runAsNonRoot"
	CtlRunAsUser              = "runAsUser"
	CtlSeccompRestricted      = "seccompRestricted"
	CtlCapabilitiesRestricted = "capabilitiesRestricted"
	CtlProcMountRestricted    = "procMountRestricted"
	// Other workload properties.
	CtlReadOnlyRootFS  = "readOnlyRootFilesystem"
	CtlResources       = "resources"
	CtlRegistries      = "registries"
	CtlLatestTag       = "latestTag"
	CtlRequireDigest   = "requireDigest"
	CtlImagePullPolicy = "imagePullPolicy"
	CtlSignatures      = "signatures"
	CtlAutomountToken  = "automountServiceAccountToken"
	CtlPodAccess       = "podAccess"
	// Scan results.
	CtlVulnerabilities = "vulnerabilities"
	CtlMalware         = "malware"
	CtlSecrets         = "secrets"
	CtlMisconfig       = "misconfigurations"
	CtlNotScanned      = "notScanned"
	CtlScanAge         = "scanAge"
	// Custom, and the policy-level ones.
	CtlCEL          = "cel"
	CtlUnknownImage = "unknownImage"
	CtlRuntime      = "runtime"
)

// BaselineControls are the Pod Security Standards baseline controls, as of
// Kubernetes 1.35 (hostProbes since 1.34).
var BaselineControls = []string{
	CtlHostProcess, CtlHostNamespaces, CtlPrivileged, CtlCapabilities, CtlHostPath, CtlHostPorts,
	CtlHostProbes, CtlAppArmor, CtlSELinux, CtlProcMount, CtlSeccomp, CtlSysctls,
}

// RestrictedControls are the controls the restricted level adds to baseline.
var RestrictedControls = []string{
	CtlVolumeTypes, CtlPrivilegeEscalation, CtlRunAsNonRoot, CtlRunAsUser, CtlSeccompRestricted,
	CtlCapabilitiesRestricted, CtlProcMountRestricted,
}

// Defaults of the standard.
var (
	// defaultCapabilities may be added at baseline.
	defaultCapabilities = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
		"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
	// restrictedCapabilities may be added at restricted, after dropping ALL.
	restrictedCapabilities = []string{"NET_BIND_SERVICE"}
	// safeSysctls are namespaced and isolated between pods (the set of
	// Kubernetes 1.37; older kubelets refuse the newer ones on their own).
	safeSysctls = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
		"net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
		"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}
	// seLinuxTypes may be set at baseline ("" is unset).
	seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
	// restrictedVolumeTypes are the volume sources allowed at restricted.
	restrictedVolumeTypes = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
		"persistentVolumeClaim", "projected", "secret"}
	// volumeTypeNames are every inline volume source of the Pod API.
	volumeTypeNames = []string{"hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo",
		"secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs",
		"flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
		"photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image"}
	pullPolicies = []string{"Always", "IfNotPresent", "Never"}
)

// isBaseline and isRestricted say whether a control belongs to a level.
func levelControls(level string) []string {
	switch level {
	case LevelBaseline:
		return BaselineControls
	case LevelRestricted:
		return append(append([]string(nil), BaselineControls...), RestrictedControls...)
	}
	return nil
}
