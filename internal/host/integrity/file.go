package integrity

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// FileType is the type of a file system object.
type FileType uint8

const (
	TypeRegular FileType = iota + 1
	TypeDir
	TypeSymlink
	TypeFIFO
	TypeSocket
	TypeCharDevice
	TypeBlockDevice
	TypeUnknown
)

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	case TypeCharDevice:
		return "char-device"
	case TypeBlockDevice:
		return "block-device"
	}
	return "unknown"
}

func fileType(mode uint32) FileType {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeRegular
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFIFO:
		return TypeFIFO
	case unix.S_IFSOCK:
		return TypeSocket
	case unix.S_IFCHR:
		return TypeCharDevice
	case unix.S_IFBLK:
		return TypeBlockDevice
	}
	return TypeUnknown
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// File is the recorded state of one path. It is kept compact: a baseline
// of /usr holds one per file.
type File struct {
	// Path is absolute and clean, relative to the scan root ("/etc/passwd").
	Path string
	Size int64
	// Mtime and Ctime are nanoseconds since the Unix epoch.
	Mtime, Ctime int64
	Inode        uint64
	// SHA256 is the content digest of a regular file when Hashed.
	SHA256 [32]byte
	// Link is a symlink's target.
	Link string
	// Xattrs are the extended attributes, sorted by name (nil: none).
	Xattrs []Xattr
	// Mode holds the permission bits with setuid, setgid and sticky (07777).
	Mode     uint32
	UID, GID uint32
	Nlink    uint32
	// Rule indexes the rule set's rules (RuleSet.Rules) that governs Path.
	Rule   uint16
	Type   FileType
	Hashed bool
}

// Limits of what is read from one file's metadata.
const (
	// maxXattrs caps the extended attributes kept per file; real files
	// carry a handful (security.selinux, security.capability, ACLs).
	maxXattrs = 64
	// maxXattrValue is the kernel's own XATTR_SIZE_MAX.
	maxXattrValue = 64 << 10
	// MaxAttrLen caps one attribute value in an Event (the event store's
	// text limit is 4096 bytes).
	MaxAttrLen = 1024
)

// stat fills the metadata of f from st.
func (f *File) stat(st *unix.Stat_t) {
	f.Type = fileType(st.Mode)
	f.Mode = st.Mode & 07777
	f.UID, f.GID = st.Uid, st.Gid
	f.Nlink = uint32(st.Nlink)
	f.Size = st.Size
	f.Mtime = st.Mtim.Nano()
	f.Ctime = st.Ctim.Nano()
	f.Inode = st.Ino
}

// sameVersion reports whether a and b look like the same unchanged file
// content: same type, inode, size, mtime and ctime. Rewriting a file
// changes its ctime, which user space cannot set back, so a file that
// passes this test was not written since (what AIDE and rsync rely on too).
func sameVersion(a, b *File) bool {
	return a.Type == b.Type && a.Inode == b.Inode && a.Size == b.Size && a.Mtime == b.Mtime && a.Ctime == b.Ctime
}

// lstatFile reads the metadata of the file at full (the path on this
// machine) into a File for path (the logical path).
func lstatFile(full, path string) (File, error) {
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return File{}, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	f := File{Path: path}
	f.stat(&st)
	if err := f.readExtra(full); err != nil {
		return File{}, err
	}
	return f, nil
}

// readExtra reads a symlink's target and the extended attributes.
func (f *File) readExtra(full string) error {
	if f.Type == TypeSymlink {
		l, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", f.Path, err)
		}
		f.Link = l
	}
	x, err := readXattrs(full)
	if err != nil {
		return fmt.Errorf("xattrs of %s: %w", f.Path, err)
	}
	f.Xattrs = x
	return nil
}

var xattrBufs = sync.Pool{New: func() any { b := make([]byte, 1024); return &b }}

