package integrity

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// fanotifyMask: directory entry and content/metadata events, on
// directories too. Directory entry events and FAN_ATTRIB need FID
// reporting (Linux 5.1); the name with the directory (FAN_REPORT_DFID_NAME)
// needs Linux 5.9.
const fanotifyMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO |
	unix.FAN_MODIFY | unix.FAN_ATTRIB | unix.FAN_CLOSE_WRITE | unix.FAN_DELETE_SELF | unix.FAN_MOVE_SELF | unix.FAN_ONDIR

// fanotifyWatcher puts one filesystem mark (FAN_MARK_FILESYSTEM) on each
// file system holding a watched directory: one mark sees every change on
// that file system, with no per-directory watches to add or to lose, so a
// new directory is covered the moment it exists. It needs CAP_SYS_ADMIN
// (marks) and CAP_DAC_READ_SEARCH (open_by_handle_at); changes outside
// the watched directories are dropped after their path is known.
type fanotifyWatcher struct {
	f  *os.File
	fd int
	mu sync.Mutex
	// mounts maps a file system id to a descriptor on it, to resolve the
	// directory handles events carry.
	mounts map[[2]int32]*os.File
	// scopes are the watched directories (machine paths).
	scopes []scope
	// dirCache maps directory handles to paths; cleared when a directory
	// moves, bounded by maxDirCache.
	dirCache map[string]string
	gate     chan struct{}
	log      *slog.Logger
}

type scope struct {
	dir       string
	recursive bool
	skip      func(string) bool
}

const maxDirCache = 65536

// fanMetadataSize is sizeof(struct fanotify_event_metadata).
const fanMetadataSize = 24

func newFanotify(log *slog.Logger) (*fanotifyWatcher, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_REPORT_DFID_NAME, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	return &fanotifyWatcher{f: os.NewFile(uintptr(fd), "fanotify"), fd: fd, mounts: map[[2]int32]*os.File{}, dirCache: map[string]string{}, log: log}, nil
}

func (w *fanotifyWatcher) name() string { return "fanotify" }

func (w *fanotifyWatcher) close() error {
	w.mu.Lock()
	for _, m := range w.mounts {
		m.Close()
	}
	w.mounts = map[[2]int32]*os.File{}
	w.mu.Unlock()
	return w.f.Close()
}

func fsidOf(p string) ([2]int32, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return [2]int32{}, err
	}
	return st.Fsid.Val, nil
}

func (w *fanotifyWatcher) watch(dir string, recursive bool, skip func(string) bool) error {
	id, err := fsidOf(dir)
	if err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	w.mu.Lock()
	_, marked := w.mounts[id]
	w.mu.Unlock()
	if !marked {
		if err := unix.FanotifyMark(w.fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, fanotifyMask, unix.AT_FDCWD, dir); err != nil {
			return fmt.Errorf("fanotify filesystem mark on %s: %w", dir, err)
		}
		m, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("open %s: %w", dir, err)
		}
		// open_by_handle_at must work on this file system (it does not on
		// some, e.g. without export operations): test with dir itself.
		if _, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0); err != nil {
			m.Close()
			unix.FanotifyMark(w.fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_FILESYSTEM, fanotifyMask, unix.AT_FDCWD, dir)
			return fmt.Errorf("file handles on %s: %w", dir, err)
		}
		w.mu.Lock()
		w.mounts[id] = m
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.scopes = append(w.scopes, scope{dir: dir, recursive: recursive, skip: skip})
	w.mu.Unlock()
	return nil
}

// inScope reports whether machine path p is under a watched directory.
func (w *fanotifyWatcher) inScope(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.scopes {
		if p == s.dir {
			return true
		}
		if !strings.HasPrefix(p, s.dir+"/") && s.dir != "/" {
			continue
		}
		if !s.recursive && strings.Contains(p[len(s.dir)+1:], "/") {
			continue
		}
		return true
	}
	return false
}

