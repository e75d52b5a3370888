package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Chunking of verifyReader: the stream is read in chunks of verifyChunk
// bytes, and up to verifyChunks of them are in flight between the reader
// and the hashing goroutine (1 MiB per open stream).
const (
	verifyChunk  = 256 << 10
	verifyChunks = 4
)

// verifyReader hashes what it passes through and, at EOF, fails unless the
// bytes match the expected digest (and size, when size >= 0). The error
// arrives with the final Read, so a consumer that reads to EOF (the layer
// walk) learns that the bytes it saw are not the ones the image names, and
// must not cache what it derived from them under that digest.
//
// Hashing runs on its own goroutine, a few chunks behind the consumer: on a
// layer walk the SHA-256 of the uncompressed stream costs about a quarter
// of the decompression, and this takes it off the critical path when a
// second core is free. Nothing is lost in safety: the verdict is still
// delivered with the final Read, after every byte was hashed.
type verifyReader struct {
	r    io.Reader
	c    io.Closer
	want v1.Hash
	size int64
	what string

	n   int64  // bytes read from r
	cur []byte // chunk being served
	off int

	started bool
	free    chan []byte // chunks the hasher is done with
	work    chan []byte // chunks to hash, closed at EOF or Close
	sum     chan []byte // the hasher's result
	stop    sync.Once

	eof   bool  // r is exhausted: serve cur, then final
	final error // the verdict (io.EOF when the bytes are right)
	done  bool
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
	return &verifyReader{r: r, c: rc, want: want, size: size, what: what}, nil
}

// start launches the hasher on the first Read, so a stream opened and
// closed unread costs no goroutine.
func (v *verifyReader) start() {
	v.started = true
	v.free = make(chan []byte, verifyChunks)
	v.work = make(chan []byte, verifyChunks)
	v.sum = make(chan []byte, 1)
	for i := 0; i < verifyChunks; i++ {
		v.free <- nil // allocated on first use: small blobs stay small
	}
	go func(work <-chan []byte, free chan<- []byte, sum chan<- []byte) {
		h := sha256.New()
		for b := range work {
			h.Write(b)
			free <- b
		}
		sum <- h.Sum(nil)
	}(v.work, v.free, v.sum)
}

// finish stops the hasher and returns its digest (nil if it was never
// started).
func (v *verifyReader) finish() []byte {
	if !v.started {
		return nil
	}
	var s []byte
	v.stop.Do(func() {
		close(v.work)
		s = <-v.sum
	})
	return s
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.done {
		return 0, v.final
	}
	if len(p) == 0 {
		return 0, nil
	}
	if v.off == len(v.cur) {
		if v.eof {
			v.done = true
			return 0, v.final
		}
		if err := v.fill(); err != nil {
			v.done = true
			v.final = err
			v.finish()
			return 0, err
		}
		if v.off == len(v.cur) { // empty stream or nothing left
			v.done = true
			return 0, v.final
		}
	}
	n := copy(p, v.cur[v.off:])
	v.off += n
	return n, nil
}

// fill reads the next chunk, hands it to the hasher, and at the end of the
// stream waits for the digest and sets the verdict.
func (v *verifyReader) fill() error {
	if !v.started {
		v.start()
	}
	b := <-v.free
	if b == nil {
		b = make([]byte, verifyChunk)
	}
	b = b[:cap(b)]
	n, empty := 0, 0
	for n < len(b) {
		m, err := v.r.Read(b[n:])
		n += m
		if m == 0 && err == nil {
			if empty++; empty == 100 {
				v.free <- b
				return io.ErrNoProgress
			}
			continue
		}
		if err == io.EOF {
			v.eof = true
			break
		}
		if err != nil {
			v.free <- b
			return err // a corrupt or truncated stream: its own error
		}
	}
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.free <- b
		return fmt.Errorf("%w: %s is longer than its %d bytes", ErrMalformed, v.what, v.size)
	}
	v.cur, v.off = b[:n], 0
	v.work <- v.cur
	if v.eof {
		got := hex.EncodeToString(v.finish())
		v.final = io.EOF
		if v.size >= 0 && v.n != v.size {
			v.final = fmt.Errorf("%w: %s is truncated: %d of %d bytes", ErrMalformed, v.what, v.n, v.size)
		} else if got != v.want.Hex {
			v.final = fmt.Errorf("%w: %s: digest sha256:%s does not match %s", ErrMalformed, v.what, got, v.want)
		}
	}
	return nil
}

// Close stops the hasher (if a Read started it) and closes the stream.
func (v *verifyReader) Close() error {
	v.finish()
	return v.c.Close()
}
