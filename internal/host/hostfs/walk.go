package hostfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// DefaultMaxDepth bounds how deep a walk goes (and so how many directory
// descriptors it holds at once).
const DefaultMaxDepth = 64

// WalkOptions tune Walk.
type WalkOptions struct {
	// CrossDevices lets the walk enter other mounts below the root
	// (pseudo file systems are never entered).
	CrossDevices bool
	// MaxDepth bounds the depth (DefaultMaxDepth when 0).
	MaxDepth int
	// SkipDir, when set, is asked before a directory is entered (rel is
	// slash-separated from the root, without a leading slash).
	SkipDir func(rel string) bool
	// SkipFile, when set, is asked before a regular file is opened.
	SkipFile func(rel string, size int64) bool
}

// WalkStats counts what a walk saw.
type WalkStats struct {
	Dirs, Files                  uint64
	Symlinks, Special, Skipped   uint64
	OtherDevice, Pseudo, TooDeep uint64
	Errors                       uint64
}

// Visit is called for each regular file with the file open read-only and
// its fstat. rel is slash-separated from the root. The walk closes f when
// Visit returns. An error from Visit stops the walk and is returned.
type Visit func(ctx context.Context, rel string, f *os.File, st *unix.Stat_t) error

// Walk visits every regular file below root. It moves only through
// directory descriptors (openat with O_NOFOLLOW from the parent's
// descriptor), so it never follows a symbolic link and never leaves the
// tree under root, whatever the tree's links say or how it changes during
// the walk. Symbolic links, devices, FIFOs and sockets are counted and
// skipped. Errors on single entries (gone, permission) are counted and
// the walk goes on; ctx ends it.
func Walk(ctx context.Context, root *os.File, opt WalkOptions, visit Visit) (WalkStats, error) {
	var ws WalkStats
	if opt.MaxDepth <= 0 {
		opt.MaxDepth = DefaultMaxDepth
	}
	var rst unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &rst); err != nil {
		return ws, fmt.Errorf("hostfs: stat walk root %s: %w", root.Name(), err)
	}
	if rst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return ws, fmt.Errorf("hostfs: walk root %s is not a directory", root.Name())
	}
	if name, pseudo, err := PseudoFS(int(root.Fd())); err != nil {
		return ws, err
	} else if pseudo {
		return ws, fmt.Errorf("hostfs: walk root %s is on %s, a pseudo file system", root.Name(), name)
	}
	// The root may have been walked before: read its entries from the start.
	if _, err := unix.Seek(int(root.Fd()), 0, 0); err != nil {
		return ws, fmt.Errorf("hostfs: rewind walk root %s: %w", root.Name(), err)
	}
	w := &walker{opt: opt, dev: rst.Dev, visit: visit, stats: &ws}
	ws.Dirs++
	err := w.dir(ctx, root, "", 0)
	return ws, err
}

type walker struct {
	opt   WalkOptions
	dev   uint64
	visit Visit
	stats *WalkStats
}

func (w *walker) dir(ctx context.Context, d *os.File, rel string, depth int) error {
	buf := make([]byte, direntBuf)
	dfd := int(d.Fd())
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			w.stats.Errors++
			return nil // an unreadable directory is counted, not fatal
		}
		if n == 0 {
			return nil
		}
		ents, perr := parseDirents(buf[:n])
		if perr != nil {
			w.stats.Errors++
			return nil
		}
		for _, e := range ents {
			if err := w.entry(ctx, dfd, rel, e, depth); err != nil {
				return err
			}
		}
	}
}

// direntBuf is one getdents64(2) read.
const direntBuf = 32 << 10

type dirent struct {
	name string
	typ  uint8
}

// parseDirents decodes struct linux_dirent64 records, dropping "." and "..".
func parseDirents(b []byte) ([]dirent, error) {
	var out []dirent
	for len(b) > 0 {
		if len(b) < 19 {
			return out, fmt.Errorf("hostfs: short dirent (%d bytes)", len(b))
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < 20 || reclen > len(b) {
			return out, fmt.Errorf("hostfs: bad dirent length %d of %d", reclen, len(b))
		}
		typ := b[18]
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		b = b[reclen:]
		if len(name) == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		out = append(out, dirent{name: string(name), typ: typ})
	}
	return out, nil
}

func (w *walker) entry(ctx context.Context, dfd int, rel string, e dirent, depth int) error {
	child := path.Join(rel, e.name)
	typ := e.typ
	if typ == unix.DT_UNKNOWN {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			w.stats.Errors++
			return nil
		}
		typ = dtOf(st.Mode)
	}
	switch typ {
	case unix.DT_LNK:
		w.stats.Symlinks++
		return nil
	case unix.DT_DIR:
		return w.subdir(ctx, dfd, child, e.name, depth)
	case unix.DT_REG:
		return w.file(ctx, dfd, child, e.name)
	default:
		w.stats.Special++
		return nil
	}
}

func dtOf(m uint32) uint8 {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFLNK:
		return unix.DT_LNK
	case unix.S_IFREG:
		return unix.DT_REG
	}
	return unix.DT_CHR
}

func (w *walker) subdir(ctx context.Context, dfd int, child, name string, depth int) error {
	if depth+1 > w.opt.MaxDepth {
		w.stats.TooDeep++
		return nil
	}
	if w.opt.SkipDir != nil && w.opt.SkipDir(child) {
		w.stats.Skipped++
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		w.stats.Errors++
		return nil
	}
	sub := os.NewFile(uintptr(fd), child)
	defer sub.Close() // read-only directory
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		w.stats.Errors++
		return nil
	}
	if _, pseudo, err := PseudoFS(fd); err != nil || pseudo {
		w.stats.Pseudo++
		return nil
	}
	if st.Dev != w.dev && !w.opt.CrossDevices {
		w.stats.OtherDevice++
		return nil
	}
	w.stats.Dirs++
	return w.dir(ctx, sub, child, depth+1)
}

func (w *walker) file(ctx context.Context, dfd int, child, name string) error {
	if w.opt.SkipFile != nil {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			w.stats.Errors++
			return nil
		}
		if w.opt.SkipFile(child, st.Size) {
			w.stats.Skipped++
			return nil
		}
	}
	fd, err := unix.Openat(dfd, name, openFileFlags|unix.O_NOFOLLOW, 0)
	if err != nil {
		w.stats.Errors++
		return nil
	}
	f := os.NewFile(uintptr(fd), child)
	defer f.Close() // read-only
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		w.stats.Errors++
		return nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		w.stats.Special++ // swapped for something else since the listing
		return nil
	}
	w.stats.Files++
	return w.visit(ctx, child, f, &st)
}
