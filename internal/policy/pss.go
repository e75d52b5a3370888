package policy

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The Pod Security Standards controls
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// each over the pod spec of a workload, reporting every offending field.
// Containers are the pod's init, regular and ephemeral containers, as the
// standard counts them.

const (
	listInit      = "initContainers"
	listContainer = "containers"
	listEphemeral = "ephemeralContainers"
)

// eachContainer calls fn for every container of spec, init and ephemeral
// included.
func eachContainer(spec *corev1.PodSpec, fn func(list string, i int, c *corev1.Container)) {
	for i := range spec.InitContainers {
		fn(listInit, i, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		fn(listContainer, i, &spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		// EphemeralContainerCommon has Container's fields, in order.
		fn(listEphemeral, i, (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

// specField is a field path under the pod spec.
func (s *state) specField(suffix string) string { return s.w.SpecPath + "." + suffix }

// ctrField is a field path under one container.
func (s *state) ctrField(list string, i int, suffix string) string {
	p := s.w.SpecPath + "." + list + "[" + strconv.Itoa(i) + "]"
	if suffix != "" {
		p += "." + suffix
	}
	return p
}

func ctrName(c *corev1.Container) string { return strconv.Quote(c.Name) }

func isWindows(spec *corev1.PodSpec) bool { return spec.OS != nil && spec.OS.Name == corev1.Windows }

// userNamespaced: hostUsers false puts the pod in a user namespace, where
// root in the container is not root on the node (PSS 1.35 relaxes some
// controls for it).
func userNamespaced(spec *corev1.PodSpec) bool { return spec.HostUsers != nil && !*spec.HostUsers }

// --- baseline ---

func ctlHostProcess(s *state) {
	if sc := s.spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && isTrue(sc.WindowsOptions.HostProcess) {
		s.fail(CtlHostProcess, s.specField("securityContext.windowsOptions.hostProcess"), "", "", "pod sets windowsOptions.hostProcess=true")
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil && sc.WindowsOptions != nil && isTrue(sc.WindowsOptions.HostProcess) {
			s.fail(CtlHostProcess, s.ctrField(list, i, "securityContext.windowsOptions.hostProcess"), c.Name, c.Image,
				"container "+ctrName(c)+" sets windowsOptions.hostProcess=true")
		}
	})
}

func ctlHostNamespaces(s *state) {
	if s.spec.HostNetwork {
		s.fail(CtlHostNamespaces, s.specField("hostNetwork"), "", "", "pod uses the host network namespace")
	}
	if s.spec.HostPID {
		s.fail(CtlHostNamespaces, s.specField("hostPID"), "", "", "pod uses the host PID namespace")
	}
	if s.spec.HostIPC {
		s.fail(CtlHostNamespaces, s.specField("hostIPC"), "", "", "pod uses the host IPC namespace")
	}
}

func ctlPrivileged(s *state) {
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil && isTrue(sc.Privileged) {
			s.fail(CtlPrivileged, s.ctrField(list, i, "securityContext.privileged"), c.Name, c.Image,
				"container "+ctrName(c)+" is privileged")
		}
	})
}

// ctlCapabilities: added capabilities must be in allowed (baseline).
func ctlCapabilities(allowed []string) func(*state) {
	return func(s *state) {
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
				return
			}
			for j, capb := range c.SecurityContext.Capabilities.Add {
				if !slices.Contains(allowed, string(capb)) {
					s.fail(CtlCapabilities, s.ctrField(list, i, "securityContext.capabilities.add["+strconv.Itoa(j)+"]"), c.Name, c.Image,
						"container "+ctrName(c)+" adds capability "+string(capb))
				}
			}
		})
	}
}

