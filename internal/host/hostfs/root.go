package hostfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotRegular: the path names something other than a regular file.
var ErrNotRegular = errors.New("hostfs: not a regular file")

// openFileFlags open a file for reading without side effects: O_NONBLOCK
// so a FIFO swapped in for a file does not block the open, O_NOCTTY so a
// terminal does not become ours.
const openFileFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_LARGEFILE

// OpenDir opens a directory to walk from, following symbolic links in
// path (the caller names the root it means).
func OpenDir(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open directory %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenProcRoot opens the root directory of process pid as it sees it
// (/proc/PID/root: a container's root file system). The /proc/PID
// directory is opened first and the root resolved from it, so a PID reused
// between the two steps fails with ESRCH instead of opening another
// process's root.
func OpenProcRoot(procDir string, pid int) (*os.File, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("hostfs: bad pid %d", pid)
	}
	if procDir == "" {
		procDir = "/proc"
	}
	pfd, err := unix.Open(filepath.Join(procDir, strconv.Itoa(pid)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open /proc/%d: %w", pid, err)
	}
	defer unix.Close(pfd) // a directory opened read-only
	fd, err := unix.Openat(pfd, "root", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open root of pid %d: %w", pid, err)
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("/proc/%d/root", pid)), nil
}

// OpenInRoot opens the regular file at path inside root, resolving the path
// as if root were "/" (openat2 RESOLVE_IN_ROOT: "..", absolute symbolic
// links and absolute paths all stay inside root) and refusing /proc magic
// links. It is how a path inside a container is opened from the host.
func OpenInRoot(root *os.File, path string) (*os.File, *unix.Stat_t, error) {
	how := unix.OpenHow{Flags: openFileFlags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	if err != nil {
		return nil, nil, fmt.Errorf("hostfs: open %s in %s: %w", path, root.Name(), err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root.Name(), rel))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = f.Close() // read-only
		return nil, nil, fmt.Errorf("hostfs: stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = f.Close() // read-only
		return nil, nil, fmt.Errorf("%w: %s", ErrNotRegular, f.Name())
	}
	return f, &st, nil
}

// OpenRegular opens path, following no symbolic link in its last
// component, and returns it only when it is a regular file.
func OpenRegular(path string) (*os.File, *unix.Stat_t, error) {
	fd, err := unix.Open(path, openFileFlags|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("hostfs: open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = f.Close() // read-only
		return nil, nil, fmt.Errorf("hostfs: stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = f.Close() // read-only
		return nil, nil, fmt.Errorf("%w: %s", ErrNotRegular, path)
	}
	return f, &st, nil
}

// OpenDirInRoot opens the directory at path inside root the way OpenInRoot
// opens a file (RESOLVE_IN_ROOT, no magic links).
func OpenDirInRoot(root *os.File, path string) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open directory %s in %s: %w", path, root.Name(), err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(root.Name(), rel)), nil
}
