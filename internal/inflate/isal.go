//go:build isal && cgo

package inflate

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/igzip_lib.h>

typedef void (*isal_init_fn)(struct inflate_state *);
typedef int (*isal_inflate_fn)(struct inflate_state *);

static isal_init_fn mamori_isal_init_p, mamori_isal_reset_p;
static isal_inflate_fn mamori_isal_inflate_p;

// mamori_isal_load resolves ISA-L's inflate functions; 0 on success. Called
// once (sync.Once on the Go side).
static int mamori_isal_load(void) {
	void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!h) h = dlopen("libisal.so", RTLD_NOW | RTLD_LOCAL);
	if (!h) return -1;
	mamori_isal_init_p = (isal_init_fn)dlsym(h, "isal_inflate_init");
	mamori_isal_reset_p = (isal_init_fn)dlsym(h, "isal_inflate_reset");
	mamori_isal_inflate_p = (isal_inflate_fn)dlsym(h, "isal_inflate");
	if (!mamori_isal_init_p || !mamori_isal_reset_p || !mamori_isal_inflate_p) return -2;
	return 0;
}

static struct inflate_state *mamori_isal_new(void) {
	struct inflate_state *s = calloc(1, sizeof *s);
	if (s) {
		mamori_isal_init_p(s);
		// The member header is parsed on the Go side (header.go); ISA-L
		// inflates the deflate data and checks the trailer's CRC and size.
		s->crc_flag = ISAL_GZIP_NO_HDR_VER;
	}
	return s;
}

// mamori_isal_inflate inflates into out (Go memory, not retained: next_out
// is cleared before returning) and reports how many bytes it wrote.
static int mamori_isal_inflate(struct inflate_state *s, uint8_t *out, uint32_t len, uint32_t *wrote) {
	s->next_out = out;
	s->avail_out = len;
	int ret = mamori_isal_inflate_p(s);
	*wrote = len - s->avail_out;
	s->next_out = NULL;
	s->avail_out = 0;
	return ret;
}

static int mamori_isal_finished(struct inflate_state *s) { return s->block_state == ISAL_BLOCK_FINISH; }
static uint32_t mamori_isal_avail_in(struct inflate_state *s) { return s->avail_in; }
static uint32_t mamori_isal_in_off(struct inflate_state *s, uint8_t *in) { return (uint32_t)(s->next_in - in); }
static void mamori_isal_set_in(struct inflate_state *s, uint8_t *in, uint32_t n) { s->next_in = in; s->avail_in = n; }
*/
import "C"

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/gzip"
)

// inBuf is the size of the C-side input buffer of each reader.
const inBuf = 128 << 10

var loadISAL = sync.OnceValue(func() bool { return C.mamori_isal_load() == 0 })

func fastAvailable() bool { return loadISAL() }

// newFast returns an ISA-L reader when libisal could be loaded; ok=false
// sends the caller to the pure-Go inflater.
func newFast(r io.Reader) (io.ReadCloser, bool, error) {
	if !loadISAL() {
		return nil, false, nil
	}
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 16 {
		br = bufio.NewReaderSize(r, 16)
	}
	if err := readHeader(br); err != nil {
		return nil, true, err
	}
	st := C.mamori_isal_new()
	if st == nil {
		return nil, false, nil
	}
	// Zeroed, with slack past the end: cheap insurance for word-sized
	// loads near the end of the valid input.
	in := C.calloc(1, inBuf+64)
	if in == nil {
		C.free(unsafe.Pointer(st))
		return nil, false, nil
	}
	return &isalReader{src: br, st: st, in: in}, true, nil
}

// isalReader inflates a gzip stream (one or more members) with ISA-L. The
// inflate state and the input buffer live in C memory, so no Go pointer is
// ever kept by C; output goes straight into the caller's slice.
type isalReader struct {
	src    io.Reader
	st     *C.struct_inflate_state
	in     unsafe.Pointer
	srcErr error // from src: io.EOF once it is drained
	err    error // sticky result

	// next reads the members after the first: concatenated gzip is rare in
	// layers (pigz and image builders write one member), so the rest of
	// such a stream goes through compress/gzip (not klauspost, which takes
	// a later member's truncated header for a clean end).
	next io.ReadCloser
}

