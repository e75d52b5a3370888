package rpmdb

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// Berkeley DB hash database layout (libdb src/dbinc/db_page.h).
const (
	bdbHashMagic      = 0x00061561
	bdbPageHeaderSize = 26 // PAGE: lsn, pgno, prev, next, entries, hf_offset, level, type

	bdbPageHashUnsorted = 2  // P_HASH_UNSORTED (rpm on RHEL/CentOS 5)
	bdbPageOverflow     = 7  // P_OVERFLOW
	bdbPageHashMeta     = 8  // P_HASHMETA
	bdbPageHash         = 13 // P_HASH

	bdbItemKeyData = 1 // H_KEYDATA: the value is inline
	bdbItemOffPage = 3 // H_OFFPAGE: the value is on a chain of overflow pages
	bdbOffPageSize = 12
)

// ReadBDB returns the values (rpm header blobs) of an rpm Packages file in
// Berkeley DB hash format, read through r (size bytes). It never trusts the
// file: page numbers, item offsets and lengths are checked against the
// page and the file, overflow chains may not be longer than their declared
// length, and the total of the values may not exceed the file size (no
// page of a real database belongs to two values), so a crafted file costs
// at most time and memory linear in its size.
func ReadBDB(ctx context.Context, r io.ReaderAt, size int64) ([][]byte, error) {
	meta := make([]byte, 512)
	if _, err := r.ReadAt(meta, 0); err != nil {
		return nil, fmt.Errorf("%w: read Berkeley DB metadata: %w", ErrCorrupt, err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch {
	case binary.LittleEndian.Uint32(meta[12:16]) == bdbHashMagic:
	case binary.BigEndian.Uint32(meta[12:16]) == bdbHashMagic:
		bo = binary.BigEndian // written on a big-endian host (s390x)
	default:
		return nil, fmt.Errorf("%w: not a Berkeley DB hash database", ErrUnknownFormat)
	}
	pageSize := int64(bo.Uint32(meta[20:24]))
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%w: Berkeley DB page size %d", ErrCorrupt, pageSize)
	}
	if meta[24] != 0 {
		return nil, fmt.Errorf("%w: encrypted Berkeley DB", ErrCorrupt)
	}
	if meta[25] != bdbPageHashMeta {
		return nil, fmt.Errorf("%w: Berkeley DB metadata page of type %d", ErrCorrupt, meta[25])
	}
	lastPage := int64(bo.Uint32(meta[32:36]))
	pages := min(lastPage+1, size/pageSize)

	var (
		values [][]byte
		total  int64 // bytes of all values, bounded by the file size
		page   = make([]byte, pageSize)
		ovf    = make([]byte, pageSize)
	)
	for pgno := int64(1); pgno < pages; pgno++ {
		if pgno%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := r.ReadAt(page, pgno*pageSize); err != nil {
			return nil, fmt.Errorf("%w: read page %d: %w", ErrCorrupt, pgno, err)
		}
		typ := page[25]
		if typ != bdbPageHash && typ != bdbPageHashUnsorted {
			continue
		}
		entries := int64(bo.Uint16(page[20:22]))
		if bdbPageHeaderSize+2*entries > pageSize {
			return nil, fmt.Errorf("%w: page %d has %d entries", ErrCorrupt, pgno, entries)
		}
		offset := func(i int64) int64 { return int64(bo.Uint16(page[bdbPageHeaderSize+2*i:])) }
		// Items are key/value pairs; values are at odd indexes.
		for i := int64(1); i < entries; i += 2 {
			off := offset(i)
			if off < bdbPageHeaderSize+2*entries || off >= pageSize {
				return nil, fmt.Errorf("%w: page %d item %d at offset %d", ErrCorrupt, pgno, i, off)
			}
			var v []byte
			switch page[off] {
			case bdbItemKeyData:
				// Items grow down from the end of the page: item i ends where
				// item i-1 starts.
				end := offset(i - 1)
				if end <= off || end > pageSize {
					return nil, fmt.Errorf("%w: page %d item %d spans %d..%d", ErrCorrupt, pgno, i, off, end)
				}
				v = append([]byte(nil), page[off+1:end]...)
			case bdbItemOffPage:
				if off+bdbOffPageSize > pageSize {
					return nil, fmt.Errorf("%w: page %d item %d truncated", ErrCorrupt, pgno, i)
				}
				next := int64(bo.Uint32(page[off+4:]))
				tlen := int64(bo.Uint32(page[off+8:]))
				if tlen > MaxHeaderSize || total+tlen > size {
					return nil, fmt.Errorf("%w: page %d item %d of %d bytes", ErrCorrupt, pgno, i, tlen)
				}
				var err error
				v, err = readOverflow(r, ovf, bo, next, tlen, pages, pageSize)
				if err != nil {
					return nil, fmt.Errorf("page %d item %d: %w", pgno, i, err)
				}
			default:
				continue // duplicates are not used by rpm
			}
			total += int64(len(v))
			if total > size {
				return nil, fmt.Errorf("%w: values larger than the file", ErrCorrupt)
			}
			values = append(values, v)
		}
	}
	return values, nil
}

// readOverflow follows a chain of overflow pages from pgno and returns its
// tlen bytes. Each page holds hf_offset bytes after its header.
func readOverflow(r io.ReaderAt, buf []byte, bo binary.ByteOrder, pgno, tlen, pages, pageSize int64) ([]byte, error) {
	v := make([]byte, 0, tlen)
	for steps := int64(0); pgno != 0; steps++ {
		if pgno >= pages || steps >= pages {
			return nil, fmt.Errorf("%w: overflow chain to page %d", ErrCorrupt, pgno)
		}
		if _, err := r.ReadAt(buf, pgno*pageSize); err != nil {
			return nil, fmt.Errorf("%w: read overflow page %d: %w", ErrCorrupt, pgno, err)
		}
		if buf[25] != bdbPageOverflow {
			return nil, fmt.Errorf("%w: page %d in an overflow chain has type %d", ErrCorrupt, pgno, buf[25])
		}
		n := int64(bo.Uint16(buf[22:24]))
		if bdbPageHeaderSize+n > pageSize || int64(len(v))+n > tlen {
			return nil, fmt.Errorf("%w: overflow page %d holds %d bytes", ErrCorrupt, pgno, n)
		}
		v = append(v, buf[bdbPageHeaderSize:bdbPageHeaderSize+n]...)
		pgno = int64(bo.Uint32(buf[16:20]))
	}
	if int64(len(v)) != tlen {
		return nil, fmt.Errorf("%w: overflow chain holds %d of %d bytes", ErrCorrupt, len(v), tlen)
	}
	return v, nil
}
