package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// fileidKernfs is the file handle type of kernfs (cgroupfs) handles:
// FILEID_KERNFS in include/linux/exportfs.h. A cgroup's handle is its
// 64-bit id, which is also its directory's inode number and what
// bpf_get_current_cgroup_id returns.
const fileidKernfs = 0xfe

// Cgroup2 is the cgroup v2 (unified) hierarchy: /sys/fs/cgroup on a v2
// host, /sys/fs/cgroup/unified on a hybrid one (systemd's layout, as on
// these machines).
type Cgroup2 struct {
	Mount string // absolute mount point; "" when no cgroup2 is mounted (pure v1)
}

// FindCgroup2 finds the cgroup2 mount in a mountinfo (of the agent's own
// mount namespace: /proc/self/mountinfo).
func FindCgroup2(mountinfo []byte) Cgroup2 {
	for _, m := range ParseMountinfo(mountinfo) {
		if m.FSType == "cgroup2" && m.Root == "/" {
			return Cgroup2{Mount: m.MountPoint}
		}
	}
	return Cgroup2{}
}

// ID returns the cgroup id of a path relative to the hierarchy's root
// (as in /proc/PID/cgroup): its directory's inode number.
func (c Cgroup2) ID(rel string) (uint64, error) {
	if c.Mount == "" {
		return 0, errors.New("no cgroup2 hierarchy mounted")
	}
	if strings.Contains(rel, "..") {
		return 0, fmt.Errorf("%w: cgroup path %q", ErrMalformed, rel)
	}
	var st unix.Stat_t
	p := filepath.Join(c.Mount, filepath.Clean("/"+rel))
	if err := unix.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	return st.Ino, nil
}

// Path returns the path (relative to the hierarchy's root, "/a/b") of the
// live cgroup with the given id, by opening it by file handle
// (open_by_handle_at; needs CAP_DAC_READ_SEARCH). A removed cgroup gives
// an error wrapping unix.ESTALE.
func (c Cgroup2) Path(id uint64) (string, error) {
	if c.Mount == "" {
		return "", errors.New("no cgroup2 hierarchy mounted")
	}
	mfd, err := unix.Open(c.Mount, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", c.Mount, err)
	}
	defer unix.Close(mfd)
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], id)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(fileidKernfs, b[:]), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_PATH)
	if err != nil {
		return "", fmt.Errorf("open cgroup %d by handle: %w", id, err)
	}
	defer unix.Close(fd)
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("cgroup %d path: %w", id, err)
	}
	rel, ok := strings.CutPrefix(target, c.Mount)
	if !ok || (rel != "" && rel[0] != '/') {
		return "", fmt.Errorf("cgroup %d resolved outside %s: %q", id, c.Mount, target)
	}
	if rel == "" {
		rel = "/"
	}
	return rel, nil
}

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	ID, Parent   int
	Major, Minor uint32
	Root         string // the mounted directory of the file system
	MountPoint   string
	FSType       string
	Source       string
	// SuperOptions are the per-superblock options (overlay's lowerdir and
	// upperdir live here), still escaped: a comma inside a value is \054,
	// so split with Options.
	SuperOptions string
}

// Options splits the super options at their commas and unescapes each
// ("upperdir=/a b" from "upperdir=/a\040b").
func (m Mount) Options() []string {
	if m.SuperOptions == "" {
		return nil
	}
	parts := strings.Split(m.SuperOptions, ",")
	for i, p := range parts {
		parts[i] = Unescape(p)
	}
	return parts
}

// Dev returns the mount's device encoded as stat(2)'s st_dev, the form
// of event.File.Dev.
func (m Mount) Dev() uint64 { return unix.Mkdev(m.Major, m.Minor) }

// maxMountinfoLine bounds one mountinfo line (overlay option strings of
// 100-layer images run to several KiB).
const maxMountinfoLine = 64 << 10

// ParseMountinfo reads /proc/PID/mountinfo (proc(5)); malformed lines are
// skipped. Octal escapes (\040 for a space) are decoded.
func ParseMountinfo(b []byte) []Mount {
	var out []Mount
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 || len(line) > maxMountinfoLine {
			continue
		}
		if m, ok := parseMountLine(string(line)); ok {
			out = append(out, m)
		}
	}
	return out
}

func parseMountLine(line string) (Mount, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, false
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 6 || len(g) < 2 {
		return Mount{}, false
	}
	var m Mount
	var err error
	if m.ID, err = atoi(f[0]); err != nil {
		return Mount{}, false
	}
	if m.Parent, err = atoi(f[1]); err != nil {
		return Mount{}, false
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return Mount{}, false
	}
	ma, err1 := atoi(maj)
	mi, err2 := atoi(min)
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 || ma >= 1<<12 || mi >= 1<<20 {
		return Mount{}, false
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	m.Root = Unescape(f[3])
	m.MountPoint = Unescape(f[4])
	m.FSType = Unescape(g[0])
	m.Source = Unescape(g[1])
	if len(g) > 2 {
		m.SuperOptions = g[2]
	}
	return m, true
}

func atoi(s string) (int, error) {
	n := 0
	if s == "" || len(s) > 9 {
		return 0, ErrMalformed
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrMalformed
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, nil
}

// Unescape decodes the octal escapes (\040 \011 \012 \134) the kernel
// writes in mountinfo fields.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			v := int(s[i+1]-'0')<<6 | int(s[i+2]-'0')<<3 | int(s[i+3]-'0')
			if v < 256 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}
