package integrity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The baseline file: a magic line, then one zstd stream holding the body
// and, last, the SHA-256 of the body, so a truncated or altered file is
// refused instead of silently reporting "everything removed".
//
//	magic    "MAMORI-FIM\n" and format version byte 1
//	body     created (varint ns), host, root, key, rules, files, objects
//	trailer  sha256(body)
//
// Files are sorted; each path is written as the length it shares with
// the previous path plus the rest (front coding), which with zstd makes a
// baseline of /usr about 40 bytes per file. Integers are varints.
const (
	magic         = "MAMORI-FIM\n"
	formatVersion = 1

	// Decoding limits: far above any real host, low enough that a hostile
	// file cannot make Load allocate without bound.
	maxBaselineFiles   = 10_000_000
	maxBaselineObjects = 10_000_000
	maxString          = 1 << 20
	maxAttrs           = 4096
)

const (
	flagHashed = 1 << iota
	flagLink
	flagXattrs
)

// Save writes b to path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced. The file
// is mode 0600 (it holds the baseline's secret key).
func (b *Baseline) Save(path string) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".baseline-*")
	if err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := b.Encode(bw); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("integrity: save baseline: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the rename is durable once the directory is
		d.Close()
	}
	return nil
}

// Load reads a baseline file written by Save.
func Load(path string) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: load baseline: %w", err)
	}
	defer f.Close()
	b, err := Decode(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return nil, fmt.Errorf("integrity: load baseline %s: %w", path, err)
	}
	return b, nil
}

// Encode writes the baseline format to w.
func (b *Baseline) Encode(w io.Writer) error {
	if _, err := io.WriteString(w, magic); err != nil {
		return err
	}
	if _, err := w.Write([]byte{formatVersion}); err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	h := sha256.New()
	e := &encoder{w: bufio.NewWriterSize(io.MultiWriter(zw, h), 64<<10)}
	e.int(b.Created.UnixNano())
	e.str(b.Host)
	e.str(b.Root)
	e.bytes(b.Key)
	e.uint(uint64(len(b.Rules)))
	for _, r := range b.Rules {
		e.str(r.Name)
		e.str(string(r.Severity))
	}
	e.uint(uint64(len(b.Files)))
	prev := ""
	for i := range b.Files {
		f := &b.Files[i]
		n := commonPrefix(prev, f.Path)
		e.uint(uint64(n))
		e.str(f.Path[n:])
		prev = f.Path
		e.byte(byte(f.Type))
		e.uint(uint64(f.Mode))
		e.uint(uint64(f.UID))
		e.uint(uint64(f.GID))
		e.uint(uint64(f.Nlink))
		e.int(f.Size)
		e.int(f.Mtime)
		e.int(f.Ctime - f.Mtime)
		e.uint(f.Inode)
		var flags byte
		if f.Hashed {
			flags |= flagHashed
		}
		if f.Link != "" {
			flags |= flagLink
		}
		if len(f.Xattrs) > 0 {
			flags |= flagXattrs
		}
		e.byte(flags)
		if f.Hashed {
			e.raw(f.SHA256[:])
		}
		if f.Link != "" {
			e.str(f.Link)
		}
		if len(f.Xattrs) > 0 {
			e.uint(uint64(len(f.Xattrs)))
			for _, x := range f.Xattrs {
				e.str(x.Name)
				e.bytes(x.Value)
			}
		}
		e.uint(uint64(f.Rule))
	}
	e.uint(uint64(len(b.Objects)))
	for _, o := range b.Objects {
		e.str(string(o.Kind))
		e.str(o.Key)
		keys := sortedKeys(o.Attrs)
		e.uint(uint64(len(keys)))
		for _, k := range keys {
			e.str(k)
			e.str(o.Attrs[k])
		}
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		zw.Close()
		return e.err
	}
	if _, err := zw.Write(h.Sum(nil)); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}
func (e *encoder) byte(c byte) {
	if e.err == nil {
		e.err = e.w.WriteByte(c)
	}
}
func (e *encoder) uint(v uint64) { e.raw(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) int(v int64)   { e.raw(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}
func (e *encoder) bytes(p []byte) { e.uint(uint64(len(p))); e.raw(p) }

// Decode reads the baseline format. Corrupt, truncated or altered input is
// an error wrapping ErrCorrupt (ErrTooLarge for counts over the limits).
func Decode(r io.Reader) (*Baseline, error) {
	head := make([]byte, len(magic)+1)
	if _, err := io.ReadFull(r, head); err != nil || string(head[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not a mamori baseline", ErrCorrupt)
	}
	if head[len(magic)] != formatVersion {
		return nil, fmt.Errorf("%w: format version %d (this build reads %d)", ErrCorrupt, head[len(magic)], formatVersion)
	}
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	tr := &tailReader{r: zr, h: sha256.New()}
	d := &decoder{r: bufio.NewReaderSize(tr, 64<<10)}
	b, err := d.baseline()
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(d.r, 2*sha256.Size))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case len(rest) < sha256.Size:
		return nil, fmt.Errorf("%w: checksum missing (truncated file)", ErrCorrupt)
	case len(rest) > sha256.Size:
		return nil, fmt.Errorf("%w: data after the checksum", ErrCorrupt)
	case !bytes.Equal(rest, tr.h.Sum(nil)):
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return b, nil
}

// tailReader hashes what it reads except the last sha256.Size bytes seen
// so far: at the end of the stream the hash covers the body and the
// withheld bytes are the trailer.
type tailReader struct {
	r    io.Reader
	h    hash.Hash
	tail []byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		all := len(t.tail) + n
		if keep := sha256.Size; all > keep {
			// Hash the oldest all-keep bytes: first from tail, then from p.
			fromTail := min(len(t.tail), all-keep)
			t.h.Write(t.tail[:fromTail])
			t.h.Write(p[:all-keep-fromTail])
			t.tail = append(t.tail[:0], t.tail[fromTail:]...)
			t.tail = append(t.tail, p[all-keep-fromTail:n]...)
		} else {
			t.tail = append(t.tail, p[:n]...)
		}
	}
	return n, err
}

type decoder struct {
	r   *bufio.Reader
	err error
}

// ReadByte makes the decoder an io.ByteReader for binary.ReadUvarint.
func (d *decoder) ReadByte() (byte, error) { return d.r.ReadByte() }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d)
	if err != nil {
		d.fail("truncated (%v)", err)
	}
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d)
	if err != nil {
		d.fail("truncated (%v)", err)
	}
	return v
}

