//go:build ignore

// Command pssdiff compares mamori's Pod Security Standards controls
// (internal/policy) with the reference implementation, Kubernetes'
// pod-security-admission library (what the API server's PodSecurity admission
// plugin runs), check by check, on the testdata manifests and on random pods.
// bench/pss-diff.sh builds it in a module outside the tree (the library is
// not a dependency of mamori); the build tag keeps it out of mamori's build.
//
//	go run main.go -n 200000 -seed 1 ../../internal/policy/testdata/pss/*.yaml
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"mamori/internal/policy"
)

// controls maps the reference's check IDs to mamori's control names.
var controls = map[string]string{
	"windowsHostProcess":         policy.CtlHostProcess,
	"hostNamespaces":             policy.CtlHostNamespaces,
	"privileged":                 policy.CtlPrivileged,
	"capabilities_baseline":      policy.CtlCapabilities,
	"hostPathVolumes":            policy.CtlHostPath,
	"hostPorts":                  policy.CtlHostPorts,
	"hostProbesAndHostLifecycle": policy.CtlHostProbes,
	"appArmorProfile":            policy.CtlAppArmor,
	"seLinuxOptions":             policy.CtlSELinux,
	"procMount":                  policy.CtlProcMount,
	"seccompProfile_baseline":    policy.CtlSeccomp,
	"sysctls":                    policy.CtlSysctls,
	"restrictedVolumes":          policy.CtlVolumeTypes,
	"allowPrivilegeEscalation":   policy.CtlPrivilegeEscalation,
	"runAsNonRoot":               policy.CtlRunAsNonRoot,
	"runAsUser":                  policy.CtlRunAsUser,
	"seccompProfile_restricted":  policy.CtlSeccompRestricted,
	"capabilities_restricted":    policy.CtlCapabilitiesRestricted,
	"procMount_restricted":       policy.CtlProcMountRestricted,
}

type pair struct {
	id      string
	control string
	ref     psapolicy.CheckPodFn
	mine    *policy.Evaluator
}

func main() {
	n := flag.Int("n", 100000, "random pods to compare")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	var pairs []pair
	for _, c := range psapolicy.DefaultChecks() {
		ctl, ok := controls[string(c.ID)]
		if !ok {
			fmt.Fprintf(os.Stderr, "the reference has a check mamori does not map: %s\n", c.ID)
			os.Exit(1)
		}
		latest := c.Versions[len(c.Versions)-1] // versions are in increasing order
		doc := fmt.Sprintf("apiVersion: mamori.dev/v1\nkind: Policy\nname: diff\nadmission:\n  - {name: r, action: block, %s: {}}\n", ctl)
		p, err := policy.Parse("diff.yaml", []byte(doc))
		if err != nil {
			panic(err)
		}
		ev, err := policy.Compile(p)
		if err != nil {
			panic(err)
		}
		pairs = append(pairs, pair{id: string(c.ID), control: ctl, ref: latest.CheckPod, mine: ev})
	}
	if len(pairs) != len(controls) {
		fmt.Fprintf(os.Stderr, "the reference has %d checks, mamori maps %d\n", len(pairs), len(controls))
		os.Exit(1)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].id < pairs[j].id })

	type tally struct{ refFail, mineFail, diff int }
	stats := map[string]*tally{}
	for _, p := range pairs {
		stats[p.id] = &tally{}
	}
	shown := 0
	compare := func(name string, pod *corev1.Pod) {
		w, err := policy.WorkloadOf(pod)
		if err != nil {
			panic(err)
		}
		for _, p := range pairs {
			ref := !p.ref(&pod.ObjectMeta, &pod.Spec).Allowed
			d := p.mine.Evaluate(w, time.Now())
			mine := false
			for _, v := range d.Violations {
				if v.Control == p.control {
					mine = true
				}
			}
			t := stats[p.id]
			if ref {
				t.refFail++
			}
			if mine {
				t.mineFail++
			}
			if ref != mine {
				t.diff++
				if shown < 10 {
					shown++
					js, _ := json.Marshal(pod)
					fmt.Printf("DIFF %s on %s: reference fails=%v mamori fails=%v\n  %s\n", p.id, name, ref, mine, js)
				}
			}
		}
	}
	files := 0
	for _, f := range flag.Args() {
		data, err := os.ReadFile(f)
		if err != nil {
			panic(err)
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(data, &pod); err != nil || pod.Kind != "Pod" {
			continue
		}
		compare(f, &pod)
		files++
	}
	r := rand.New(rand.NewPCG(*seed, *seed))
	for i := 0; i < *n; i++ {
		compare(fmt.Sprintf("random pod %d", i), randomPod(r))
	}
	fmt.Printf("%d manifests and %d random pods (seed %d), checked against k8s.io/pod-security-admission (latest version of each check)\n", files, *n, *seed)
	fmt.Printf("%-28s %-24s %10s %10s %8s\n", "reference check", "mamori control", "ref fails", "mamori", "differ")
	total := 0
	for _, p := range pairs {
		t := stats[p.id]
		fmt.Printf("%-28s %-24s %10d %10d %8d\n", p.id, p.control, t.refFail, t.mineFail, t.diff)
		total += t.diff
	}
	if total > 0 {
		fmt.Printf("%d disagreements\n", total)
		os.Exit(1)
	}
	fmt.Println("no disagreement")
}

