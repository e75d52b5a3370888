package testkube

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KubeletSysctls are the sysctls kubelet sets at start; scripts/cluster.sh
// restores them when the last cluster on the machine goes down.
var KubeletSysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
}

// ReadSysctls reads KubeletSysctls (missing ones are left out).
func ReadSysctls() map[string]string {
	m := map[string]string{}
	for _, k := range KubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
		if err == nil {
			m[k] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// Leftovers lists what a taken-down cluster of run dir dir left behind:
// the run dir, processes naming it, mounts under it, its cgroups, listeners
// on its ports (when portBase > 0), CNI result files naming it and, when before is
// given and no other cluster runs on the machine, sysctls not restored.
func Leftovers(dir string, portBase int, before map[string]string) []string {
	var left []string
	if _, err := os.Lstat(dir); err == nil {
		left = append(left, "run dir "+dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		if pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		left = append(left, fmt.Sprintf("process %s: %.120s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
				left = append(left, "mount "+fields[4])
			}
		}
		f.Close()
	}
	cg := CgroupRoot(dir)
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		if _, err := os.Stat(h + cg); err == nil {
			left = append(left, "cgroup "+h+cg)
		}
	}
	// CNI result files of pod networks never torn down name the pod's
	// network namespace, which lives under the run dir
	res, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, r := range res {
		if b, err := os.ReadFile(r); err == nil && bytes.Contains(b, []byte(dir+"/")) {
			left = append(left, "CNI result "+r)
		}
	}
	if portBase > 0 {
		for p := portBase; p < portBase+16; p++ {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), 200*time.Millisecond)
			if err == nil {
				c.Close()
				left = append(left, fmt.Sprintf("listener on 127.0.0.1:%d", p))
			}
		}
	}
	if len(before) > 0 && !otherClusters(dir) {
		now := ReadSysctls()
		for k, v := range before {
			if now[k] != v {
				left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", k, now[k], v))
			}
		}
	}
	return left
}

// otherClusters reports whether another scripts/cluster.sh cluster on this
// machine holds a port claim (then kubelet's sysctls stay as they are).
func otherClusters(dir string) bool {
	claims, _ := filepath.Glob(filepath.Join(os.TempDir(), "mamori-cluster-slots", "[0-9]*"))
	for _, c := range claims {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		owner := strings.TrimSpace(string(b))
		if owner == dir {
			continue
		}
		if _, err := os.Stat(owner); err == nil {
			return true
		}
	}
	return false
}
