package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzScan: any bytes as a segment; every record found has a valid
// header and CRC, the counts add up, and nothing loops or panics.
func FuzzScan(f *testing.F) {
	var buf bytes.Buffer
	writeRecord(&buf, []byte(`{"id":"a"}`))
	writeRecord(&buf, []byte(`{"id":"b"}`))
	f.Add(buf.Bytes())
	f.Add([]byte("MSP1\xff\xff\xff\xff"))
	f.Add([]byte("MSP1MSP1MSP1"))
	f.Add(append([]byte("junk"), buf.Bytes()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Scan(data)
		if r.Tail < 0 || r.Tail > len(data) || r.Skipped < 0 {
			t.Fatalf("scan %+v of %d bytes", r, len(data))
		}
		pos, n := 0, 0
		budget := scanBudget(len(data))
		for pos < len(data) {
			p, used, _ := next(data[pos:], &budget)
			if used == 0 {
				break
			}
			hdr := data[pos+used-len(p)-headerSize:]
			if string(hdr[:4]) != magic || binary.LittleEndian.Uint32(hdr[8:12]) != crc32.Checksum(p, crcTable) {
				t.Fatal("returned a record that fails its checks")
			}
			pos += used
			n++
		}
		if n != r.Records {
			t.Fatalf("next found %d records, Scan %d", n, r.Records)
		}
		// The same bytes as a spool segment on disk open and read.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), data, 0o600)
		s, err := Open(Options{Dir: dir, Fsync: FsyncNever})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b, err := s.Read(1<<20, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) > r.Records {
			t.Fatalf("spool read %d records, scan found %d", len(b.Records), r.Records)
		}
	})
}