// randomPod draws a pod from a vocabulary that hits every allowed and
// forbidden value of every control, with unset fields as often as set ones.
func randomPod(r *rand.Rand) *corev1.Pod {
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	coin := func() bool { return r.IntN(2) == 0 }
	boolp := func() *bool {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			b := true
			return &b
		}
		b := false
		return &b
	}
	int64p := func(vals ...int64) *int64 {
		if coin() {
			return nil
		}
		v := vals[r.IntN(len(vals))]
		return &v
	}
	seccomp := func() *corev1.SeccompProfile {
		if coin() {
			return nil
		}
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileType(pick("RuntimeDefault", "Localhost", "Unconfined", ""))}
	}
	apparmor := func() *corev1.AppArmorProfile {
		if r.IntN(3) != 0 {
			return nil
		}
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileType(pick("RuntimeDefault", "Localhost", "Unconfined", ""))}
	}
	selinux := func() *corev1.SELinuxOptions {
		if r.IntN(3) != 0 {
			return nil
		}
		o := &corev1.SELinuxOptions{Type: pick("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t", "spc_t")}
		if r.IntN(4) == 0 {
			o.User = "system_u"
		}
		if r.IntN(4) == 0 {
			o.Role = "system_r"
		}
		return o
	}
	windows := func() *corev1.WindowsSecurityContextOptions {
		if r.IntN(4) != 0 {
			return nil
		}
		return &corev1.WindowsSecurityContextOptions{HostProcess: boolp()}
	}
	container := func(name string) corev1.Container {
		c := corev1.Container{Name: name, Image: "registry.example.com/app:1"}
		if r.IntN(4) != 0 {
			sc := &corev1.SecurityContext{
				Privileged:               boolp(),
				AllowPrivilegeEscalation: boolp(),
				RunAsNonRoot:             boolp(),
				RunAsUser:                int64p(0, 1000),
				SeccompProfile:           seccomp(),
				AppArmorProfile:          apparmor(),
				SELinuxOptions:           selinux(),
				WindowsOptions:           windows(),
			}
			if coin() {
				caps := &corev1.Capabilities{}
				for _, c := range []string{"NET_ADMIN", "CHOWN", "NET_BIND_SERVICE", "SYS_ADMIN", "NET_RAW", "KILL"} {
					if r.IntN(4) == 0 {
						caps.Add = append(caps.Add, corev1.Capability(c))
					}
				}
				switch r.IntN(3) {
				case 0:
					caps.Drop = []corev1.Capability{"ALL"}
				case 1:
					caps.Drop = []corev1.Capability{"NET_RAW"}
				}
				sc.Capabilities = caps
			}
			if r.IntN(3) == 0 {
				pm := corev1.ProcMountType(pick("Default", "Unmasked"))
				sc.ProcMount = &pm
			}
			c.SecurityContext = sc
		}
		if coin() {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: int32(r.IntN(2) * 8080)}}
		}
		host := func() string { return pick("", "", "10.0.0.1") }
		if coin() {
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: host()}}}
		}
		if coin() {
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: host()}}}
		}
		if r.IntN(4) == 0 {
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: host()}}}
		}
		if r.IntN(4) == 0 {
			c.Lifecycle = &corev1.Lifecycle{
				PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: host()}},
				PreStop:   &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Host: host()}},
			}
		}
		return c
	}
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	if r.IntN(4) == 0 {
		pod.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/c0": pick("runtime/default", "localhost/x", "unconfined", "")}
	}
	s := &pod.Spec
	s.HostNetwork, s.HostPID, s.HostIPC = r.IntN(5) == 0, r.IntN(5) == 0, r.IntN(5) == 0
	s.HostUsers = boolp()
	if r.IntN(4) == 0 {
		s.OS = &corev1.PodOS{Name: corev1.OSName(pick("linux", "windows"))}
	}
	if coin() {
		psc := &corev1.PodSecurityContext{
			RunAsNonRoot:    boolp(),
			RunAsUser:       int64p(0, 1000),
			SeccompProfile:  seccomp(),
			AppArmorProfile: apparmor(),
			SELinuxOptions:  selinux(),
			WindowsOptions:  windows(),
		}
		for _, name := range []string{"net.ipv4.tcp_syncookies", "kernel.shm_rmid_forced", "net.ipv4.tcp_rmem", "kernel.msgmax", "net.core.somaxconn", "net.ipv4.tcp_notsent_lowat"} {
			if r.IntN(5) == 0 {
				psc.Sysctls = append(psc.Sysctls, corev1.Sysctl{Name: name, Value: "1"})
			}
		}
		s.SecurityContext = psc
	}
	for i := 0; i < r.IntN(3); i++ {
		s.Volumes = append(s.Volumes, randomVolume(r, i))
	}
	for i := 0; i < r.IntN(2); i++ {
		s.InitContainers = append(s.InitContainers, container(fmt.Sprintf("i%d", i)))
	}
	for i := 0; i < 1+r.IntN(3); i++ {
		s.Containers = append(s.Containers, container(fmt.Sprintf("c%d", i)))
	}
	if r.IntN(4) == 0 {
		s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(container("e0"))}}
	}
	return pod
}

