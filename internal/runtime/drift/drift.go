// Package drift tells whether a file a container executed is part of its
// image: a file of the image's layers (the overlay's lower dirs), or one
// written or changed after the container started (its upper dir, or a
// memory file system). Executing the latter is drift, which runtime rules
// read as event.Drift.
//
// The decision uses the event's path (as the process saw it), device and
// inode. The device says whether the file is on the container's root
// overlay at all (a volume or a tmpfs is another device). On the overlay,
// a regular file at the path in the upper dir is drift (a new file, or an
// image file modified in place: overlay copies it up first); otherwise the
// file must be in a lower dir with the event's inode (overlay reports a
// lower file's own inode number when all layers share one file system, as
// containerd's and Docker's snapshotters have them), or it is drift that
// has since been renamed or deleted. Paths are resolved beneath the layer
// dirs with openat2 and no symlinks, so a hostile container cannot point
// the check outside its layers.
package drift

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
)

// Layer is where an executed file was found.
type Layer string

const (
	LayerImage    Layer = "image"    // an image file, unchanged
	LayerUpper    Layer = "upper"    // a new file in the container's writable layer
	LayerModified Layer = "modified" // an image file changed after start (copied up)
	LayerMemory   Layer = "memory"   // on a memory file system (tmpfs, ramfs): written after start
	LayerVolume   Layer = "volume"   // on another mount (volume, config map, host path): not the image's to judge
	LayerGone     Layer = "gone"     // neither in the upper dir nor in the image any more: renamed or deleted after exec
)

// Verdict is the decision about one executed file.
type Verdict struct {
	Drift bool   `json:"drift"`
	Layer Layer  `json:"layer"`
	Mount string `json:"mount,omitempty"` // mount point, for LayerMemory and LayerVolume
}

// memoryFS are the file systems whose every file was written after the
// container started.
var memoryFS = map[string]bool{"tmpfs": true, "ramfs": true, "hugetlbfs": true}

// Defaults of the Detector.
const (
	// DefaultMaxContainers bounds the cached root file systems.
	DefaultMaxContainers = 4096
	// DefaultMaxFiles bounds the cached lower-dir answers (image files
	// are executed again and again: the shell, the interpreter).
	DefaultMaxFiles = 65536
)

// Detector decides drift for executed files, caching each container's
// root file system and the image-membership of files. Safe for concurrent use.
type Detector struct {
	procRoot string
	hostRoot string

	// mu guards rootfs and the lifetime of its open layer dirs: checks
	// hold it shared while they use them, replacing or closing takes it.
	mu     sync.RWMutex
	rootfs map[container.Key]*layers

	imgMu sync.Mutex
	image map[fileKey]bool

	checks, drifts, errs atomic.Uint64
}

// layers is a container's root file system with its layer dirs open
// (O_PATH), so that a check does one openat2 per layer it asks.
type layers struct {
	pid   int
	start uint64
	rf    Rootfs
	upper int
	lower []int
}

func openLayers(rf Rootfs, pid int, start uint64) (*layers, error) {
	ls := &layers{pid: pid, start: start, rf: rf, upper: -1}
	open := func(dir string) (int, error) {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("drift: open layer %s: %w", dir, err)
		}
		return fd, nil
	}
	var err error
	if ls.upper, err = open(rf.Upper); err != nil {
		return nil, err
	}
	for _, l := range rf.Lower {
		fd, err := open(l)
		if err != nil {
			ls.close()
			return nil, err
		}
		ls.lower = append(ls.lower, fd)
	}
	return ls, nil
}

func (ls *layers) close() {
	if ls.upper >= 0 {
		unix.Close(ls.upper)
	}
	for _, fd := range ls.lower {
		unix.Close(fd)
	}
	ls.upper, ls.lower = -1, nil
}

type fileKey struct {
	c    container.Key
	path string
	ino  uint64
}

// Option configures a Detector.
type Option func(*Detector) error

// WithProcRoot reads processes from another /proc (default "/proc").
func WithProcRoot(p string) Option {
	return func(d *Detector) error {
		if p == "" {
			return errors.New("drift: empty proc root")
		}
		d.procRoot = p
		return nil
	}
}

// WithHostRoot prefixes the layer paths (which are paths in the runtime's
// mount namespace, the host's) with the host's root as the agent sees it:
// "/proc/1/root" for an agent in a container with the host's PID
// namespace. Default "/".
func WithHostRoot(p string) Option {
	return func(d *Detector) error {
		if p == "" || !filepath.IsAbs(p) {
			return fmt.Errorf("drift: host root %q is not absolute", p)
		}
		d.hostRoot = p
		return nil
	}
}