// ctlHostPath: no hostPath volumes, except under allowed directories.
func ctlHostPath(allowed []string) func(*state) {
	return func(s *state) {
		for i := range s.spec.Volumes {
			v := &s.spec.Volumes[i]
			if v.HostPath == nil || underAny(v.HostPath.Path, allowed) {
				continue
			}
			s.fail(CtlHostPath, s.specField("volumes["+strconv.Itoa(i)+"].hostPath"), "", "",
				"volume "+strconv.Quote(v.Name)+" mounts host path "+strconv.Quote(v.HostPath.Path))
		}
	}
}

// underAny reports whether p is one of dirs or below one (after cleaning
// "..": a host path is the node's, so "/var/log/../../etc" is "/etc").
func underAny(p string, dirs []string) bool {
	if len(dirs) == 0 {
		return false
	}
	p = cleanAbs(p)
	for _, d := range dirs {
		d = cleanAbs(d)
		if p == d || d == "/" || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func ctlHostPorts(allowed []int32) func(*state) {
	return func(s *state) {
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			for j, p := range c.Ports {
				if p.HostPort != 0 && !slices.Contains(allowed, p.HostPort) {
					s.fail(CtlHostPorts, s.ctrField(list, i, "ports["+strconv.Itoa(j)+"].hostPort"), c.Name, c.Image,
						"container "+ctrName(c)+" binds host port "+strconv.Itoa(int(p.HostPort)))
				}
			}
		})
	}
}

// ctlHostProbes: probes and lifecycle handlers must not name a host (they
// would reach another address from the kubelet).
func ctlHostProbes(s *state) {
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		probe := func(name string, p *corev1.Probe) {
			if p == nil {
				return
			}
			if p.HTTPGet != nil && p.HTTPGet.Host != "" {
				s.fail(CtlHostProbes, s.ctrField(list, i, name+".httpGet.host"), c.Name, c.Image,
					"container "+ctrName(c)+" "+name+" targets host "+strconv.Quote(p.HTTPGet.Host))
			}
			if p.TCPSocket != nil && p.TCPSocket.Host != "" {
				s.fail(CtlHostProbes, s.ctrField(list, i, name+".tcpSocket.host"), c.Name, c.Image,
					"container "+ctrName(c)+" "+name+" targets host "+strconv.Quote(p.TCPSocket.Host))
			}
		}
		probe("livenessProbe", c.LivenessProbe)
		probe("readinessProbe", c.ReadinessProbe)
		probe("startupProbe", c.StartupProbe)
		if c.Lifecycle == nil {
			return
		}
		hook := func(name string, h *corev1.LifecycleHandler) {
			if h == nil {
				return
			}
			if h.HTTPGet != nil && h.HTTPGet.Host != "" {
				s.fail(CtlHostProbes, s.ctrField(list, i, "lifecycle."+name+".httpGet.host"), c.Name, c.Image,
					"container "+ctrName(c)+" "+name+" hook targets host "+strconv.Quote(h.HTTPGet.Host))
			}
			if h.TCPSocket != nil && h.TCPSocket.Host != "" {
				s.fail(CtlHostProbes, s.ctrField(list, i, "lifecycle."+name+".tcpSocket.host"), c.Name, c.Image,
					"container "+ctrName(c)+" "+name+" hook targets host "+strconv.Quote(h.TCPSocket.Host))
			}
		}
		hook("postStart", c.Lifecycle.PostStart)
		hook("preStop", c.Lifecycle.PreStop)
	})
}

const appArmorAnnotationPrefix = "container.apparmor.security.beta.kubernetes.io/"

func allowedAppArmorType(t corev1.AppArmorProfileType) bool {
	return t == corev1.AppArmorProfileTypeRuntimeDefault || t == corev1.AppArmorProfileTypeLocalhost
}

