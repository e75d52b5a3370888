package hostfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pseudoFS are file systems whose files are not stored content: kernel
// interfaces (reading /proc/kcore or a tracefs pipe is huge, endless or has
// side effects) and automount points (walking into one mounts it).
var pseudoFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.PSTOREFS_MAGIC:      "pstore",
	configfsMagic:            "configfs",
	fusectlMagic:             "fusectl",
	mqueueMagic:              "mqueue",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	unix.AUTOFS_SUPER_MAGIC:  "autofs",
	unix.NSFS_MAGIC:          "nsfs",
}

// Magic numbers x/sys/unix does not name (include/uapi/linux/magic.h).
const (
	configfsMagic = 0x62656570
	fusectlMagic  = 0x65735543
	mqueueMagic   = 0x19800202
)

// PseudoFS reports whether the descriptor is on a pseudo file system
// (proc, sysfs, cgroup, debugfs, tracefs, …) and names it.
func PseudoFS(fd int) (string, bool, error) {
	var s unix.Statfs_t
	if err := unix.Fstatfs(fd, &s); err != nil {
		return "", false, fmt.Errorf("hostfs: fstatfs: %w", err)
	}
	name, ok := pseudoFS[int64(s.Type)]
	return name, ok, nil
}
