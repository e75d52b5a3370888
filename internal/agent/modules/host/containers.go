package host

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"mamori/internal/model"
)

// containerIDRE finds a container ID in a cgroup path: the 64 hex digits
// containerd, CRI-O and Docker name their scopes and directories with
// ("docker-<id>.scope", "cri-containerd-<id>.scope", ".../<id>").
var containerIDRE = regexp.MustCompile(`(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// containerOf attributes a process to its container from its cgroup (nil
// for a host process or one that is gone). The runtime module resolves
// names, images and pods; here the ID is what a host event can carry
// without a runtime client.
func containerOf(procDir string, pid int) *model.ContainerRef {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "0::/system.slice/docker-<id>.scope", "4:cpu:/kubepods/.../<id>"
		line := sc.Bytes()
		i := bytes.LastIndexByte(line, ':')
		if i < 0 {
			continue
		}
		if m := containerIDRE.FindSubmatch(line[i+1:]); m != nil {
			return &model.ContainerRef{ID: string(m[1])}
		}
	}
	return nil
}

// containerPIDs returns one process of each running container: processes
// whose root directory (/proc/PID/root) is not the host's, one per
// distinct root (a chroot, a pivot_root into a container's file system).
// Their roots are what a scan of containers reads, through /proc/PID/root.
func containerPIDs(procDir string) []int {
	// The host's root is init's; where init cannot be looked at (a
	// sandbox that hides it), the agent's own (an agent on the host).
	var host unix.Stat_t
	if err := unix.Stat(filepath.Join(procDir, "1", "root"), &host); err != nil {
		if err := unix.Stat(filepath.Join(procDir, "self", "root"), &host); err != nil {
			return nil
		}
	}
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	type key struct{ dev, ino uint64 }
	seen := map[key]int{}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == self {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(procDir, e.Name(), "root"), &st); err != nil {
			continue // gone, or a kernel thread
		}
		k := key{st.Dev, st.Ino}
		if k == (key{host.Dev, host.Ino}) {
			continue
		}
		if old, ok := seen[k]; !ok || pid < old {
			seen[k] = pid
		}
	}
	out := make([]int, 0, len(seen))
	for _, pid := range seen {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}
