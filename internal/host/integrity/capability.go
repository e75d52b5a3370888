package integrity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// File capabilities: the security.capability extended attribute, struct
// vfs_cap_data / vfs_ns_cap_data of include/uapi/linux/capability.h.
const (
	xattrCapability = "security.capability"

	vfsCapRevisionMask = 0xFF000000
	vfsCapRevision1    = 0x01000000 // 32-bit sets, 12 bytes
	vfsCapRevision2    = 0x02000000 // 64-bit sets, 20 bytes
	vfsCapRevision3    = 0x03000000 // 64-bit sets + namespace root uid, 24 bytes
	vfsCapFlagsEffect  = 0x000001
)

// capNames are the capability names by number (capability.h, up to
// CAP_CHECKPOINT_RESTORE = 40, Linux 5.9); higher numbers print as
// "cap_<n>".
var capNames = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
	"cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
	"cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock",
	"cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource",
	"cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write",
	"cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
	"cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
}

// Capability is a decoded security.capability attribute.
type Capability struct {
	Permitted   uint64
	Inheritable uint64
	Effective   bool
	// RootID is the owning user namespace's root uid (revision 3), -1
	// when the attribute has none.
	RootID int64
}

var errBadCapability = errors.New("bad security.capability")

// DecodeCapability decodes a security.capability value.
func DecodeCapability(b []byte) (Capability, error) {
	if len(b) < 4 {
		return Capability{}, fmt.Errorf("%w: %d bytes", errBadCapability, len(b))
	}
	magic := binary.LittleEndian.Uint32(b)
	c := Capability{Effective: magic&vfsCapFlagsEffect != 0, RootID: -1}
	switch rev := magic & vfsCapRevisionMask; rev {
	case vfsCapRevision1:
		if len(b) != 12 {
			return Capability{}, fmt.Errorf("%w: revision 1 with %d bytes", errBadCapability, len(b))
		}
		c.Permitted = uint64(binary.LittleEndian.Uint32(b[4:]))
		c.Inheritable = uint64(binary.LittleEndian.Uint32(b[8:]))
	case vfsCapRevision2, vfsCapRevision3:
		want := 20
		if rev == vfsCapRevision3 {
			want = 24
		}
		if len(b) != want {
			return Capability{}, fmt.Errorf("%w: revision %d with %d bytes", errBadCapability, rev>>24, len(b))
		}
		c.Permitted = uint64(binary.LittleEndian.Uint32(b[4:])) | uint64(binary.LittleEndian.Uint32(b[12:]))<<32
		c.Inheritable = uint64(binary.LittleEndian.Uint32(b[8:])) | uint64(binary.LittleEndian.Uint32(b[16:]))<<32
		if rev == vfsCapRevision3 {
			c.RootID = int64(binary.LittleEndian.Uint32(b[20:]))
		}
	default:
		return Capability{}, fmt.Errorf("%w: unknown revision %#x", errBadCapability, rev)
	}
	return c, nil
}

// String renders the capability sets the way getcap(8) does, grouping
// capabilities with the same flags: "cap_net_admin,cap_net_raw=ep", then
// " [rootid=N]" for namespaced capabilities.
func (c Capability) String() string {
	groups := map[string][]string{}
	for i := 0; i < 64; i++ {
		bit := uint64(1) << i
		flags := ""
		if c.Effective && c.Permitted&bit != 0 {
			flags += "e"
		}
		if c.Inheritable&bit != 0 {
			flags += "i"
		}
		if c.Permitted&bit != 0 {
			flags += "p"
		}
		if flags != "" {
			groups[flags] = append(groups[flags], capName(i))
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, strings.Join(groups[k], ",")+"="+k)
	}
	s := strings.Join(parts, " ")
	if s == "" {
		s = "="
	}
	if c.RootID >= 0 {
		s += " [rootid=" + strconv.FormatInt(c.RootID, 10) + "]"
	}
	return s
}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return "cap_" + strconv.Itoa(i)
}
