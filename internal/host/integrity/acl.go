package integrity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// POSIX ACLs: the system.posix_acl_access and system.posix_acl_default
// extended attributes, struct posix_acl_xattr_header/entry of
// include/uapi/linux/posix_acl_xattr.h (little endian).
const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"

	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xFFFFFFFF
	// maxACLEntries bounds decoding; the kernel's own limit is
	// PAGE_SIZE-bound (about 500 entries on ext4 with 4 KiB blocks).
	maxACLEntries = 8192
)

// ACLEntry is one POSIX ACL entry.
type ACLEntry struct {
	Tag  uint16
	Perm uint16 // rwx bits: 4 read, 2 write, 1 execute
	ID   uint32 // uid or gid for user/group entries
}

var errBadACL = errors.New("bad POSIX ACL")

// DecodeACL decodes a system.posix_acl_* value.
func DecodeACL(b []byte) ([]ACLEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", errBadACL, len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclXattrVersion {
		return nil, fmt.Errorf("%w: version %d", errBadACL, v)
	}
	n := (len(b) - 4) / 8
	if n > maxACLEntries {
		return nil, fmt.Errorf("%w: %d entries", errBadACL, n)
	}
	out := make([]ACLEntry, 0, n)
	for i := 0; i < n; i++ {
		e := b[4+8*i:]
		ent := ACLEntry{Tag: binary.LittleEndian.Uint16(e), Perm: binary.LittleEndian.Uint16(e[2:]), ID: binary.LittleEndian.Uint32(e[4:])}
		switch ent.Tag {
		case aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther:
		default:
			return nil, fmt.Errorf("%w: entry %d has tag %#x", errBadACL, i, ent.Tag)
		}
		if ent.Perm&^7 != 0 {
			return nil, fmt.Errorf("%w: entry %d has permissions %#x", errBadACL, i, ent.Perm)
		}
		out = append(out, ent)
	}
	return out, nil
}

// FormatACL renders entries in getfacl's short text form:
// "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r--".
func FormatACL(es []ACLEntry) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		var tag, id string
		switch e.Tag {
		case aclUserObj:
			tag = "user"
		case aclUser:
			tag, id = "user", strconv.FormatUint(uint64(e.ID), 10)
		case aclGroupObj:
			tag = "group"
		case aclGroup:
			tag, id = "group", strconv.FormatUint(uint64(e.ID), 10)
		case aclMask:
			tag = "mask"
		case aclOther:
			tag = "other"
		}
		parts = append(parts, tag+":"+id+":"+rwx(e.Perm))
	}
	return strings.Join(parts, ",")
}

func rwx(p uint16) string {
	b := []byte("---")
	if p&4 != 0 {
		b[0] = 'r'
	}
	if p&2 != 0 {
		b[1] = 'w'
	}
	if p&1 != 0 {
		b[2] = 'x'
	}
	return string(b)
}