// ctlAppArmor: the default AppArmor profile may not be overridden or
// disabled, in the annotations (before 1.30) or the securityContext field.
func ctlAppArmor(s *state) {
	var keys []string // annotation keys naming a profile, collected only when there are some
	for k := range s.w.PodAnnotations {
		if strings.HasPrefix(k, appArmorAnnotationPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := s.w.PodAnnotations[k]
		if v == "" || v == "runtime/default" || strings.HasPrefix(v, "localhost/") {
			continue
		}
		name := strings.TrimPrefix(k, appArmorAnnotationPrefix)
		s.fail(CtlAppArmor, s.w.PodMetaPath+".annotations["+k+"]", name, "",
			"AppArmor profile "+strconv.Quote(v)+" for container "+strconv.Quote(name))
	}
	if sc := s.spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !allowedAppArmorType(sc.AppArmorProfile.Type) {
		s.fail(CtlAppArmor, s.specField("securityContext.appArmorProfile.type"), "", "",
			"pod sets AppArmor profile type "+strconv.Quote(string(sc.AppArmorProfile.Type)))
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil && sc.AppArmorProfile != nil && !allowedAppArmorType(sc.AppArmorProfile.Type) {
			s.fail(CtlAppArmor, s.ctrField(list, i, "securityContext.appArmorProfile.type"), c.Name, c.Image,
				"container "+ctrName(c)+" sets AppArmor profile type "+strconv.Quote(string(sc.AppArmorProfile.Type)))
		}
	})
}

// ctlSELinux: the SELinux type must be allowed; user and role unset.
func ctlSELinux(types []string) func(*state) {
	return func(s *state) {
		// c is nil for the pod's own options; names are built only on failure.
		check := func(o *corev1.SELinuxOptions, field func(string) string, c *corev1.Container) {
			if o == nil {
				return
			}
			fail := func(f, what, v string) {
				who, name, image := "pod", "", ""
				if c != nil {
					who, name, image = "container "+ctrName(c), c.Name, c.Image
				}
				s.fail(CtlSELinux, field(f), name, image, who+" sets SELinux "+what+" "+strconv.Quote(v))
			}
			if !slices.Contains(types, o.Type) {
				fail("type", "type", o.Type)
			}
			if o.User != "" {
				fail("user", "user", o.User)
			}
			if o.Role != "" {
				fail("role", "role", o.Role)
			}
		}
		if sc := s.spec.SecurityContext; sc != nil {
			check(sc.SELinuxOptions, func(f string) string { return s.specField("securityContext.seLinuxOptions." + f) }, nil)
		}
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			if sc := c.SecurityContext; sc != nil {
				check(sc.SELinuxOptions, func(f string) string { return s.ctrField(list, i, "securityContext.seLinuxOptions."+f) }, c)
			}
		})
	}
}

// procMount checks the /proc mask; baseline allows anything in a user
// namespace (1.35), restricted does not.
func procMount(control string, relaxForUserNS bool) func(*state) {
	return func(s *state) {
		if relaxForUserNS && userNamespaced(s.spec) {
			return
		}
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			if sc := c.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
				s.fail(control, s.ctrField(list, i, "securityContext.procMount"), c.Name, c.Image,
					"container "+ctrName(c)+" sets procMount "+strconv.Quote(string(*sc.ProcMount)))
			}
		})
	}
}

// ctlSeccomp (baseline): a profile, when set, is RuntimeDefault or Localhost
// (Unconfined, or a profile object without a type, is refused).
func ctlSeccomp(s *state) {
	if sc := s.spec.SecurityContext; sc != nil && sc.SeccompProfile != nil && !validSeccomp(sc.SeccompProfile.Type) {
		s.fail(CtlSeccomp, s.specField("securityContext.seccompProfile.type"), "", "",
			"pod sets seccomp profile "+strconv.Quote(string(sc.SeccompProfile.Type))+" (want RuntimeDefault or Localhost)")
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil && sc.SeccompProfile != nil && !validSeccomp(sc.SeccompProfile.Type) {
			s.fail(CtlSeccomp, s.ctrField(list, i, "securityContext.seccompProfile.type"), c.Name, c.Image,
				"container "+ctrName(c)+" sets seccomp profile "+strconv.Quote(string(sc.SeccompProfile.Type))+" (want RuntimeDefault or Localhost)")
		}
	})
}