// New returns a Detector.
func New(opts ...Option) (*Detector, error) {
	d := &Detector{
		procRoot: "/proc",
		hostRoot: "/",
		rootfs:   map[container.Key]*layers{},
		image:    map[fileKey]bool{},
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Apply decides drift for an exec event of container c and sets e.Drift.
// Other events, and host events (c nil), are left alone. An error (the
// container's root is not an overlay, its process is gone) leaves
// e.Drift false and is returned for the agent to count.
func (d *Detector) Apply(e *event.Event, c *container.Info) (Verdict, error) {
	if e.Kind != event.KindExec || c == nil {
		return Verdict{}, nil
	}
	v, err := d.Check(c, e.Process.Exe, e.File.Dev, e.File.Inode)
	e.Drift = err == nil && v.Drift
	return v, err
}

// Check decides whether the file at path (as the container's processes
// see it) with device dev and inode ino (0 when unknown) is part of c's
// image.
func (d *Detector) Check(c *container.Info, p string, dev, ino uint64) (Verdict, error) {
	d.checks.Add(1)
	v, err := d.check(c, p, dev, ino)
	if err != nil {
		d.errs.Add(1)
		return Verdict{}, err
	}
	if v.Drift {
		d.drifts.Add(1)
	}
	return v, nil
}

func (d *Detector) check(c *container.Info, p string, dev, ino uint64) (Verdict, error) {
	if !path.IsAbs(p) || len(p) > event.MaxPathBytes || strings.ContainsRune(p, 0) {
		return Verdict{}, fmt.Errorf("drift: path %s is not absolute or too long", event.Quote(p, 80))
	}
	rel := strings.TrimPrefix(path.Clean(p), "/")
	if rel == "" {
		return Verdict{}, fmt.Errorf("drift: path %s names the root", event.Quote(p, 80))
	}
	ls, err := d.layersOf(c)
	if err != nil {
		return Verdict{}, err
	}
	defer d.mu.RUnlock()
	rf := &ls.rf
	if dev != 0 && dev != rf.Dev {
		m, ok := rf.mountOf(dev)
		if !ok {
			return Verdict{}, fmt.Errorf("drift: %s is on device %d:%d, not a mount of container %s",
				event.Quote(p, 80), unix.Major(dev), unix.Minor(dev), c.ID)
		}
		if memoryFS[m.FSType] {
			return Verdict{Drift: true, Layer: LayerMemory, Mount: m.MountPoint}, nil
		}
		return Verdict{Layer: LayerVolume, Mount: m.MountPoint}, nil
	}
	up, err := lookup(ls.upper, rf.Upper, rel, rf.UserXattr)
	switch {
	case err == nil && up.regular && !up.metacopy:
		if up.origin {
			return Verdict{Drift: true, Layer: LayerModified}, nil
		}
		return Verdict{Drift: true, Layer: LayerUpper}, nil
	case err != nil && !notHere(err):
		return Verdict{}, err
	}
	// Not written in the container (or only its metadata changed): an
	// image file if a lower dir has it with this inode.
	k := fileKey{c: key(c), path: rel, ino: ino}
	d.imgMu.Lock()
	inImage, cached := d.image[k]
	d.imgMu.Unlock()
	if !cached {
		inImage = false
		for i, fd := range ls.lower {
			f, err := lookup(fd, rf.Lower[i], rel, rf.UserXattr)
			if err != nil {
				if notHere(err) {
					continue
				}
				return Verdict{}, err
			}
			if f.regular && (ino == 0 || f.ino == ino) {
				inImage = true
			}
			// The topmost layer holding the path is the one the merged view
			// shows: lower layers below it do not count.
			break
		}
		if up.metacopy && ino != 0 && up.ino == ino {
			inImage = true // a metacopy upper keeps the lower's data
		}
		d.imgMu.Lock()
		if len(d.image) >= DefaultMaxFiles {
			clear(d.image)
		}
		d.image[k] = inImage
		d.imgMu.Unlock()
	}
	if inImage {
		return Verdict{Layer: LayerImage}, nil
	}
	return Verdict{Drift: true, Layer: LayerGone}, nil
}

func key(c *container.Info) container.Key {
	rt := c.Runtime
	if rt == container.RuntimeCRI {
		rt = container.RuntimeContainerd
	}
	return container.Key{Runtime: rt, Namespace: c.RuntimeNamespace, ID: c.ID}
}

// layersOf returns c's root file system with its layers open, and
// returns with d.mu held shared (the caller releases it) unless it fails.
// It is cached while c's init process is the same process.
func (d *Detector) layersOf(c *container.Info) (*layers, error) {
	k := key(c)
	d.mu.RLock()
	ls, ok := d.rootfs[k]
	if ok && ls.pid == c.PID && ls.start == c.PIDStart {
		return ls, nil
	}
	d.mu.RUnlock()
	rf, err := ResolveRootfs(d.procRoot, c.PID, c.PIDStart)
	if err != nil {
		return nil, fmt.Errorf("drift: container %s: %w", c.ID, err)
	}
	if d.hostRoot != "/" {
		rf.Upper = filepath.Join(d.hostRoot, rf.Upper)
		for i, l := range rf.Lower {
			rf.Lower[i] = filepath.Join(d.hostRoot, l)
		}
	}
	ls, err = openLayers(rf, c.PID, c.PIDStart)
	if err != nil {
		return nil, fmt.Errorf("drift: container %s: %w", c.ID, err)
	}
	d.mu.Lock()
	if old, ok := d.rootfs[k]; ok {
		old.close()
	}
	if len(d.rootfs) >= DefaultMaxContainers {
		for _, l := range d.rootfs {
			l.close()
		}
		clear(d.rootfs)
	}
	d.rootfs[k] = ls
	d.mu.Unlock()
	d.mu.RLock()
	if d.rootfs[k] != ls {
		// Replaced or evicted meanwhile by another check.
		d.mu.RUnlock()
		return nil, fmt.Errorf("drift: container %s: root file system changed during the check", c.ID)
	}
	return ls, nil
}

// Forget drops what is cached about a container (it exited) and closes
// its layer dirs.
func (d *Detector) Forget(k container.Key) {
	if k.Runtime == container.RuntimeCRI {
		k.Runtime = container.RuntimeContainerd
	}
	d.mu.Lock()
	if ls, ok := d.rootfs[k]; ok {
		ls.close()
		delete(d.rootfs, k)
	}
	d.mu.Unlock()
	d.imgMu.Lock()
	for fk := range d.image {
		if fk.c == k {
			delete(d.image, fk)
		}
	}
	d.imgMu.Unlock()
}

// Close closes every cached container's layer dirs.
func (d *Detector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ls := range d.rootfs {
		ls.close()
	}
	clear(d.rootfs)
	return nil
}

// Stats are the detector's counters.
type Stats struct {
	Checks, Drifts, Errors uint64
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	return Stats{Checks: d.checks.Load(), Drifts: d.drifts.Load(), Errors: d.errs.Load()}
}

// found is what a layer dir holds at a path.
type found struct {
	regular  bool
	ino      uint64
	origin   bool // copied up from a lower layer
	metacopy bool // only metadata copied up (data still the lower's)
}

// errWhiteout says a layer deletes the path (a 0:0 character device).
var errWhiteout = errors.New("drift: whiteout")

// notHere says a lookup found nothing usable at the path in that layer:
// absent, whited out, or behind a symlink (which the merged view of an
// executed path cannot have had: the path is the kernel's, symlink-free).
func notHere(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) ||
		errors.Is(err, unix.EXDEV) || errors.Is(err, errWhiteout)
}

// lookup opens rel beneath the layer dir dfd (named dir in errors)
// without following symlinks or leaving the dir's mount, and reports what
// is there.
func lookup(dfd int, dir, rel string, userXattr bool) (found, error) {
	fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return found{}, fmt.Errorf("drift: look up %s in %s: %w", event.Quote(rel, 80), dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return found{}, fmt.Errorf("drift: stat %s in %s: %w", event.Quote(rel, 80), dir, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		return found{}, errWhiteout
	}
	f := found{regular: st.Mode&unix.S_IFMT == unix.S_IFREG, ino: st.Ino}
	if f.regular {
		prefix := "trusted.overlay."
		if userXattr {
			prefix = "user.overlay."
		}
		// An O_PATH descriptor takes no fgetxattr: its /proc link does.
		fdPath := "/proc/self/fd/" + strconv.Itoa(fd)
		f.origin = hasXattr(fdPath, prefix+"origin")
		f.metacopy = hasXattr(fdPath, prefix+"metacopy")
	}
	return f, nil
}

func hasXattr(p, name string) bool {
	_, err := unix.Getxattr(p, name, nil)
	return err == nil
}
