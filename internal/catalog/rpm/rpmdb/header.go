package rpmdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Header tags and types read here (rpm lib/rpmtag.h).
const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagLicense   = 1014
	tagArch      = 1022
	tagSourceRPM = 1044

	typeInt32  = 4
	typeString = 6
)

const (
	// maxHeaderTags and maxHeaderData are rpm's own limits on one header
	// (lib/header.c hdrchkTags, hdrchkData): fewer than 65,536 index entries
	// and less than 16 MiB of data. rpm refuses larger headers, so no real
	// database holds one.
	maxHeaderTags = 0xffff
	maxHeaderData = 16 << 20
	// MaxHeaderSize bounds one header blob: the two counts, the index and
	// the data.
	MaxHeaderSize = 8 + 16*maxHeaderTags + maxHeaderData
	// HeaderEntrySize is the size of one index entry: tag, type, offset, count.
	HeaderEntrySize = 16
)

// Header is what is read of one package header.
type Header struct {
	Name, Version, Release, Arch, SourceRPM, License string
	// Epoch is the EPOCH tag; HasEpoch is false when the tag is absent.
	Epoch    int32
	HasEpoch bool
}

// ParseHeader reads an rpm header blob as the databases store it (an
// "immutable region" without the 8-byte header magic of .rpm files): a
// big-endian index count il and data length dl, il index entries of 16
// bytes (tag, type, offset into the data, count), then dl bytes of data
// (https://rpm-software-management.github.io/rpm/manual/format_header.html).
// Only the tags above are read; every offset is checked against the data.
// When a tag appears twice (a "dribble" entry added after install), the last
// one wins, as in rpm.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, len(b))
	}
	il := binary.BigEndian.Uint32(b[0:4])
	dl := binary.BigEndian.Uint32(b[4:8])
	if il == 0 || il > maxHeaderTags || dl > maxHeaderData {
		return nil, fmt.Errorf("%w: header with %d tags and %d bytes of data", ErrCorrupt, il, dl)
	}
	dataStart := 8 + int(il)*HeaderEntrySize
	if dataStart+int(dl) > len(b) {
		return nil, fmt.Errorf("%w: header of %d bytes claims %d", ErrCorrupt, len(b), dataStart+int(dl))
	}
	data := b[dataStart : dataStart+int(dl)]
	h := &Header{}
	for i := 0; i < int(il); i++ {
		e := b[8+i*HeaderEntrySize : 8+(i+1)*HeaderEntrySize]
		tag := int32(binary.BigEndian.Uint32(e[0:4]))
		typ := binary.BigEndian.Uint32(e[4:8])
		off := int32(binary.BigEndian.Uint32(e[8:12]))
		count := binary.BigEndian.Uint32(e[12:16])
		var dst *string
		switch tag {
		case tagName:
			dst = &h.Name
		case tagVersion:
			dst = &h.Version
		case tagRelease:
			dst = &h.Release
		case tagArch:
			dst = &h.Arch
		case tagSourceRPM:
			dst = &h.SourceRPM
		case tagLicense:
			dst = &h.License
		case tagEpoch:
			if typ != typeInt32 || count < 1 || off < 0 || int(off)+4 > len(data) {
				return nil, fmt.Errorf("%w: bad EPOCH entry", ErrCorrupt)
			}
			h.Epoch = int32(binary.BigEndian.Uint32(data[off : off+4]))
			h.HasEpoch = true
			continue
		default:
			continue
		}
		if typ != typeString || off < 0 || int(off) >= len(data) {
			return nil, fmt.Errorf("%w: bad string entry for tag %d", ErrCorrupt, tag)
		}
		end := bytes.IndexByte(data[off:], 0)
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated string for tag %d", ErrCorrupt, tag)
		}
		*dst = string(data[off : int(off)+end])
	}
	return h, nil
}
