// Package hostfs holds the file-system pieces the host protection engines
// share: file identity and change keys, a bounded verdict cache keyed by
// them, a tree walk that never follows a symbolic link and never leaves its
// root, opening a path inside a root (a container's /proc/PID/root) with
// openat2 RESOLVE_IN_ROOT, recognising pseudo file systems, and an I/O rate
// limit.
package hostfs

import "golang.org/x/sys/unix"

// FileID is a file's identity on this host: device and inode number.
type FileID struct {
	Dev, Ino uint64
}

// Change is what changes when a file's content or metadata changes. ctime
// moves on every write, chmod, chown, link and rename of the inode, and the
// kernel keeps it with nanosecond resolution when it has been observed
// (multigrain timestamps, Linux 6.13, on tmpfs, ext4, xfs and btrfs), so a
// rewrite between two stats is seen even within one clock tick. The inode's
// i_version is not exposed to user space (statx's STATX_CHANGE_COOKIE is
// kernel-internal), so ctime stands in for it. A file written through a
// shared mmap changes ctime only at writeback: a verdict may outlive such
// a change until then.
type Change struct {
	Size    int64
	MtimeNs int64
	CtimeNs int64
}

// IdentityOf returns the identity and change key of a stat result.
func IdentityOf(st *unix.Stat_t) (FileID, Change) {
	return FileID{Dev: st.Dev, Ino: st.Ino}, Change{
		Size:    st.Size,
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
	}
}