func ctlSysctls(allowed []string) func(*state) {
	return func(s *state) {
		sc := s.spec.SecurityContext
		if sc == nil {
			return
		}
		for i, sy := range sc.Sysctls {
			if !slices.Contains(allowed, sy.Name) {
				s.fail(CtlSysctls, s.specField("securityContext.sysctls["+strconv.Itoa(i)+"].name"), "", "",
					"pod sets unsafe sysctl "+strconv.Quote(sy.Name))
			}
		}
	}
}

// --- restricted ---

// volumeType names the source of a volume ("" when none is set).
func volumeType(v *corev1.VolumeSource) string {
	switch {
	case v.HostPath != nil:
		return "hostPath"
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case v.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case v.GitRepo != nil:
		return "gitRepo"
	case v.Secret != nil:
		return "secret"
	case v.NFS != nil:
		return "nfs"
	case v.ISCSI != nil:
		return "iscsi"
	case v.Glusterfs != nil:
		return "glusterfs"
	case v.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case v.RBD != nil:
		return "rbd"
	case v.FlexVolume != nil:
		return "flexVolume"
	case v.Cinder != nil:
		return "cinder"
	case v.CephFS != nil:
		return "cephfs"
	case v.Flocker != nil:
		return "flocker"
	case v.DownwardAPI != nil:
		return "downwardAPI"
	case v.FC != nil:
		return "fc"
	case v.AzureFile != nil:
		return "azureFile"
	case v.ConfigMap != nil:
		return "configMap"
	case v.VsphereVolume != nil:
		return "vsphereVolume"
	case v.Quobyte != nil:
		return "quobyte"
	case v.AzureDisk != nil:
		return "azureDisk"
	case v.PhotonPersistentDisk != nil:
		return "photonPersistentDisk"
	case v.Projected != nil:
		return "projected"
	case v.PortworxVolume != nil:
		return "portworxVolume"
	case v.ScaleIO != nil:
		return "scaleIO"
	case v.StorageOS != nil:
		return "storageos"
	case v.CSI != nil:
		return "csi"
	case v.Ephemeral != nil:
		return "ephemeral"
	case v.Image != nil:
		return "image"
	}
	return ""
}

func ctlVolumeTypes(allowed []string) func(*state) {
	return func(s *state) {
		for i := range s.spec.Volumes {
			v := &s.spec.Volumes[i]
			t := volumeType(&v.VolumeSource)
			if t != "" && slices.Contains(allowed, t) {
				continue
			}
			field := s.specField("volumes[" + strconv.Itoa(i) + "]")
			what := "a volume source mamori does not know"
			if t != "" {
				field += "." + t
				what = "volume type " + t
			}
			s.fail(CtlVolumeTypes, field, "", "", "volume "+strconv.Quote(v.Name)+" uses "+what)
		}
	}
}

// ctlPrivilegeEscalation: allowPrivilegeEscalation must be set to false
// (Windows pods are exempt: the field does not exist there).
func ctlPrivilegeEscalation(s *state) {
	if isWindows(s.spec) {
		return
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			s.fail(CtlPrivilegeEscalation, s.ctrField(list, i, "securityContext.allowPrivilegeEscalation"), c.Name, c.Image,
				"container "+ctrName(c)+" must set allowPrivilegeEscalation=false")
		}
	})
}

// ctlRunAsNonRoot: runAsNonRoot true on the pod or on every container, and
// false nowhere; any value in a user namespace.
func ctlRunAsNonRoot(s *state) {
	if userNamespaced(s.spec) {
		return
	}
	podTrue := false
	if sc := s.spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		if *sc.RunAsNonRoot {
			podTrue = true
		} else {
			s.fail(CtlRunAsNonRoot, s.specField("securityContext.runAsNonRoot"), "", "", "pod sets runAsNonRoot=false")
		}
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		sc := c.SecurityContext
		switch {
		case sc != nil && sc.RunAsNonRoot != nil:
			if !*sc.RunAsNonRoot {
				s.fail(CtlRunAsNonRoot, s.ctrField(list, i, "securityContext.runAsNonRoot"), c.Name, c.Image,
					"container "+ctrName(c)+" sets runAsNonRoot=false")
			}
		case !podTrue:
			s.fail(CtlRunAsNonRoot, s.ctrField(list, i, "securityContext.runAsNonRoot"), c.Name, c.Image,
				"pod or container "+ctrName(c)+" must set runAsNonRoot=true")
		}
	})
}

