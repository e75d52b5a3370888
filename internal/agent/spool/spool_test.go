package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func rec(i int) []byte {
	return []byte(fmt.Sprintf(`{"id":"e%06d","pad":"%s"}`, i, bytes.Repeat([]byte("x"), i%50)))
}

func open(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	o.Dir = dir
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain reads and acks everything, returning the payloads.
func drain(t *testing.T, s *Spool, batch int) []string {
	t.Helper()
	var out []string
	for {
		b, err := s.Read(batch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 {
			if err := s.Ack(b); err != nil { // may move past empty segments
				t.Fatal(err)
			}
			return out
		}
		for _, r := range b.Records {
			out = append(out, string(r))
		}
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestAppendReadAckAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 1024, MaxBytes: 1 << 20, Fsync: FsyncAlways})
	for i := range 200 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("%d segments for 200 records of ~60 bytes at 1 KiB each", n)
	}
	// Read without ack twice: the same records (at least once).
	b1, _ := s.Read(10, 1<<20)
	b2, _ := s.Read(10, 1<<20)
	if len(b1.Records) != 10 || string(b1.Records[0]) != string(b2.Records[0]) {
		t.Fatalf("unacked read is not repeatable: %d records", len(b1.Records))
	}
	got := drain(t, s, 7)
	if len(got) != 200 {
		t.Fatalf("read %d records, want 200", len(got))
	}
	for i, g := range got {
		if g != string(rec(i)) {
			t.Fatalf("record %d = %q, want %q", i, g, rec(i))
		}
	}
	st := s.Stats()
	if st.Pending != 0 || st.Acked != 200 || st.Appended != 200 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(segFiles(t, dir)); n > 1 {
		t.Fatalf("%d segments left after everything was acked", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRestartKeepsPositionAndPending(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 512, MaxBytes: 1 << 20, Fsync: FsyncBatch})
	for i := range 50 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := s.Read(20, 1<<20)
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{SegmentBytes: 512, MaxBytes: 1 << 20})
	if p := s.Stats().Pending; p != 30 {
		t.Fatalf("pending after restart = %d, want 30", p)
	}
	for i := 50; i < 60; i++ {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := drain(t, s, 100)
	if len(got) != 40 || got[0] != string(rec(20)) || got[39] != string(rec(59)) {
		t.Fatalf("after restart read %d records from %q", len(got), got[0])
	}
	s.Close()
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{Fsync: FsyncNever})
	for i := range 10 {
		s.Append(rec(i))
	}
	s.Close()
	seg := segFiles(t, dir)[0]
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	var buf bytes.Buffer
	writeRecord(&buf, rec(10))
	f.Write(buf.Bytes()[:buf.Len()-5]) // a crash mid-write
	f.Close()
	s = open(t, dir, Options{})
	if st := s.Stats(); st.TornBytes != uint64(buf.Len()-5) || st.Pending != 10 {
		t.Fatalf("stats after a torn write: %+v", st)
	}
	s.Append(rec(11))
	got := drain(t, s, 100)
	if len(got) != 11 || got[10] != string(rec(11)) {
		t.Fatalf("got %d records, last %q", len(got), got[len(got)-1])
	}
	s.Close()
}

func TestCorruptRecordSkipped(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 4096, Fsync: FsyncNever})
	for i := range 30 {
		s.Append(rec(i))
	}
	s.Close()
	seg := segFiles(t, dir)[0]
	data, _ := os.ReadFile(seg)
	// Flip a byte inside the payload of record 3.
	var off int
	for i := range 3 {
		off += headerSize + len(rec(i))
	}
	data[off+headerSize+2] ^= 0xff
	os.WriteFile(seg, data, 0o600)
	s = open(t, dir, Options{})
	got := drain(t, s, 100)
	if len(got) != 29 {
		t.Fatalf("read %d records around one corrupt record, want 29", len(got))
	}
	for _, g := range got {
		if g == string(rec(3)) {
			t.Fatal("the corrupt record was returned")
		}
	}
	if s.Stats().CorruptBytes == 0 {
		t.Fatal("corrupt bytes not counted")
	}
	s.Close()
}

func TestSizeCapDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 1024, MaxBytes: 4096, Fsync: FsyncNever})
	for i := range 500 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Bytes > 4096+1024 {
		t.Fatalf("spool holds %d bytes, cap 4096", st.Bytes)
	}
	got := drain(t, s, 1000)
	if uint64(len(got))+st.Dropped != 500 {
		t.Fatalf("read %d + dropped %d != 500 appended", len(got), st.Dropped)
	}
	if got[len(got)-1] != string(rec(499)) {
		t.Fatalf("newest record lost: last is %q", got[len(got)-1])
	}
	s.Close()
}

func TestBadAckFileRestartsFromOldest(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := range 5 {
		s.Append(rec(i))
	}
	b, _ := s.Read(3, 1<<20)
	s.Ack(b)
	s.Close()
	os.WriteFile(filepath.Join(dir, ackFile), []byte("garbage\x00\n"), 0o600)
	s = open(t, dir, Options{})
	if got := drain(t, s, 10); len(got) != 5 {
		t.Fatalf("after a bad ack file read %d records, want all 5 again (at least once)", len(got))
	}
	s.Close()
}

func TestForeignFilesIgnored(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "abc.seg"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(dir, "00000000000000000001.seg.d"), 0o700)
	s := open(t, dir, Options{})
	s.Append(rec(1))
	if got := drain(t, s, 10); len(got) != 1 {
		t.Fatalf("read %d", len(got))
	}
	s.Close()
}

func TestTooLargeRefused(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.Append(make([]byte, MaxRecord+1)); err == nil {
		t.Fatal("a record over MaxRecord was accepted")
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, pol := range []string{FsyncNever, FsyncBatch} {
		b.Run(pol, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Fsync: pol, MaxBytes: 1 << 30, SegmentBytes: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := bytes.Repeat([]byte("e"), 850)
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if err := s.Append(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHostileSegmentIsLinear: a segment of fake headers each claiming the
// rest of the file scans in bounded time.
func TestHostileSegmentIsLinear(t *testing.T) {
	var buf bytes.Buffer
	const n = 4 << 20
	for buf.Len() < n {
		buf.WriteString(magic)
		var l [8]byte
		l[0], l[1], l[2] = 0xf0, 0xff, 0x3f // ~4 MiB length, bad CRC
		buf.Write(l[:])
	}
	start := time.Now()
	r := Scan(buf.Bytes())
	if r.Records != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("scan of a hostile segment: %+v in %v", r, time.Since(start))
	}
}
