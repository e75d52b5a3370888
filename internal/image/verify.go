package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// verifyReader hashes what it passes through and, at EOF, fails unless the
// bytes match the expected digest (and size, when size >= 0). The error
// arrives with the final Read, so a consumer that reads to EOF (the layer
// walk) learns that the bytes it saw are not the ones the image names, and
// must not cache what it derived from them under that digest.
type verifyReader struct {
	r     io.Reader
	c     io.Closer
	h     hash.Hash
	want  v1.Hash
	size  int64
	n     int64
	what  string
	done  bool
	final error
}

// newVerifyReader wraps rc. Only sha256 digests can be checked; other
// algorithms are refused up front rather than passed unchecked.
func newVerifyReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" || len(want.Hex) != 64 {
		rc.Close()
		return nil, fmt.Errorf("%w: %s: unsupported digest %q", ErrMalformed, what, want)
	}
	var r io.Reader = rc
	if size >= 0 {
		r = io.LimitReader(rc, size+1) // one byte over reveals a too-long blob
	}
	return &verifyReader{r: r, c: rc, h: sha256.New(), want: want, size: size, what: what}, nil
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.done {
		return 0, v.final
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.done = true
		v.final = fmt.Errorf("%w: %s is longer than its %d bytes", ErrMalformed, v.what, v.size)
		return n, v.final
	}
	if err == io.EOF {
		v.done = true
		v.final = io.EOF
		if v.size >= 0 && v.n != v.size {
			v.final = fmt.Errorf("%w: %s is truncated: %d of %d bytes", ErrMalformed, v.what, v.n, v.size)
		} else if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			v.final = fmt.Errorf("%w: %s: digest sha256:%s does not match %s", ErrMalformed, v.what, got, v.want)
		}
		return n, v.final
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.c.Close() }
