package tail

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

type lineSink struct{ lines [][]byte }

func (s *lineSink) Line(l Line)   { s.lines = append(s.lines, append([]byte(nil), l.Data...)) }
func (s *lineSink) Notice(Notice) {}

// FuzzConsume: however a file's bytes are split into reads, the lines delivered are the
// newline-separated lines of the data, each cut at the maximum length.
func FuzzConsume(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), []byte{1, 2, 3})
	f.Add(bytes.Repeat([]byte("x"), 700), []byte{255, 1})
	f.Add([]byte("\x00\x00line\n\n\n"), []byte{0})
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		const maxLine = 256
		fo, err := New([]Spec{{Pattern: "/x"}}, WithMaxLineBytes(maxLine))
		if err != nil {
			t.Fatal(err)
		}
		fl := &file{}
		sink := &lineSink{}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(splits) {
				n = min(n, int(splits[i])+1)
			}
			fo.consume(fl, rest[:n], sink)
			rest = rest[n:]
		}
		if fl.readPos != int64(len(data)) {
			t.Fatalf("readPos %d, want %d", fl.readPos, len(data))
		}
		// Reference: split on newlines; the unterminated tail is pending (or cut when long).
		var want [][]byte
		parts := bytes.Split(data, []byte("\n"))
		for i, p := range parts {
			last := i == len(parts)-1
			if last && len(p) <= maxLine {
				if !bytes.Equal(fl.partial, p) {
					t.Fatalf("partial %q, want %q", fl.partial, p)
				}
				break
			}
			if len(p) > maxLine {
				p = p[:maxLine]
			}
			p = bytes.TrimSuffix(p, []byte("\r"))
			want = append(want, bytes.TrimLeft(p, "\x00"))
		}
		if len(sink.lines) != len(want) {
			t.Fatalf("%d lines, want %d", len(sink.lines), len(want))
		}
		for i := range want {
			if !bytes.Equal(sink.lines[i], want[i]) {
				t.Fatalf("line %d: %q, want %q", i, sink.lines[i], want[i])
			}
		}
		if fl.offset > fl.readPos || (!fl.skipping && fl.offset+int64(len(fl.partial)) != fl.readPos) {
			t.Fatalf("offset %d readPos %d partial %d skipping %v", fl.offset, fl.readPos, len(fl.partial), fl.skipping)
		}
	})
}

// FuzzState: a corrupt or hostile state file is an error or a usable state, never a crash.
func FuzzState(f *testing.F) {
	f.Add([]byte(`{"version":1,"files":[{"path":"/var/log/auth.log","spec":0,"id":{"Dev":1,"Ino":2},"fp":{"len":3,"sha256":"` +
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" + `"},"offset":10,"size":20}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"/a","fp":{"len":-1,"sha256":""},"offset":-5}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		st := filepath.Join(dir, "state")
		if err := os.WriteFile(st, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fo, err := New([]Spec{{Pattern: "/var/log/*.log"}, {Pattern: filepath.Join(dir, "*.log")}}, WithState(st))
		if err != nil {
			t.Fatal(err)
		}
		if err := fo.Start(); err != nil {
			return
		}
		sink := &lineSink{}
		fo.Poll(sink)
		fo.closeAll()
	})
}
