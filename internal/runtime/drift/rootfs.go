package drift

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"mamori/internal/runtime/container"
)

// Rootfs is a container's root file system as the host sees it: the
// overlay mount runc made from the image's layers (lower, read-only) and
// the container's own writable layer (upper).
type Rootfs struct {
	// Dev is the overlay's device (st_dev encoding, as event.File.Dev): files
	// of the root file system carry it, files of other mounts do not.
	Dev   uint64
	Upper string   // absolute host path of the upper dir
	Lower []string // absolute host paths of the lower dirs, top first
	// Mounts are the container's other mounts (volumes, tmpfs, /proc ...).
	Mounts []container.Mount
	// UserXattr says the overlay keeps its attributes in user.overlay.*
	// (rootless runtimes' "userxattr" mounts) instead of trusted.overlay.*.
	UserXattr bool
}

// Errors of rootfs resolution.
var (
	// ErrNotOverlay says the container's root is not an overlay (a raw
	// rootfs, devmapper, a VM): drift cannot be told from layers.
	ErrNotOverlay = errors.New("drift: container root is not an overlay")
	// ErrGone says the container's init process is gone or is another
	// process now (PID reused).
	ErrGone = errors.New("drift: container process gone")
)

// maxMountinfo bounds a container's mountinfo (a few hundred mounts).
const maxMountinfo = 4 << 20

// ResolveRootfs reads the root overlay of the container whose init
// process is pid (/proc/PID/mountinfo, in the container's mount
// namespace) after checking that pid is still the process that started
// at startTicks (0: unchecked).
func ResolveRootfs(procRoot string, pid int, startTicks uint64) (Rootfs, error) {
	if pid <= 0 {
		return Rootfs{}, fmt.Errorf("%w: no PID", ErrGone)
	}
	proc := container.Proc{Root: procRoot}
	check := func() error {
		if startTicks == 0 {
			return nil
		}
		t, err := proc.StartTicks(pid)
		if err != nil || t != startTicks {
			return fmt.Errorf("%w: PID %d", ErrGone, pid)
		}
		return nil
	}
	if err := check(); err != nil {
		return Rootfs{}, err
	}
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "mountinfo"))
	if err != nil {
		return Rootfs{}, fmt.Errorf("%w: %w", ErrGone, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxMountinfo+1))
	f.Close()
	if err != nil {
		return Rootfs{}, fmt.Errorf("read mountinfo of %d: %w", pid, err)
	}
	if len(b) > maxMountinfo {
		return Rootfs{}, fmt.Errorf("mountinfo of %d: over %d bytes", pid, maxMountinfo)
	}
	// The mountinfo read may be another process's if the PID was reused
	// meanwhile.
	if err := check(); err != nil {
		return Rootfs{}, err
	}
	return ParseRootfs(b)
}

// ParseRootfs finds the root overlay in a container's mountinfo: the
// topmost mount at "/". Relative lower dirs (containerd and Docker shorten
// long option strings by mounting from the snapshot root) are resolved
// against the directory two levels above the upper dir, where both keep
// their layers.
func ParseRootfs(mountinfo []byte) (Rootfs, error) {
	ms := container.ParseMountinfo(mountinfo)
	root := -1
	for i, m := range ms {
		if m.MountPoint == "/" {
			root = i
		}
	}
	if root < 0 {
		return Rootfs{}, fmt.Errorf("%w: no mount at /", ErrNotOverlay)
	}
	rm := ms[root]
	if rm.FSType != "overlay" {
		return Rootfs{}, fmt.Errorf("%w: %s", ErrNotOverlay, rm.FSType)
	}
	rf := Rootfs{Dev: rm.Dev()}
	var lowers []string
	for _, o := range rm.Options() {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "upperdir":
			rf.Upper = v
		case "lowerdir":
			// ':' separates layers; overlay escapes a ':' in a path as "\:".
			lowers = append(lowers, splitLower(v)...)
		case "lowerdir+":
			lowers = append(lowers, v)
		case "userxattr":
			rf.UserXattr = true
		}
	}
	if rf.Upper == "" || !filepath.IsAbs(rf.Upper) {
		return Rootfs{}, fmt.Errorf("%w: overlay without an absolute upper dir (%q)", ErrNotOverlay, rf.Upper)
	}
	base := filepath.Dir(filepath.Dir(rf.Upper))
	for _, l := range lowers {
		if l == "" {
			continue
		}
		if !filepath.IsAbs(l) {
			l = filepath.Join(base, l)
		}
		rf.Lower = append(rf.Lower, filepath.Clean(l))
	}
	rf.Upper = filepath.Clean(rf.Upper)
	for i, m := range ms {
		if i != root {
			rf.Mounts = append(rf.Mounts, m)
		}
	}
	return rf, nil
}

// splitLower splits a lowerdir value at unescaped ':'.
func splitLower(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ':':
			cur.WriteByte(':')
			i++
		case v[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

// mountOf returns the container mount a device belongs to (the deepest
// when several share it); ok false when none does.
func (rf *Rootfs) mountOf(dev uint64) (container.Mount, bool) {
	var best container.Mount
	found := false
	for _, m := range rf.Mounts {
		if m.Dev() == dev && (!found || len(m.MountPoint) > len(best.MountPoint)) {
			best, found = m, true
		}
	}
	return best, found
}