func randomVolume(r *rand.Rand, i int) corev1.Volume {
	v := corev1.Volume{Name: fmt.Sprintf("v%d", i)}
	src := &v.VolumeSource
	types := []string{"hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
		"glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile",
		"configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
		"storageos", "csi", "ephemeral", "image", "none"}
	switch types[r.IntN(len(types))] {
	case "hostPath":
		src.HostPath = &corev1.HostPathVolumeSource{Path: strings.Repeat("/var", 1+r.IntN(2))}
	case "emptyDir":
		src.EmptyDir = &corev1.EmptyDirVolumeSource{}
	case "gcePersistentDisk":
		src.GCEPersistentDisk = &corev1.GCEPersistentDiskVolumeSource{}
	case "awsElasticBlockStore":
		src.AWSElasticBlockStore = &corev1.AWSElasticBlockStoreVolumeSource{}
	case "gitRepo":
		src.GitRepo = &corev1.GitRepoVolumeSource{}
	case "secret":
		src.Secret = &corev1.SecretVolumeSource{}
	case "nfs":
		src.NFS = &corev1.NFSVolumeSource{}
	case "iscsi":
		src.ISCSI = &corev1.ISCSIVolumeSource{}
	case "glusterfs":
		src.Glusterfs = &corev1.GlusterfsVolumeSource{}
	case "persistentVolumeClaim":
		src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{}
	case "rbd":
		src.RBD = &corev1.RBDVolumeSource{}
	case "flexVolume":
		src.FlexVolume = &corev1.FlexVolumeSource{}
	case "cinder":
		src.Cinder = &corev1.CinderVolumeSource{}
	case "cephfs":
		src.CephFS = &corev1.CephFSVolumeSource{}
	case "flocker":
		src.Flocker = &corev1.FlockerVolumeSource{}
	case "downwardAPI":
		src.DownwardAPI = &corev1.DownwardAPIVolumeSource{}
	case "fc":
		src.FC = &corev1.FCVolumeSource{}
	case "azureFile":
		src.AzureFile = &corev1.AzureFileVolumeSource{}
	case "configMap":
		src.ConfigMap = &corev1.ConfigMapVolumeSource{}
	case "vsphereVolume":
		src.VsphereVolume = &corev1.VsphereVirtualDiskVolumeSource{}
	case "quobyte":
		src.Quobyte = &corev1.QuobyteVolumeSource{}
	case "azureDisk":
		src.AzureDisk = &corev1.AzureDiskVolumeSource{}
	case "photonPersistentDisk":
		src.PhotonPersistentDisk = &corev1.PhotonPersistentDiskVolumeSource{}
	case "projected":
		src.Projected = &corev1.ProjectedVolumeSource{}
	case "portworxVolume":
		src.PortworxVolume = &corev1.PortworxVolumeSource{}
	case "scaleIO":
		src.ScaleIO = &corev1.ScaleIOVolumeSource{}
	case "storageos":
		src.StorageOS = &corev1.StorageOSVolumeSource{}
	case "csi":
		src.CSI = &corev1.CSIVolumeSource{}
	case "ephemeral":
		src.Ephemeral = &corev1.EphemeralVolumeSource{}
	case "image":
		src.Image = &corev1.ImageVolumeSource{}
	}
	return v
}
