package rpmdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
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
	// The file list (lib/rpmtag.h): file i is DIRNAMES[DIRINDEXES[i]] +
	// BASENAMES[i], with FILEDIGESTS[i] in FILEDIGESTALGO ("" for what is
	// not a regular file).
	tagFileDigests    = 1035
	tagDirIndexes     = 1116
	tagBaseNames      = 1117
	tagDirNames       = 1118
	tagFileDigestAlgo = 5011

	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
)

// Digest algorithms of FILEDIGESTALGO (OpenPGP hash IDs, RFC 4880 9.4);
// rpm's default when the tag is absent is MD5.
var digestAlgos = map[uint32]string{1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}

// File is one file of a package: its absolute path and the hex digest rpm
// recorded at install, in Algo ("md5", "sha256" ...).
type File struct {
	Path, Digest, Algo string
}

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
	// Files are the package's regular files with digests.
	Files []File
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
	var fl fileList
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
		case tagFileDigests, tagBaseNames, tagDirNames:
			ss, err := stringArray(data, typ, off, count)
			if err != nil {
				return nil, fmt.Errorf("%w: tag %d: %v", ErrCorrupt, tag, err)
			}
			switch tag {
			case tagFileDigests:
				fl.digests = ss
			case tagBaseNames:
				fl.bases = ss
			default:
				fl.dirs = ss
			}
			continue
		case tagDirIndexes, tagFileDigestAlgo:
			is, err := int32Array(data, typ, off, count)
			if err != nil {
				return nil, fmt.Errorf("%w: tag %d: %v", ErrCorrupt, tag, err)
			}
			if tag == tagDirIndexes {
				fl.dirIndexes = is
			} else if len(is) > 0 {
				fl.algo, fl.hasAlgo = is[0], true
			}
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
	files, err := fl.files()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	h.Files = files
	return h, nil
}

// fileList collects the file tags of one header.
type fileList struct {
	digests, bases, dirs []string
	dirIndexes           []uint32
	algo                 uint32
	hasAlgo              bool
}

// files joins the tags into files; a header whose counts disagree is
// corrupt (rpm itself would refuse it).
func (fl *fileList) files() ([]File, error) {
	if len(fl.bases) == 0 {
		return nil, nil
	}
	if len(fl.dirIndexes) != len(fl.bases) || (fl.digests != nil && len(fl.digests) != len(fl.bases)) {
		return nil, fmt.Errorf("file list of %d names, %d directory indexes, %d digests", len(fl.bases), len(fl.dirIndexes), len(fl.digests))
	}
	algo := "md5"
	if fl.hasAlgo {
		a, ok := digestAlgos[fl.algo]
		if !ok {
			return nil, nil // a digest rpm may know and we do not: no files rather than wrong ones
		}
		algo = a
	}
	var out []File
	for i, base := range fl.bases {
		if fl.digests == nil || fl.digests[i] == "" {
			continue // directory, symlink, ghost: no content to compare
		}
		d := fl.dirIndexes[i]
		if int(d) >= len(fl.dirs) {
			return nil, fmt.Errorf("directory index %d of %d", d, len(fl.dirs))
		}
		out = append(out, File{Path: fl.dirs[d] + base, Digest: strings.ToLower(fl.digests[i]), Algo: algo})
	}
	return out, nil
}

// stringArray reads count NUL-terminated strings at off.
func stringArray(data []byte, typ uint32, off int32, count uint32) ([]string, error) {
	if typ != typeStringArray || off < 0 || int(off) > len(data) || count > uint32(len(data)) {
		return nil, fmt.Errorf("bad string array (type %d, offset %d, count %d)", typ, off, count)
	}
	out := make([]string, 0, count)
	rest := data[off:]
	for i := uint32(0); i < count; i++ {
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return nil, fmt.Errorf("string %d of %d unterminated", i, count)
		}
		out = append(out, string(rest[:end]))
		rest = rest[end+1:]
	}
	return out, nil
}

// int32Array reads count big-endian 32-bit integers at off.
func int32Array(data []byte, typ uint32, off int32, count uint32) ([]uint32, error) {
	if typ != typeInt32 || off < 0 || uint64(off)+4*uint64(count) > uint64(len(data)) {
		return nil, fmt.Errorf("bad int32 array (type %d, offset %d, count %d)", typ, off, count)
	}
	out := make([]uint32, count)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(data[int(off)+4*i:])
	}
	return out, nil
}
