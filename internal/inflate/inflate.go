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
	"bufio"
	stdgzip "compress/gzip"
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
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	zr, err := gzip.NewReader(br) // br is an io.ByteReader: no read-ahead past the member
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return &goReader{br: br, zr: zr}, nil
}

// goReader is klauspost's inflater for the first member; members after it
// (rare in layers) go through compress/gzip, because klauspost's
// multistream mode takes a later member's truncated header for a clean end.
type goReader struct {
	br   *bufio.Reader
	zr   *gzip.Reader
	rest *stdgzip.Reader
}

func (g *goReader) Read(p []byte) (int, error) {
	if g.rest != nil {
		return g.rest.Read(p)
	}
	n, err := g.zr.Read(p)
	if err != io.EOF {
		return n, err
	}
	if _, perr := g.br.Peek(1); perr != nil {
		if perr == io.EOF {
			return n, io.EOF
		}
		return n, perr
	}
	rest, err := stdgzip.NewReader(g.br)
	if err != nil {
		return n, err
	}
	g.rest = rest
	if n > 0 {
		return n, nil
	}
	return g.rest.Read(p)
}

func (g *goReader) Close() error {
	if g.rest != nil {
		g.rest.Close()
	}
	return g.zr.Close()
}

// Backend names the inflater NewGzipReader uses on this machine: "isal" or
// "go".
func Backend() string {
	if fastAvailable() {
		return "isal"
	}
	return "go"
}