// refill loads more compressed input when ISA-L has consumed all of it.
func (z *isalReader) refill() {
	buf := unsafe.Slice((*byte)(z.in), inBuf)
	for tries := 0; tries < 100; tries++ {
		n, err := z.src.Read(buf)
		if n > 0 {
			C.mamori_isal_set_in(z.st, (*C.uint8_t)(z.in), C.uint32_t(n))
		}
		if err != nil {
			z.srcErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	z.srcErr = io.ErrNoProgress
}

func (z *isalReader) Read(p []byte) (int, error) {
	if z.next != nil {
		return z.next.Read(p)
	}
	if z.err != nil {
		return 0, z.err
	}
	if z.st == nil {
		return 0, errors.New("gzip: read after Close")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > 1<<30 {
		p = p[:1<<30]
	}
	for stalls := 0; ; {
		if C.mamori_isal_avail_in(z.st) == 0 && z.srcErr == nil {
			z.refill()
		}
		availIn := C.mamori_isal_avail_in(z.st)
		if C.mamori_isal_finished(z.st) != 0 {
			// The member ended; another may follow (concatenated gzip).
			if availIn == 0 {
				if z.srcErr == nil {
					continue
				}
				z.err = z.srcErr
				if errors.Is(z.srcErr, io.EOF) {
					z.err = io.EOF
				}
				return 0, z.err
			}
			off := C.mamori_isal_in_off(z.st, (*C.uint8_t)(z.in))
			rest := append([]byte(nil), unsafe.Slice((*byte)(z.in), inBuf)[off:off+availIn]...)
			C.mamori_isal_set_in(z.st, (*C.uint8_t)(z.in), 0)
			var src io.Reader = bytes.NewReader(rest)
			if z.srcErr == nil {
				src = io.MultiReader(src, z.src)
			}
			next, err := stdgzip.NewReader(src)
			if err != nil {
				z.err = err
				return 0, err
			}
			z.next = next
			return z.next.Read(p)
		}
		var wrote C.uint32_t
		ret := C.mamori_isal_inflate(z.st, (*C.uint8_t)(unsafe.Pointer(&p[0])), C.uint32_t(len(p)), &wrote)
		if ret < 0 {
			z.err = isalError(ret)
			return int(wrote), z.err
		}
		if wrote > 0 {
			return int(wrote), nil
		}
		if C.mamori_isal_finished(z.st) != 0 {
			continue
		}
		if C.mamori_isal_avail_in(z.st) == 0 {
			if z.srcErr != nil {
				// Input is gone in the middle of a member.
				z.err = z.srcErr
				if errors.Is(z.srcErr, io.EOF) {
					z.err = io.ErrUnexpectedEOF
				}
				return 0, z.err
			}
			continue
		}
		// Input left, no output, not finished: ISA-L is buffering a
		// header; it cannot go on like that for long.
		if C.mamori_isal_avail_in(z.st) == availIn {
			if stalls++; stalls > 4 {
				z.err = fmt.Errorf("gzip: inflater made no progress")
				return 0, z.err
			}
		}
	}
}

// Close frees the C memory; it does not close the source.
func (z *isalReader) Close() error {
	if z.next != nil {
		z.next.Close()
		z.next = nil
	}
	if z.st != nil {
		C.free(unsafe.Pointer(z.st))
		C.free(z.in)
		z.st, z.in = nil, nil
	}
	if z.err == nil {
		z.err = errors.New("gzip: read after Close")
	}
	return nil
}

func isalError(ret C.int) error {
	switch ret {
	case C.ISAL_INVALID_BLOCK:
		return errors.New("gzip: invalid deflate block")
	case C.ISAL_INVALID_SYMBOL:
		return errors.New("gzip: invalid deflate symbol")
	case C.ISAL_INVALID_LOOKBACK:
		return errors.New("gzip: invalid deflate back-reference")
	case C.ISAL_INVALID_WRAPPER:
		return ErrHeader
	case C.ISAL_UNSUPPORTED_METHOD:
		return fmt.Errorf("%w: unsupported method", ErrHeader)
	case C.ISAL_INCORRECT_CHECKSUM:
		return gzip.ErrChecksum
	}
	return fmt.Errorf("gzip: inflate error %d", int(ret))
}
