package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mamori/internal/runtime/container"
)

// The start-up sweep: the kernel reports a file the first time a
// container loads it after the sensor attached, so the executables and
// libraries that the processes of a container older than the agent mapped
// before are never reported (a long-running service is the common case).
// For those containers the forwarder reads, once, what their processes
// have mapped now: /proc/PID/exe and the file mappings of /proc/PID/maps
// (paths as the process's mount namespace names them, which is what the
// kernel shows for a namespace that is not the reader's). Their time is
// the sweep's.

// maxSweepMaps bounds the lines read from one process's maps.
const maxSweepMaps = 65_536

// sweeper decides which containers to sweep and reads their processes.
type sweeper struct {
	proc container.Proc
	// since is the sensor's start in USER_HZ ticks since boot: a container
	// whose init process started after it is reported by the kernel.
	since uint64
	swept map[string]bool
}

func newSweeper(procRoot string) *sweeper {
	s := &sweeper{proc: container.Proc{Root: procRoot}, swept: map[string]bool{}}
	if b, err := os.ReadFile(filepath.Join(procRoot, "uptime")); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if up, err := strconv.ParseFloat(f[0], 64); err == nil {
				s.since = uint64(up * 100)
			}
		}
	}
	return s
}

// due returns the containers of inv to sweep now (older than the sensor,
// not swept yet), and marks every container of inv as seen: containers
// that start later are the kernel's.
func (s *sweeper) due(inv container.Inventory) map[uint32]*container.Info {
	out := map[uint32]*container.Info{}
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.Sandbox || c.ID == "" || s.swept[c.ID] {
			continue
		}
		s.swept[c.ID] = true
		if c.MntNS != 0 && c.PIDStart != 0 && c.PIDStart <= s.since {
			out[c.MntNS] = c
		}
	}
	// Forget the containers that are gone (bounded by what runs).
	if len(s.swept) > 2*len(inv.Containers)+64 {
		now := map[string]bool{}
		for _, c := range inv.Containers {
			now[c.ID] = true
		}
		for id := range s.swept {
			if !now[id] {
				delete(s.swept, id)
			}
		}
	}
	return out
}

// sweep reads the mapped files of the processes in the containers' mount
// namespaces and queues them.
func (f *loadForwarder) sweep(s *sweeper, byMnt map[uint32]*container.Info) int {
	if len(byMnt) == 0 {
		return 0
	}
	ents, err := os.ReadDir(s.proc.Root)
	if err != nil {
		return 0
	}
	now := time.Now()
	seen := map[string]map[string]bool{}
	n := 0
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid <= 0 {
			continue
		}
		mnt, err := s.proc.NS(pid, "mnt")
		if err != nil {
			continue
		}
		c, ok := byMnt[mnt]
		if !ok {
			continue
		}
		set := seen[c.ID]
		if set == nil {
			set = map[string]bool{}
			seen[c.ID] = set
		}
		dir := filepath.Join(s.proc.Root, de.Name())
		paths := mappedFiles(filepath.Join(dir, "maps"))
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
			paths = append(paths, exe)
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") || set[p] {
				continue
			}
			set[p] = true
			skip := false
			for _, pre := range loadSkipPrefixes {
				skip = skip || strings.HasPrefix(p, pre)
			}
			if skip {
				continue
			}
			f.swept.Add(1)
			f.add(&c.Container, p, now)
			n++
		}
	}
	return n
}

// mappedFiles lists the file paths of a /proc/PID/maps (each once).
func mappedFiles(path string) []string {
	fh, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 4096), 8192)
	for i := 0; i < maxSweepMaps && sc.Scan(); i++ {
		// address perms offset dev inode pathname
		line := sc.Bytes()
		f := bytes.Fields(line)
		if len(f) < 6 || f[4][0] == '0' && len(f[4]) == 1 {
			continue // anonymous
		}
		// The path is everything after the fifth field (it may hold spaces).
		idx := bytes.Index(line, f[5])
		p := string(line[idx:])
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
