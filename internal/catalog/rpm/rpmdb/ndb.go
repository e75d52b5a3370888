package rpmdb

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
)

// NDB ("new database", rpm >= 4.16, SUSE's default) layout, from rpm
// lib/backend/ndb/rpmpkg.c: a 32-byte header, slot pages of 4 KiB holding
// 16-byte slots (the header takes the first two), then blobs addressed in
// 16-byte blocks. All integers are little-endian.
const (
	ndbHeaderMagic = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic   = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbTailMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'E'<<24
	ndbVersion     = 0
	ndbPageSize    = 4096
	ndbSlotSize    = 16
	ndbBlkSize     = 16
	ndbHeaderSize  = 32
	ndbBlobHead    = 16 // magic, pkgidx, generation, bloblen
	ndbBlobTail    = 12 // adler32, bloblen, magic
)

// ReadNDB returns the header blobs of an NDB Packages.db read through r
// (size bytes). It applies rpm's own checks (slot and blob magics, block
// counts, the blob's Adler-32 and tail) and in addition bounds the total of
// the blobs by the file size, so overlapping slots cannot make a small file
// expensive.
func ReadNDB(ctx context.Context, r io.ReaderAt, size int64) ([][]byte, error) {
	var hdr [ndbHeaderSize]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("%w: read NDB header: %w", ErrCorrupt, err)
	}
	le := binary.LittleEndian
	if le.Uint32(hdr[0:]) != ndbHeaderMagic {
		return nil, fmt.Errorf("%w: not an NDB database", ErrUnknownFormat)
	}
	if v := le.Uint32(hdr[4:]); v != ndbVersion {
		return nil, fmt.Errorf("%w: NDB version %d", ErrCorrupt, v)
	}
	slotPages := int64(le.Uint32(hdr[12:]))
	if slotPages == 0 || slotPages*ndbPageSize > size {
		return nil, fmt.Errorf("%w: %d NDB slot pages in a file of %d bytes", ErrCorrupt, slotPages, size)
	}
	fileBlks := size / ndbBlkSize
	minBlk := slotPages * (ndbPageSize / ndbBlkSize)

	var (
		blobs [][]byte
		total int64
		page  = make([]byte, ndbPageSize)
	)
	for p := int64(0); p < slotPages; p++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := r.ReadAt(page, p*ndbPageSize); err != nil {
			return nil, fmt.Errorf("%w: read NDB slot page %d: %w", ErrCorrupt, p, err)
		}
		start := 0
		if p == 0 {
			start = ndbHeaderSize
		}
		for o := start; o < ndbPageSize; o += ndbSlotSize {
			s := page[o : o+ndbSlotSize]
			if le.Uint32(s) != ndbSlotMagic {
				return nil, fmt.Errorf("%w: bad NDB slot magic at %d", ErrCorrupt, p*ndbPageSize+int64(o))
			}
			pkgIdx := le.Uint32(s[4:])
			blkOff := int64(le.Uint32(s[8:]))
			blkCnt := int64(le.Uint32(s[12:]))
			if blkOff == 0 {
				continue // free slot
			}
			if pkgIdx == 0 || blkCnt == 0 || blkOff < minBlk || blkOff+blkCnt > fileBlks {
				return nil, fmt.Errorf("%w: NDB slot for package %d at block %d+%d", ErrCorrupt, pkgIdx, blkOff, blkCnt)
			}
			total += blkCnt * ndbBlkSize
			if total > size {
				return nil, fmt.Errorf("%w: NDB blobs larger than the file", ErrCorrupt)
			}
			blob, err := readNDBBlob(r, pkgIdx, blkOff, blkCnt)
			if err != nil {
				return nil, err
			}
			blobs = append(blobs, blob)
		}
	}
	return blobs, nil
}

// readNDBBlob reads and verifies one blob (rpmpkgReadBlob).
func readNDBBlob(r io.ReaderAt, pkgIdx uint32, blkOff, blkCnt int64) ([]byte, error) {
	le := binary.LittleEndian
	if blkCnt*ndbBlkSize > ndbBlobHead+MaxHeaderSize+ndbBlobTail+ndbBlkSize {
		return nil, fmt.Errorf("%w: NDB blob of package %d has %d blocks", ErrCorrupt, pkgIdx, blkCnt)
	}
	buf := make([]byte, blkCnt*ndbBlkSize)
	if _, err := r.ReadAt(buf, blkOff*ndbBlkSize); err != nil {
		return nil, fmt.Errorf("%w: read NDB blob of package %d: %w", ErrCorrupt, pkgIdx, err)
	}
	if le.Uint32(buf) != ndbBlobMagic || le.Uint32(buf[4:]) != pkgIdx {
		return nil, fmt.Errorf("%w: bad NDB blob header for package %d", ErrCorrupt, pkgIdx)
	}
	blobLen := int64(le.Uint32(buf[12:]))
	if (ndbBlobHead+blobLen+ndbBlobTail+ndbBlkSize-1)/ndbBlkSize != blkCnt {
		return nil, fmt.Errorf("%w: NDB blob of package %d: %d bytes in %d blocks", ErrCorrupt, pkgIdx, blobLen, blkCnt)
	}
	tail := buf[len(buf)-ndbBlobTail:]
	if le.Uint32(tail[8:]) != ndbTailMagic || int64(le.Uint32(tail[4:])) != blobLen {
		return nil, fmt.Errorf("%w: bad NDB blob tail for package %d", ErrCorrupt, pkgIdx)
	}
	// The checksum covers the blob header, the blob and the padding.
	if adler32.Checksum(buf[:len(buf)-ndbBlobTail]) != le.Uint32(tail) {
		return nil, fmt.Errorf("%w: NDB blob of package %d fails its Adler-32 check", ErrCorrupt, pkgIdx)
	}
	return buf[ndbBlobHead : ndbBlobHead+blobLen], nil
}