// ctlRunAsUser: no runAsUser 0; any value in a user namespace.
func ctlRunAsUser(s *state) {
	if userNamespaced(s.spec) {
		return
	}
	if sc := s.spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		s.fail(CtlRunAsUser, s.specField("securityContext.runAsUser"), "", "", "pod sets runAsUser=0")
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			s.fail(CtlRunAsUser, s.ctrField(list, i, "securityContext.runAsUser"), c.Name, c.Image,
				"container "+ctrName(c)+" sets runAsUser=0")
		}
	})
}

func validSeccomp(t corev1.SeccompProfileType) bool {
	return t == corev1.SeccompProfileTypeRuntimeDefault || t == corev1.SeccompProfileTypeLocalhost
}

// ctlSeccompRestricted: RuntimeDefault or Localhost, set on the pod or on
// every container (Windows pods are exempt).
func ctlSeccompRestricted(s *state) {
	if isWindows(s.spec) {
		return
	}
	podSet := false
	if sc := s.spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
		if validSeccomp(sc.SeccompProfile.Type) {
			podSet = true
		} else {
			s.fail(CtlSeccompRestricted, s.specField("securityContext.seccompProfile.type"), "", "",
				"pod sets seccomp profile "+strconv.Quote(string(sc.SeccompProfile.Type))+" (want RuntimeDefault or Localhost)")
		}
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		sc := c.SecurityContext
		switch {
		case sc != nil && sc.SeccompProfile != nil:
			if !validSeccomp(sc.SeccompProfile.Type) {
				s.fail(CtlSeccompRestricted, s.ctrField(list, i, "securityContext.seccompProfile.type"), c.Name, c.Image,
					"container "+ctrName(c)+" sets seccomp profile "+strconv.Quote(string(sc.SeccompProfile.Type))+" (want RuntimeDefault or Localhost)")
			}
		case !podSet:
			s.fail(CtlSeccompRestricted, s.ctrField(list, i, "securityContext.seccompProfile.type"), c.Name, c.Image,
				"pod or container "+ctrName(c)+" must set a seccomp profile (RuntimeDefault or Localhost)")
		}
	})
}

// ctlCapabilitiesRestricted: drop ALL, add only allowed (Windows pods are
// exempt).
func ctlCapabilitiesRestricted(allowed []string) func(*state) {
	return func(s *state) {
		if isWindows(s.spec) {
			return
		}
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			var caps *corev1.Capabilities
			if c.SecurityContext != nil {
				caps = c.SecurityContext.Capabilities
			}
			if caps == nil || !slices.Contains(caps.Drop, "ALL") {
				s.fail(CtlCapabilitiesRestricted, s.ctrField(list, i, "securityContext.capabilities.drop"), c.Name, c.Image,
					"container "+ctrName(c)+" must drop ALL capabilities")
			}
			if caps == nil {
				return
			}
			for j, capb := range caps.Add {
				if !slices.Contains(allowed, string(capb)) {
					s.fail(CtlCapabilitiesRestricted, s.ctrField(list, i, "securityContext.capabilities.add["+strconv.Itoa(j)+"]"), c.Name, c.Image,
						"container "+ctrName(c)+" adds capability "+string(capb)+" ("+mayAdd(allowed)+")")
				}
			}
		})
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func mayAdd(allowed []string) string {
	if len(allowed) == 0 {
		return "no capability may be added"
	}
	return "only " + strings.Join(allowed, ", ") + " may be added"
}
