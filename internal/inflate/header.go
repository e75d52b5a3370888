//go:build isal && cgo

package inflate

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Limits on a gzip header's optional fields. FEXTRA's length is a 16-bit
// field; names and comments are NUL-terminated strings compress/gzip caps
// at 512 bytes, which no real layer comes near.
const maxHeaderString = 512

// readHeader consumes one gzip member header (RFC 1952 section 2.3) from
// br: the fixed 10 bytes, then FEXTRA, FNAME, FCOMMENT and FHCRC when
// flagged. The deflate data follows. It reports io.EOF for an empty
// stream, io.ErrUnexpectedEOF for a cut header, ErrHeader otherwise.
func readHeader(br *bufio.Reader) error {
	crc := crc32.NewIEEE()
	take := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		crc.Write(b)
		return b, nil
	}
	fixed, err := take(10)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, io.EOF) {
			return err
		}
		return io.EOF
	}
	if fixed[0] != 0x1f || fixed[1] != 0x8b {
		return ErrHeader
	}
	if fixed[2] != 8 {
		return fmt.Errorf("%w: compression method %d", ErrHeader, fixed[2])
	}
	flg := fixed[3]
	if flg&0xe0 != 0 {
		return fmt.Errorf("%w: reserved flag bits set", ErrHeader) // RFC 1952 2.3.1.2
	}
	const (
		fHCRC    = 1 << 1
		fEXTRA   = 1 << 2
		fNAME    = 1 << 3
		fCOMMENT = 1 << 4
	)
	if flg&fEXTRA != 0 {
		l, err := take(2)
		if err != nil {
			return unexpected(err)
		}
		if _, err := take(int(l[0]) | int(l[1])<<8); err != nil {
			return unexpected(err)
		}
	}
	for _, f := range []byte{fNAME, fCOMMENT} {
		if flg&f == 0 {
			continue
		}
		for i := 0; ; i++ {
			if i > maxHeaderString {
				return fmt.Errorf("%w: name or comment longer than %d bytes", ErrHeader, maxHeaderString)
			}
			c, err := br.ReadByte()
			if err != nil {
				return unexpected(err)
			}
			crc.Write([]byte{c})
			if c == 0 {
				break
			}
		}
	}
	if flg&fHCRC != 0 {
		want := uint16(crc.Sum32())
		b := make([]byte, 2)
		if _, err := io.ReadFull(br, b); err != nil {
			return unexpected(err)
		}
		if uint16(b[0])|uint16(b[1])<<8 != want {
			return fmt.Errorf("%w: header checksum mismatch", ErrHeader)
		}
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
