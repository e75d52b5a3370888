package inflate

import (
	"bytes"
	"compress/gzip"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	kgzip "github.com/klauspost/compress/gzip"
)

// member gzips data with a header carrying every optional field the
// format has (FEXTRA, FNAME, FCOMMENT) when full is set.
func member(t testing.TB, data []byte, level int, full bool) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	if full {
		w.Name = "layer.tar"
		w.Comment = "a comment"
		w.Extra = []byte("ab\x02\x00xy")
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// sample is compressible and incompressible data mixed, like a layer of
// text files and binaries.
func sample(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	out := make([]byte, 0, n)
	for len(out) < n {
		k := r.Intn(64 << 10)
		if r.Intn(2) == 0 {
			chunk := make([]byte, k)
			r.Read(chunk)
			out = append(out, chunk...)
		} else {
			out = append(out, bytes.Repeat([]byte("usr/lib/x86_64-linux-gnu/ "), k/26+1)...)
		}
	}
	return out[:n]
}

// reference decompresses with the standard library: the behaviour both
// back ends must match.
func reference(in []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func decode(in []byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	zr, err := NewGzipReader(wrap(bytes.NewReader(in)))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

var wraps = map[string]func(io.Reader) io.Reader{
	"plain":   func(r io.Reader) io.Reader { return r },
	"onebyte": iotest.OneByteReader,
	"half":    iotest.HalfReader,
}

func TestBackend(t *testing.T) {
	t.Logf("backend: %s", Backend())
	if os.Getenv("MAMORI_TEST_ISAL") == "1" && Backend() != "isal" {
		t.Fatal("MAMORI_TEST_ISAL=1 but the ISA-L back end is not in use (build with -tags isal and install libisal2)")
	}
}

func TestGzipMatchesStdlib(t *testing.T) {
	big := sample(1<<20, 1)
	m1 := member(t, big, gzip.DefaultCompression, true)
	m2 := member(t, []byte("second member\n"), gzip.BestSpeed, false)
	m3 := member(t, nil, gzip.NoCompression, false)
	stored := member(t, sample(300<<10, 2), gzip.NoCompression, true)
	corrupt := append([]byte(nil), m1...)
	corrupt[len(corrupt)/2] ^= 0x55
	badCRC := append([]byte(nil), m2...)
	badCRC[len(badCRC)-8] ^= 1
	badSize := append([]byte(nil), m2...)
	badSize[len(badSize)-1] ^= 1
	// Headers compress/gzip's writer never makes: FHCRC (right and wrong),
	// reserved flag bits, an over-long name.
	withFlags := func(flg byte, extra []byte, hcrc bool, bad bool) []byte {
		h := []byte{0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3}
		h = append(h, extra...)
		if hcrc {
			c := crc32.ChecksumIEEE(h)
			if bad {
				c++
			}
			h = append(h, byte(c), byte(c>>8))
		}
		return append(h, m2[10:]...)
	}
	cases := map[string][]byte{
		"hcrc":             withFlags(0x02, nil, true, false),
		"hcrc-bad":         withFlags(0x02, nil, true, true),
		"hcrc-name":        withFlags(0x0a, []byte("n.tar\x00"), true, false),
		"reserved":         withFlags(0x20, nil, false, false),
		"long-name":        withFlags(0x08, append(bytes.Repeat([]byte("a"), 600), 0), false, false),
		"name-512":         withFlags(0x08, append(bytes.Repeat([]byte("a"), 511), 0), false, false),
		"extra-cut":        withFlags(0x04, []byte{0xff, 0xff, 1, 2}, false, false),
		"one":              m1,
		"multi":            append(append(append([]byte(nil), m1...), m2...), m3...),
		"stored":           stored,
		"empty-member":     m3,
		"truncated":        m1[:len(m1)-3],
		"truncated-middle": m1[:len(m1)/3],
		"header-only":      m1[:12],
		"corrupt":          corrupt,
		"bad-crc":          badCRC,
		"bad-size":         badSize,
		"trailing-garbage": append(append([]byte(nil), m2...), "garbage!"...),
		"trailing-zeros":   append(append([]byte(nil), m2...), make([]byte, 512)...),
		"not-gzip":         []byte("plain text, not gzip at all"),
		"empty":            nil,
		"method-not-8":     {0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, in := range cases {
		want, wantErr := reference(in)
		if name == "reserved" {
			// RFC 1952 2.3.1.2: a decoder must reject reserved flag bits;
			// compress/gzip does not, klauspost (the pure-Go back end) does.
			want, wantErr = nil, ErrHeader
		}
		for wn, w := range wraps {
			got, err := decode(in, w)
			if (err == nil) != (wantErr == nil) {
				t.Errorf("%s/%s: err = %v, stdlib %v", name, wn, err, wantErr)
				continue
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Errorf("%s/%s: %d bytes, stdlib %d", name, wn, len(got), len(want))
			}
			if errors.Is(wantErr, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s/%s: truncation: err = %v, want io.ErrUnexpectedEOF", name, wn, err)
			}
		}
	}
}

// TestSmallReads: callers that read a few bytes at a time get the same
// stream (ISA-L buffers output internally when the caller's space is short).
func TestSmallReads(t *testing.T) {
	data := sample(1<<20, 3)
	in := append(member(t, data[:600<<10], 6, false), member(t, data[600<<10:], 1, true)...)
	zr, err := NewGzipReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var got []byte
	buf := make([]byte, 513)
	r := rand.New(rand.NewSource(4))
	for {
		n, err := zr.Read(buf[:1+r.Intn(len(buf)-1)])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
}

func TestReadAfterClose(t *testing.T) {
	zr, err := NewGzipReader(bytes.NewReader(member(t, []byte("x"), 6, false)))
	if err != nil {
		t.Fatal(err)
	}
	zr.Close()
	if _, err := zr.Read(make([]byte, 8)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	zr.Close() // twice is fine
}

// FuzzGzip: whatever the input, the inflater agrees with the standard
// library on success and bytes, and never crashes or hangs.
func FuzzGzip(f *testing.F) {
	f.Add(member(f, []byte("hello hello hello hello"), 6, true))
	f.Add(append(member(f, []byte("a"), 1, false), member(f, []byte("b"), 9, false)...))
	f.Add(member(f, sample(70<<10, 5), 0, false))
	f.Add([]byte{0x1f, 0x8b, 8, 0x1f, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := reference(in)
		if wantErr == nil && len(want) > 64<<20 {
			return
		}
		got, err := decode(in, wraps["half"])
		if (err == nil) != (wantErr == nil) {
			// compress/gzip accepts reserved header flag bits (RFC 1952
			// says reject); both back ends reject them: agree with klauspost.
			kr, kerr := kgzip.NewReader(bytes.NewReader(in))
			if kerr == nil {
				_, kerr = io.ReadAll(kr)
			}
			if err == nil || kerr == nil {
				t.Fatalf("err = %v, stdlib %v, klauspost %v", err, wantErr, kerr)
			}
			return
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%d bytes, stdlib %d", len(got), len(want))
		}
	})
}

// layerLike is up to n bytes of what image layers hold, taken from the Go
// installation running the test: source text and executables.
func layerLike(tb testing.TB, n int) []byte {
	tb.Helper()
	var out []byte
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Skipf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(goroot))
	for _, dir := range []string{"pkg/tool", "src/net", "bin", "src/crypto", "src/runtime"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(out) >= n || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil {
				out = append(out, b...)
			}
			return nil
		})
	}
	if len(out) < n/4 {
		tb.Skipf("only %d bytes of Go installation found", len(out))
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// BenchmarkGzip: inflate throughput (output bytes per second) of the back
// end in use, on layer-like data (MAMORI_BENCH_GZIP=FILE.gz measures a real
// layer instead).
func BenchmarkGzip(b *testing.B) {
	var data, in []byte
	if f := os.Getenv("MAMORI_BENCH_GZIP"); f != "" {
		var err error
		if in, err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
		if data, err = reference(in); err != nil {
			b.Fatal(err)
		}
	} else {
		data = layerLike(b, 48<<20)
		in = member(b, data, gzip.DefaultCompression, false)
	}
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 256<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zr, err := NewGzipReader(bytes.NewReader(in))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{zr}, buf); err != nil {
			b.Fatal(err)
		}
		zr.Close()
	}
}
