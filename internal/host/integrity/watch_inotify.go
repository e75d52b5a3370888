package integrity

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// change is one file system notification, in machine paths.
type change struct {
	path string
	// subtree: a directory appeared (created or moved in) or went away
	// (moved out): its whole subtree must be looked at.
	subtree bool
	// overflow: the kernel dropped events; everything watched must be
	// rescanned.
	overflow bool
}

// watcher delivers file system changes under the paths it watches.
type watcher interface {
	// watch starts watching dir (a directory, machine path); recursive
	// watches its subdirectories too, skipping those skip says.
	watch(dir string, recursive bool, skip func(machinePath string) bool) error
	// run reads notifications until ctx ends or the watcher is closed,
	// sending them to out; it blocks while out is full (the kernel queue
	// then fills and overflows, which costs a rescan, never memory).
	run(ctx context.Context, out chan<- change) error
	close() error
	// name is "inotify" or "fanotify".
	name() string
}

// inotifyMask: everything that changes a file's content, metadata or
// presence. IN_MODIFY fires per write; the Monitor coalesces.
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK | unix.IN_ONLYDIR

// inotifyWatcher watches directories one by one (inotify is not
// recursive): every directory of a recursive tree gets a watch, and new
// directories get theirs as they appear.
type inotifyWatcher struct {
	f    *os.File
	fd   int
	mu   sync.Mutex
	wds  map[int32]string // watch descriptor -> directory
	dirs map[string]dirWatch
	// gate, when set, blocks the reader (tests overflow the queue with it).
	gate chan struct{}
	log  *slog.Logger
}

type dirWatch struct {
	wd        int32
	recursive bool
	skip      func(string) bool
}

func newInotify(log *slog.Logger) (*inotifyWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	// A non-blocking descriptor makes the File pollable: Close wakes Read.
	return &inotifyWatcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, wds: map[int32]string{}, dirs: map[string]dirWatch{}, log: log}, nil
}

func (w *inotifyWatcher) name() string { return "inotify" }

func (w *inotifyWatcher) close() error { return w.f.Close() }

func (w *inotifyWatcher) watch(dir string, recursive bool, skip func(string) bool) error {
	if err := w.add(dir, recursive, skip); err != nil {
		return err
	}
	if !recursive {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // vanished or unreadable: the scan reports it
		}
		if !d.IsDir() || p == dir {
			return nil
		}
		if skip != nil && skip(p) {
			return filepath.SkipDir
		}
		if err := w.add(p, true, skip); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("inotify watch limit reached at %s (fs.inotify.max_user_watches): %w", p, err)
			}
		}
		return nil
	})
}

func (w *inotifyWatcher) add(dir string, recursive bool, skip func(string) bool) error {
	wd, err := unix.InotifyAddWatch(w.fd, dir, inotifyMask)
	if err != nil {
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.wds[int32(wd)]; ok && old != dir {
		delete(w.dirs, old) // the inode moved: the watch follows it
	}
	w.wds[int32(wd)] = dir
	w.dirs[dir] = dirWatch{wd: int32(wd), recursive: recursive, skip: skip}
	return nil
}

// forget drops the watches of dir and below (moved away).
func (w *inotifyWatcher) forget(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, dw := range w.dirs {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			unix.InotifyRmWatch(w.fd, uint32(dw.wd)) // already gone is fine
			delete(w.dirs, p)
			delete(w.wds, dw.wd)
		}
	}
}

func (w *inotifyWatcher) run(ctx context.Context, out chan<- change) error {
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
			return fmt.Errorf("inotify read: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			end := off + unix.SizeofInotifyEvent + nameLen
			if end > n {
				break
			}
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
			off = end
			if c, ok := w.event(wd, mask, name); ok {
				select {
				case out <- c:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// event turns one inotify event into a change, adding and removing
// watches as directories come and go.
func (w *inotifyWatcher) event(wd int32, mask uint32, name string) (change, bool) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		return change{overflow: true}, true
	}
	w.mu.Lock()
	dir, ok := w.wds[wd]
	dw := w.dirs[dir]
	if mask&unix.IN_IGNORED != 0 && ok {
		delete(w.wds, wd)
		if w.dirs[dir].wd == wd {
			delete(w.dirs, dir)
		}
	}
	w.mu.Unlock()
	if !ok {
		return change{}, false
	}
	p := dir
	if name != "" {
		p = dir + "/" + name
	}
	isDir := mask&unix.IN_ISDIR != 0
	switch {
	case mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
		return change{path: dir, subtree: true}, true
	case isDir && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		if dw.recursive && (dw.skip == nil || !dw.skip(p)) {
			// Watch first, then let the monitor scan: files created before
			// the watch existed are found by the scan.
			if err := w.watch(p, true, dw.skip); err != nil {
				// The scan of the subtree still reports what is there now;
				// later changes below it wait for the scheduled compare.
				w.log.Warn("integrity: cannot watch new directory", "dir", SafeText(p), "err", err)
			}
		}
		return change{path: p, subtree: true}, true
	case isDir && mask&unix.IN_MOVED_FROM != 0:
		w.forget(p)
		return change{path: p, subtree: true}, true
	case isDir && mask&unix.IN_DELETE != 0:
		return change{path: p, subtree: true}, true
	case mask&unix.IN_IGNORED != 0:
		return change{}, false
	}
	return change{path: p}, true
}
