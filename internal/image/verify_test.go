package image

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestVerifyReader covers the verdicts of the pipelined hasher across chunk
// boundaries: every byte is delivered, and the final Read says whether they
// were the right ones.
func TestVerifyReader(t *testing.T) {
	sizes := []int{0, 1, verifyChunk - 1, verifyChunk, verifyChunk + 1, verifyChunks*verifyChunk + 17, 3 << 20}
	for _, n := range sizes {
		data := bytes.Repeat([]byte("mamori-"), n/7+1)[:n]
		other := append([]byte(nil), data...)
		if n > 0 {
			other[n-1] ^= 1
		}
		cases := []struct {
			name string
			want v1.Hash
			size int64
			err  string // "" = io.EOF
		}{
			{"right", sha(data), -1, ""},
			{"right-sized", sha(data), int64(n), ""},
			{"wrong-digest", sha(append(other, 'x')), -1, "does not match"},
			{"too-long", sha(data), int64(n) - 1, "longer than"},
			{"truncated", sha(data), int64(n) + 1, "truncated"},
		}
		for _, c := range cases {
			if c.name == "too-long" && n == 0 {
				continue
			}
			// Small odd reads (iotest.HalfReader) exercise the copy-out path.
			for _, half := range []bool{false, true} {
				vr, err := newVerifyReader(io.NopCloser(bytes.NewReader(data)), c.want, c.size, "blob")
				if err != nil {
					t.Fatal(err)
				}
				var r io.Reader = vr
				if half {
					r = iotest.OneByteReader(io.LimitReader(vr, 1<<40))
					if n > verifyChunk*2 {
						continue // byte at a time: slow and adds nothing at this size
					}
				}
				got, err := io.ReadAll(r)
				if c.err == "" {
					if err != nil {
						t.Fatalf("n=%d %s: %v", n, c.name, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("n=%d %s: bytes differ", n, c.name)
					}
				} else if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("n=%d %s: err = %v, want %q", n, c.name, err, c.err)
				}
				// The verdict sticks.
				if _, err2 := vr.Read(make([]byte, 8)); (c.err == "") != (err2 == io.EOF) {
					t.Fatalf("n=%d %s: second read %v", n, c.name, err2)
				}
				vr.Close()
			}
		}
	}
}

type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestVerifyReaderStreamError(t *testing.T) {
	data := bytes.Repeat([]byte{7}, verifyChunk*2+5)
	boom := errors.New("boom")
	vr, _ := newVerifyReader(io.NopCloser(&errAfter{bytes.NewReader(data), boom}), sha(data), -1, "blob")
	_, err := io.ReadAll(vr)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the stream's own error", err)
	}
	vr.Close()

	// A reader that never makes progress ends instead of spinning.
	vr, _ = newVerifyReader(io.NopCloser(stuck{}), sha(nil), -1, "blob")
	if _, err := io.ReadAll(vr); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want ErrNoProgress", err)
	}
	vr.Close()
}

type stuck struct{}

func (stuck) Read([]byte) (int, error) { return 0, nil }

// TestVerifyReaderNoLeak: streams closed unread, mid-way or after EOF leave
// no hashing goroutine behind.
func TestVerifyReaderNoLeak(t *testing.T) {
	data := bytes.Repeat([]byte{1}, verifyChunk*verifyChunks*3)
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		for _, readN := range []int{0, 1, verifyChunk + 3, len(data)} {
			vr, _ := newVerifyReader(io.NopCloser(bytes.NewReader(data)), sha(data), -1, "blob")
			io.CopyN(io.Discard, vr, int64(readN))
			vr.Close()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines before, %d after", before, g)
	}
}

// BenchmarkVerifyReader: hashing throughput of the pipelined reader.
func BenchmarkVerifyReader(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	want := sha(data)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 32<<10)
	for i := 0; i < b.N; i++ {
		vr, _ := newVerifyReader(io.NopCloser(bytes.NewReader(data)), want, int64(len(data)), "blob")
		if _, err := io.CopyBuffer(io.Discard, vr, buf); err != nil {
			b.Fatal(err)
		}
		vr.Close()
	}
}
