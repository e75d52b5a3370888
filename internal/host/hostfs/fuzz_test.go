package hostfs

import (
	"encoding/binary"
	"testing"
)

func FuzzParseDirents(f *testing.F) {
	rec := make([]byte, 24)
	binary.NativeEndian.PutUint16(rec[16:], 24)
	rec[18] = 8
	copy(rec[19:], "name\x00")
	f.Add(rec)
	f.Add(append(rec, rec...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, _ := parseDirents(b)
		for _, e := range ents {
			if e.name == "" || e.name == "." || e.name == ".." {
				t.Fatalf("bad name %q", e.name)
			}
		}
	})
}