func (w *fanotifyWatcher) run(ctx context.Context, out chan<- change) error {
	stop := context.AfterFunc(ctx, func() { w.f.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		if w.gate != nil {
			select {
			case <-w.gate:
			case <-ctx.Done():
				return nil
			}
		}
		n, err := w.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("fanotify read: %w", err)
		}
		for off := 0; off+fanMetadataSize <= n; {
			evLen := int(binary.NativeEndian.Uint32(buf[off:]))
			if evLen < fanMetadataSize || off+evLen > n {
				break
			}
			ev := buf[off : off+evLen]
			off += evLen
			c, ok := w.event(ev)
			if !ok {
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// event decodes one event: struct fanotify_event_metadata, then info
// records; with FAN_REPORT_DFID_NAME the record of type
// FAN_EVENT_INFO_TYPE_DFID_NAME holds the fsid, the parent directory's
// file handle and the entry's name.
func (w *fanotifyWatcher) event(ev []byte) (change, bool) {
	metaLen := int(binary.NativeEndian.Uint16(ev[6:]))
	mask := binary.NativeEndian.Uint64(ev[8:])
	fd := int32(binary.NativeEndian.Uint32(ev[16:]))
	if fd >= 0 {
		unix.Close(int(fd)) // not expected with FID reporting; never leak one
	}
	if mask&unix.FAN_Q_OVERFLOW != 0 {
		return change{overflow: true}, true
	}
	for off := metaLen; off+4 <= len(ev); {
		typ := ev[off]
		l := int(binary.NativeEndian.Uint16(ev[off+2:]))
		if l < 4 || off+l > len(ev) {
			break
		}
		rec := ev[off : off+l]
		off += l
		if typ != unix.FAN_EVENT_INFO_TYPE_DFID_NAME && typ != unix.FAN_EVENT_INFO_TYPE_DFID {
			continue
		}
		dir, name, ok := w.resolve(rec)
		if !ok {
			return change{}, false
		}
		p := dir
		if name != "" && name != "." {
			p = strings.TrimSuffix(dir, "/") + "/" + name
		}
		isDir := mask&unix.FAN_ONDIR != 0
		if isDir && mask&(unix.FAN_MOVED_FROM|unix.FAN_MOVED_TO|unix.FAN_DELETE|unix.FAN_DELETE_SELF|unix.FAN_MOVE_SELF) != 0 {
			w.mu.Lock()
			clear(w.dirCache) // a directory moved: cached paths may be stale
			w.mu.Unlock()
		}
		if !w.inScope(p) && !w.inScope(dir) {
			return change{}, false
		}
		subtree := isDir && mask&(unix.FAN_CREATE|unix.FAN_MOVED_TO|unix.FAN_MOVED_FROM|unix.FAN_DELETE|unix.FAN_DELETE_SELF|unix.FAN_MOVE_SELF) != 0
		return change{path: p, subtree: subtree}, true
	}
	return change{}, false
}

// resolve turns a fid record (header, fsid, struct file_handle, name) into
// the directory's path and the entry name.
func (w *fanotifyWatcher) resolve(rec []byte) (string, string, bool) {
	const hdr = 4 + 8 // info header + fsid
	if len(rec) < hdr+8 {
		return "", "", false
	}
	id := [2]int32{int32(binary.NativeEndian.Uint32(rec[4:])), int32(binary.NativeEndian.Uint32(rec[8:]))}
	hb := int(binary.NativeEndian.Uint32(rec[hdr:]))
	htype := int32(binary.NativeEndian.Uint32(rec[hdr+4:]))
	if hb < 0 || hdr+8+hb > len(rec) {
		return "", "", false
	}
	handle := rec[hdr+8 : hdr+8+hb]
	name := ""
	if rest := rec[hdr+8+hb:]; len(rest) > 0 {
		if i := strings.IndexByte(string(rest), 0); i >= 0 {
			name = string(rest[:i])
		}
	}
	key := string(rec[4:hdr]) + strconv.Itoa(int(htype)) + string(handle)
	w.mu.Lock()
	dir, cached := w.dirCache[key]
	m := w.mounts[id]
	w.mu.Unlock()
	if cached {
		return dir, name, true
	}
	if m == nil {
		return "", "", false
	}
	fd, err := unix.OpenByHandleAt(int(m.Fd()), unix.NewFileHandle(htype, handle), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", "", false // the directory is gone already
	}
	dir, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	unix.Close(fd)
	if err != nil || strings.HasSuffix(dir, " (deleted)") {
		return "", "", false
	}
	w.mu.Lock()
	if len(w.dirCache) >= maxDirCache {
		clear(w.dirCache)
	}
	w.dirCache[key] = dir
	w.mu.Unlock()
	return dir, name, true
}