// readXattrs lists and reads the extended attributes of full without
// following a symlink. File systems without xattr support give none.
func readXattrs(full string) ([]Xattr, error) {
	bp := xattrBufs.Get().(*[]byte)
	defer xattrBufs.Put(bp)
	buf := *bp
	n, err := unix.Llistxattr(full, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(full, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(full, buf)
		}
	}
	switch {
	case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EOPNOTSUPP):
		return nil, nil
	case err != nil:
		return nil, err
	case n == 0:
		return nil, nil
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	if len(names) > maxXattrs {
		names = names[:maxXattrs]
	}
	out := make([]Xattr, 0, len(names))
	for _, name := range names {
		if name == "" {
			continue
		}
		v, err := getXattr(full, name)
		if errors.Is(err, unix.ENODATA) { // removed meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, Xattr{Name: name, Value: v})
	}
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func getXattr(full, name string) ([]byte, error) {
	var small [256]byte
	n, err := unix.Lgetxattr(full, name, small[:])
	if err == nil {
		return append([]byte(nil), small[:n]...), nil
	}
	if !errors.Is(err, unix.ERANGE) {
		return nil, err
	}
	big := make([]byte, maxXattrValue)
	n, err = unix.Lgetxattr(full, name, big)
	if err != nil {
		return nil, err
	}
	return big[:n:n], nil
}

// hashBufSize is the read size for hashing: large enough that syscalls
// do not dominate, small enough for one per worker.
const hashBufSize = 256 << 10

var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// errChanged: the file at the path is no longer the one lstat saw.
var errChanged = errors.New("file replaced during the scan")

// hashFile reads the regular file at full and returns its SHA-256. It
// never follows a symlink, never blocks on a FIFO swapped in, and checks
// that what it read is the inode that was stat'ed.
func hashFile(full string, f *File) ([32]byte, error) {
	var sum [32]byte
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership or CAP_FOWNER
		fd, err = unix.Open(full, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return sum, err
	}
	file := os.NewFile(uintptr(fd), full)
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sum, err
	}
	if st.Ino != f.Inode || fileType(st.Mode) != TypeRegular {
		return sum, errChanged
	}
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL) // advice only
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	h := sha256.New()
	if _, err := io.CopyBuffer(h, onlyReader{file}, *bp); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// onlyReader hides WriterTo/ReaderFrom so io.CopyBuffer uses the buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// Check is a set of file attributes to compare.
type Check uint32

// File attributes, by the names used in rules and events.
const (
	CheckType Check = 1 << iota
	CheckMode
	CheckUID
	CheckGID
	CheckSize
	CheckMtime
	CheckCtime
	CheckInode
	CheckNlink
	CheckSHA256
	CheckLink
	CheckXattrs
	CheckACL
	CheckCaps

	// CheckAll is every attribute.
	CheckAll = CheckType | CheckMode | CheckUID | CheckGID | CheckSize | CheckMtime | CheckCtime | CheckInode |
		CheckNlink | CheckSHA256 | CheckLink | CheckXattrs | CheckACL | CheckCaps
	// dirIgnored are not compared for directories: a directory's size,
	// times and link count change whenever an entry is added or removed,
	// and that entry is reported itself.
	dirIgnored = CheckSize | CheckMtime | CheckCtime | CheckNlink
)

// checkNames lists the attribute names in report order.
var checkNames = [...]struct {
	c    Check
	name string
}{
	{CheckType, "type"}, {CheckMode, "mode"}, {CheckUID, "uid"}, {CheckGID, "gid"}, {CheckSize, "size"},
	{CheckMtime, "mtime"}, {CheckCtime, "ctime"}, {CheckInode, "inode"}, {CheckNlink, "nlink"},
	{CheckSHA256, "sha256"}, {CheckLink, "link"}, {CheckXattrs, "xattrs"}, {CheckACL, "acl"}, {CheckCaps, "caps"},
}

// ParseCheck reads an attribute name ("sha256", "mode" ...) or "all".
func ParseCheck(s string) (Check, bool) {
	if s == "all" {
		return CheckAll, true
	}
	for _, c := range checkNames {
		if c.name == s {
			return c.c, true
		}
	}
	return 0, false
}

// xattr classes rendered as their own attributes.
func isACLXattr(n string) bool { return n == xattrACLAccess || n == xattrACLDefault }

// diffFile returns the names of the attributes in checks that differ.
func diffFile(a, b *File, checks Check) []string {
	if a.Type == TypeDir && b.Type == TypeDir {
		checks &^= dirIgnored
	}
	var out []string
	for _, c := range checkNames {
		if checks&c.c == 0 {
			continue
		}
		var same bool
		switch c.c {
		case CheckType:
			same = a.Type == b.Type
		case CheckMode:
			same = a.Mode == b.Mode
		case CheckUID:
			same = a.UID == b.UID
		case CheckGID:
			same = a.GID == b.GID
		case CheckSize:
			same = a.Size == b.Size
		case CheckMtime:
			same = a.Mtime == b.Mtime
		case CheckCtime:
			same = a.Ctime == b.Ctime
		case CheckInode:
			same = a.Inode == b.Inode
		case CheckNlink:
			same = a.Nlink == b.Nlink
		case CheckSHA256:
			same = a.Hashed == b.Hashed && a.SHA256 == b.SHA256
		case CheckLink:
			same = a.Link == b.Link
		case CheckXattrs:
			same = xattrsEqual(a.Xattrs, b.Xattrs, func(n string) bool { return n != xattrCapability && !isACLXattr(n) })
		case CheckACL:
			same = xattrsEqual(a.Xattrs, b.Xattrs, isACLXattr)
		case CheckCaps:
			same = xattrsEqual(a.Xattrs, b.Xattrs, func(n string) bool { return n == xattrCapability })
		}
		if !same {
			out = append(out, c.name)
		}
	}
	return out
}

func xattrsEqual(a, b []Xattr, keep func(string) bool) bool {
	i, j := 0, 0
	for {
		for i < len(a) && !keep(a[i].Name) {
			i++
		}
		for j < len(b) && !keep(b[j].Name) {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i].Name != b[j].Name || string(a[i].Value) != string(b[j].Value) {
			return false
		}
		i++
		j++
	}
}

// Attrs renders the file's attributes for an event: every attribute the
// file type has, the decoded forms of capabilities and ACLs, values
// made safe for the event store.
func (f *File) Attrs() map[string]string {
	m := map[string]string{
		"type":  f.Type.String(),
		"mode":  fmt.Sprintf("%04o", f.Mode),
		"uid":   strconv.FormatUint(uint64(f.UID), 10),
		"gid":   strconv.FormatUint(uint64(f.GID), 10),
		"inode": strconv.FormatUint(f.Inode, 10),
		"nlink": strconv.FormatUint(uint64(f.Nlink), 10),
		"mtime": time.Unix(0, f.Mtime).UTC().Format(time.RFC3339Nano),
		"ctime": time.Unix(0, f.Ctime).UTC().Format(time.RFC3339Nano),
	}
	if f.Type != TypeDir {
		m["size"] = strconv.FormatInt(f.Size, 10)
	}
	if f.Type == TypeRegular {
		if f.Hashed {
			m["sha256"] = hex.EncodeToString(f.SHA256[:])
		} else {
			m["sha256"] = "(not read)"
		}
	}
	if f.Type == TypeSymlink {
		m["link"] = SafeText(f.Link)
	}
	if f.Mode&unix.S_ISUID != 0 {
		m["setuid"] = "true"
	}
	if f.Mode&unix.S_ISGID != 0 {
		m["setgid"] = "true"
	}
	var other []string
	for _, x := range f.Xattrs {
		switch {
		case x.Name == xattrCapability:
			if c, err := DecodeCapability(x.Value); err == nil {
				m["caps"] = c.String()
			} else {
				m["caps"] = "(undecodable: " + hex.EncodeToString(x.Value) + ")"
			}
		case isACLXattr(x.Name):
			key := "acl"
			if x.Name == xattrACLDefault {
				key = "acl_default"
			}
			if es, err := DecodeACL(x.Value); err == nil {
				m[key] = FormatACL(es)
			} else {
				m[key] = "(undecodable)"
			}
		default:
			other = append(other, SafeText(x.Name)+"="+xattrValue(x.Value))
		}
	}
	if len(other) > 0 {
		m["xattrs"] = strings.Join(other, " ")
	}
	for k, v := range m {
		m[k] = truncate(v)
	}
	return m
}

// xattrValue renders a value as text when it is short printable text, else
// by its digest.
func xattrValue(v []byte) string {
	s := strings.TrimRight(string(v), "\x00")
	if len(s) <= 128 && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(s)
	}
	d := sha256.Sum256(v)
	return "sha256:" + hex.EncodeToString(d[:8])
}

// SafeText makes s valid UTF-8 without control bytes: bytes that are not
// printable UTF-8 are written as \xNN. Paths on Linux are bytes; events
// need text.
func SafeText(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < ' ' || r == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r < ' ' || r == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) <= MaxAttrLen {
		return s
	}
	cut := MaxAttrLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
