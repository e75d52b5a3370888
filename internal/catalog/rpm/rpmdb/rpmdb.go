// Package rpmdb reads the rpm package database formats without trusting
// them: Berkeley DB hash (Packages), NDB (Packages.db) and the header blobs
// they hold. It has no dependencies beyond the standard library, so it can
// be fuzzed fast; the SQLite format is read by the parent package.
package rpmdb

import "errors"

// Sentinel errors.
var (
	// ErrUnknownFormat: the file is not in the format asked for.
	ErrUnknownFormat = errors.New("rpm: unknown database format")
	// ErrCorrupt: the file has a known format but is damaged or crafted.
	ErrCorrupt = errors.New("rpm: corrupt database")
)

// IsBDBHash reports whether the 16 first bytes of a file carry the Berkeley
// DB hash magic, in either byte order.
func IsBDBHash(head []byte) bool {
	if len(head) < 16 {
		return false
	}
	b := head[12:16]
	le := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	be := uint32(b[3]) | uint32(b[2])<<8 | uint32(b[1])<<16 | uint32(b[0])<<24
	return le == bdbHashMagic || be == bdbHashMagic
}

// IsNDB reports whether the first bytes of a file carry the NDB magic.
func IsNDB(head []byte) bool {
	return len(head) >= 4 && string(head[:4]) == "RpmP"
}
