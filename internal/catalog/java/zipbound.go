package java

import (
	"encoding/binary"
	"errors"
	"io"
)

// Zip record sizes and signatures (APPNOTE.TXT 4.3.12, 4.3.14-16).
const (
	dirHeaderLen    = 46 // central directory file header, without name/extra/comment
	dirEndLen       = 22 // end of central directory record, without comment
	dir64LocatorLen = 20
	dir64EndLen     = 56
	sigDirEnd       = 0x06054b50
	sigDir64Locator = 0x07064b50
	sigDir64End     = 0x06064b50
)

var errNoDirEnd = errors.New("no end of central directory record")

// entryBound returns an upper bound on the number of entries archive/zip
// will load from the archive in r: it reads central-directory headers from
// the directory's start to the end of the file, whatever count the
// end-of-directory record declares (it only checks that count modulo
// 65536), so the bound is the bytes from that start to the end divided by
// the smallest header. The end record is found the way archive/zip finds
// it (readDirectoryEnd in archive/zip/reader.go), so an archive this
// function cannot read is one archive/zip cannot read either.
func entryBound(r io.ReaderAt, size int64) (uint64, error) {
	if size < dirEndLen {
		return 0, errNoDirEnd
	}
	var rec []byte
	var end int64 = -1
	for _, n := range []int64{1024, 65 * 1024} {
		n = min(n, size)
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if p := findDirEnd(buf); p >= 0 {
			rec, end = buf[p:], size-n+int64(p)
			break
		}
		if n == size {
			break
		}
	}
	if end < 0 {
		return 0, errNoDirEnd
	}
	le := binary.LittleEndian
	records := uint64(le.Uint16(rec[10:]))
	dirSize := uint64(le.Uint32(rec[12:]))
	dirOff := uint64(le.Uint32(rec[16:]))
	if (records == 0xffff || dirSize == 0xffffffff || dirOff == 0xffffffff) && end >= dir64LocatorLen {
		var loc [dir64LocatorLen]byte
		if _, err := r.ReadAt(loc[:], end-dir64LocatorLen); err == nil && le.Uint32(loc[:]) == sigDir64Locator {
			var d [dir64EndLen]byte
			if p := le.Uint64(loc[8:]); p <= uint64(size-dir64EndLen) {
				if _, err := r.ReadAt(d[:], int64(p)); err == nil && le.Uint32(d[:]) == sigDir64End {
					dirSize = le.Uint64(d[40:])
					dirOff = le.Uint64(d[48:])
				}
			}
		}
	}
	// archive/zip starts at dirOff, or, for archives with data prepended
	// (self-extracting), at end-dirSize; take the earlier start.
	start := dirOff
	if dirSize <= uint64(end) && uint64(end)-dirSize < start {
		start = uint64(end) - dirSize
	}
	if start > uint64(size) {
		start = 0
	}
	return (uint64(size)-start)/dirHeaderLen + 1, nil
}

// findDirEnd is archive/zip's findSignatureInBlock.
func findDirEnd(b []byte) int {
	for i := len(b) - dirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == sigDirEnd {
			n := int(b[i+dirEndLen-2]) | int(b[i+dirEndLen-1])<<8
			if n+dirEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}