func (d *decoder) u32(what string) uint32 {
	v := d.uint()
	if v > 1<<32-1 {
		d.fail("%s %d out of range", what, v)
	}
	return uint32(v)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	c, err := d.ReadByte()
	if err != nil {
		d.fail("truncated")
	}
	return c
}

func (d *decoder) raw(p []byte) {
	if d.err != nil {
		return
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		d.fail("truncated")
	}
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.fail("string of %d bytes (at most %d)", n, limit)
		return nil
	}
	p := make([]byte, n)
	d.raw(p)
	return p
}

func (d *decoder) str() string { return string(d.bytes(maxString)) }

// count reads a count and checks it against limit.
func (d *decoder) count(what string, limit int) int {
	n := d.uint()
	if d.err == nil && n > uint64(limit) {
		d.err = fmt.Errorf("%w: %d %s (at most %d)", ErrTooLarge, n, what, limit)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) baseline() (*Baseline, error) {
	b := &Baseline{}
	b.Created = time.Unix(0, d.int()).UTC()
	b.Host = d.str()
	b.Root = d.str()
	b.Key = d.bytes(1024)
	nr := d.count("rules", maxRules)
	for i := 0; i < nr && d.err == nil; i++ {
		b.Rules = append(b.Rules, RuleRef{Name: d.str(), Severity: Severity(d.str())})
	}
	nf := d.count("files", maxBaselineFiles)
	b.Files = make([]File, 0, min(nf, 1<<16))
	prev := ""
	for i := 0; i < nf && d.err == nil; i++ {
		var f File
		shared := d.uint()
		if shared > uint64(len(prev)) {
			d.fail("file %d: shared prefix %d longer than the previous path", i, shared)
			break
		}
		f.Path = prev[:shared] + d.str()
		if i > 0 && f.Path <= prev {
			d.fail("file %d: paths out of order", i)
			break
		}
		prev = f.Path
		f.Type = FileType(d.byte())
		if f.Type < TypeRegular || f.Type > TypeUnknown {
			d.fail("file %d: type %d", i, f.Type)
		}
		f.Mode = d.u32("mode")
		f.UID = d.u32("uid")
		f.GID = d.u32("gid")
		f.Nlink = d.u32("nlink")
		f.Size = d.int()
		f.Mtime = d.int()
		f.Ctime = f.Mtime + d.int()
		f.Inode = d.uint()
		flags := d.byte()
		if flags&flagHashed != 0 {
			d.raw(f.SHA256[:])
			f.Hashed = true
		}
		if flags&flagLink != 0 {
			f.Link = d.str()
		}
		if flags&flagXattrs != 0 {
			nx := d.count("xattrs", maxXattrs)
			for k := 0; k < nx && d.err == nil; k++ {
				f.Xattrs = append(f.Xattrs, Xattr{Name: d.str(), Value: d.bytes(maxXattrValue)})
			}
		}
		rule := d.uint()
		if rule > 0 && rule >= uint64(len(b.Rules)) {
			d.fail("file %d: rule %d of %d", i, rule, len(b.Rules))
		}
		f.Rule = uint16(rule)
		b.Files = append(b.Files, f)
	}
	no := d.count("objects", maxBaselineObjects)
	b.Objects = make([]Object, 0, min(no, 1<<12))
	for i := 0; i < no && d.err == nil; i++ {
		o := Object{Kind: Kind(d.str()), Key: d.str()}
		na := d.count("attributes", maxAttrs)
		o.Attrs = make(map[string]string, na)
		for k := 0; k < na && d.err == nil; k++ {
			name := d.str()
			o.Attrs[name] = d.str()
		}
		if i > 0 && compareObjects(&b.Objects[i-1], &o) >= 0 {
			d.fail("object %d: out of order", i)
		}
		b.Objects = append(b.Objects, o)
	}
	if d.err != nil {
		return nil, d.err
	}
	return b, nil
}
