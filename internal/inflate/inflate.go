// Package inflate decompresses gzip streams as fast as the machine allows.
//
// Layer decompression is the floor of an image scan's wall time: a layer's
// gzip stream is one serial DEFLATE stream, and everything downstream (tar
// walk, catalogers, hashing) waits on it. With the build tag `isal` (cgo,
// Debian's libisal-dev at build time) gzip is inflated by Intel's ISA-L,
// loaded at run time with dlopen: a binary built that way runs anywhere,
// using libisal.so.2 when the machine has it (Debian package libisal2) and
// klauspost/compress otherwise. ISA-L inflates about twice as fast as the
// fastest pure-Go inflater on x86-64 (bench/README.md has the numbers).
//
// Both back ends keep compress/gzip's contract: concatenated members are
// one stream, a member's CRC-32 and length are checked, a truncated stream
// ends in io.ErrUnexpectedEOF, and anything that is not gzip where a header
// should be is an error.
package inflate

import (
	"io"

	"github.com/klauspost/compress/gzip"
)

// ErrHeader is returned for data that does not start like a gzip member.
var ErrHeader = gzip.ErrHeader

// NewGzipReader returns a reader of r's decompressed bytes. The gzip
// header's first bytes are checked here; the rest of the stream is checked
// as it is read. Closing the reader does not close r.
func NewGzipReader(r io.Reader) (io.ReadCloser, error) {
	if rc, ok, err := newFast(r); ok {
		return rc, err
	}
	return gzip.NewReader(r)
}

// Backend names the inflater NewGzipReader uses on this machine: "isal" or
// "go".
func Backend() string {
	if fastAvailable() {
		return "isal"
	}
	return "go"
}
