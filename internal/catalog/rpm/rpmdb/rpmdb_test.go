package rpmdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

const (
	// bdbFixture is a real RHEL 8.8 database (see ../testdata/NOTICE).
	bdbFixture = "../testdata/rhel8-bdb/var/lib/rpm/Packages"
	// ndbFixture is written by writeNDB from the headers below; the test
	// TestNDBFixture keeps it in step (MAMORI_UPDATE_FIXTURES=1 rewrites it).
	ndbFixture = "../testdata/rpm418-ndb/usr/lib/sysimage/rpm/Packages.db"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headers returns the header blobs rpm 4.18 wrote into the SQLite fixture
// (testdata/headers/<hnum>.hdr, extracted with SELECT blob FROM Packages).
func headers(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 1; i <= 4; i++ {
		out = append(out, readFile(t, filepath.Join("testdata", "headers", string(rune('0'+i))+".hdr")))
	}
	return out
}

// writeNDB lays out an NDB database as rpm's writer does
// (lib/backend/ndb/rpmpkg.c: rpmpkgWriteHeader, rpmpkgWriteEmptySlotpage,
// rpmpkgWriteslot, rpmpkgWriteBlob): one slot page, blobs appended after it.
func writeNDB(blobs [][]byte) []byte {
	le := binary.LittleEndian
	out := make([]byte, ndbPageSize)
	le.PutUint32(out[0:], ndbHeaderMagic)
	le.PutUint32(out[4:], ndbVersion)
	le.PutUint32(out[8:], uint32(len(blobs)+1)) // generation
	le.PutUint32(out[12:], 1)                   // slot pages
	le.PutUint32(out[16:], uint32(len(blobs)+1))
	for o := ndbHeaderSize; o < ndbPageSize; o += ndbSlotSize {
		le.PutUint32(out[o:], ndbSlotMagic)
	}
	for i, b := range blobs {
		pkgIdx := uint32(i + 1)
		blkCnt := (ndbBlobHead + len(b) + ndbBlobTail + ndbBlkSize - 1) / ndbBlkSize
		blkOff := len(out) / ndbBlkSize
		slot := out[ndbHeaderSize+i*ndbSlotSize:]
		le.PutUint32(slot[4:], pkgIdx)
		le.PutUint32(slot[8:], uint32(blkOff))
		le.PutUint32(slot[12:], uint32(blkCnt))
		blob := make([]byte, blkCnt*ndbBlkSize)
		le.PutUint32(blob[0:], ndbBlobMagic)
		le.PutUint32(blob[4:], pkgIdx)
		le.PutUint32(blob[8:], 1700000000)
		le.PutUint32(blob[12:], uint32(len(b)))
		copy(blob[ndbBlobHead:], b)
		tail := blob[len(blob)-ndbBlobTail:]
		le.PutUint32(tail[0:], adler32.Checksum(blob[:len(blob)-ndbBlobTail]))
		le.PutUint32(tail[4:], uint32(len(b)))
		le.PutUint32(tail[8:], ndbTailMagic)
		out = append(out, blob...)
	}
	return out
}

func TestNDBFixture(t *testing.T) {
	want := writeNDB(headers(t))
	if os.Getenv("MAMORI_UPDATE_FIXTURES") == "1" {
		if err := os.WriteFile(ndbFixture, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, ndbFixture); !bytes.Equal(got, want) {
		t.Fatal("NDB fixture differs from writeNDB(headers); rerun with MAMORI_UPDATE_FIXTURES=1")
	}
	blobs, err := ReadNDB(context.Background(), bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(blobs, headers(t)) {
		t.Error("ReadNDB did not return the headers written")
	}
}

func TestParseHeader(t *testing.T) {
	var got []Header
	for _, b := range headers(t) {
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, *h)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	// As `rpm --dbpath DIR -qa --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE}
	// %{ARCH} %{SOURCERPM} %{LICENSE}'` prints them, and the files as
	// `--qf '[%{FILENAMES} %{FILEDIGESTS} %{FILEDIGESTALGO}\n]'` does.
	want := []Header{
		{Name: "gpg-pubkey", Version: "54fa0874", Release: "6b027099", SourceRPM: "(none)", License: "pubkey"},
		{Name: "libmamori-fixture", Version: "1.2.3", Release: "4.el9", Arch: "noarch", SourceRPM: "mamori-fixture-1.2.3-4.el9.src.rpm", License: "MIT", Epoch: 1, HasEpoch: true,
			Files: []File{{Path: "/usr/share/libmamori-fixture/README", Digest: "a325dcacb80b202a014b420b93fc19061900018f8ce216d0a0cb00d610ec7f97", Algo: "sha256"}}},
		{Name: "mamori-fixture", Version: "1.2.3", Release: "4.el9", Arch: "noarch", SourceRPM: "mamori-fixture-1.2.3-4.el9.src.rpm", License: "MIT and ASL 2.0", Epoch: 1, HasEpoch: true,
			Files: []File{{Path: "/usr/share/mamori-fixture/README", Digest: "e80b71cd14d3cbd65f4173abcbfcf01a545dbca32a72d575108b553a648cc96f", Algo: "sha256"}}},
		{Name: "noepoch-fixture", Version: "0.9", Release: "1", Arch: "noarch", SourceRPM: "noepoch-fixture-0.9-1.src.rpm", License: "BSD"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	h := headers(t)[0]
	be := binary.BigEndian
	mod := func(f func(b []byte)) []byte { c := bytes.Clone(h); f(c); return c }
	for name, b := range map[string][]byte{
		"short":             h[:7],
		"no tags":           mod(func(b []byte) { be.PutUint32(b[0:], 0) }),
		"too many tags":     mod(func(b []byte) { be.PutUint32(b[0:], 0x10000) }),
		"data too large":    mod(func(b []byte) { be.PutUint32(b[4:], maxHeaderData+1) }),
		"data beyond blob":  h[:len(h)-1],
		"string offset out": mod(func(b []byte) { setEntry(b, tagName, 0x7fffffff) }),
		"negative offset":   mod(func(b []byte) { setEntry(b, tagName, -5) }),
		"unterminated":      mod(func(b []byte) { setEntry(b, tagName, int32(be.Uint32(b[4:]))-1); b[len(b)-1] = 'x' }),
	} {
		if _, err := ParseHeader(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// setEntry sets the data offset of tag's index entry.
func setEntry(b []byte, tag int32, off int32) {
	il := int(binary.BigEndian.Uint32(b[0:]))
	for i := 0; i < il; i++ {
		e := b[8+i*HeaderEntrySize:]
		if int32(binary.BigEndian.Uint32(e)) == tag {
			binary.BigEndian.PutUint32(e[8:], uint32(off))
		}
	}
}

func TestReadBDB(t *testing.T) {
	data := readFile(t, bdbFixture)
	blobs, err := ReadBDB(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range blobs {
		if len(b) < 8+HeaderEntrySize {
			continue // record 0: rpm's 4-byte instance counter
		}
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name+"-"+h.Version+"-"+h.Release+"."+h.Arch+" "+h.SourceRPM)
	}
	want := []string{"libuuid-2.32.1-42.el8_8.x86_64 util-linux-2.32.1-42.el8_8.src.rpm"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if !IsBDBHash(data[:16]) || IsNDB(data[:16]) {
		t.Error("magic detection")
	}
}

func TestCorrupt(t *testing.T) {
	bdb := readFile(t, bdbFixture)
	ndb := writeNDB(headers(t))
	flip := func(b []byte, off int, v byte) []byte { c := bytes.Clone(b); c[off] = v; return c }

	cyc := bytes.Clone(bdb) // an overflow page pointing at itself
	pageSize := int(binary.LittleEndian.Uint32(cyc[20:24]))
	for pg := 1; pg*pageSize < len(cyc); pg++ {
		p := cyc[pg*pageSize:]
		if p[25] == bdbPageOverflow && binary.LittleEndian.Uint32(p[16:20]) != 0 {
			binary.LittleEndian.PutUint32(p[16:20], uint32(pg))
			break
		}
	}
	huge := bytes.Clone(ndb) // a blob claiming 4 GiB
	binary.LittleEndian.PutUint32(huge[ndbPageSize+12:], 0xffffffff)
	overlap := bytes.Clone(ndb) // every free slot pointing at the first blob
	for o := ndbHeaderSize + 4*ndbSlotSize; o < ndbPageSize; o += ndbSlotSize {
		copy(overlap[o+4:o+16], overlap[ndbHeaderSize+4:ndbHeaderSize+16])
	}

	tests := []struct {
		name string
		read func(context.Context, []byte) ([][]byte, error)
		data []byte
	}{
		{"bdb truncated", bdbRead, bdb[:len(bdb)/3]},
		{"bdb bad page size", bdbRead, flip(bdb, 21, 0x03)},
		{"bdb overflow cycle", bdbRead, cyc},
		{"bdb encrypted", bdbRead, flip(bdb, 24, 1)},
		{"ndb adler mismatch", ndbRead, flip(ndb, ndbPageSize+ndbBlobHead+40, 0x55)},
		{"ndb huge blob", ndbRead, huge},
		{"ndb overlapping slots", ndbRead, overlap},
		{"ndb truncated", ndbRead, ndb[:len(ndb)-100]},
		{"ndb bad slot magic", ndbRead, flip(ndb, ndbHeaderSize+ndbSlotSize*5, 'X')},
		{"ndb slot pages beyond file", ndbRead, flip(ndb, 12, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := tt.read(context.Background(), tt.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if _, err := ReadBDB(context.Background(), bytes.NewReader(ndb), int64(len(ndb))); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("NDB read as BDB: %v", err)
	}
	if _, err := ReadNDB(context.Background(), bytes.NewReader(bdb), int64(len(bdb))); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("BDB read as NDB: %v", err)
	}
}

func bdbRead(ctx context.Context, b []byte) ([][]byte, error) {
	return ReadBDB(ctx, bytes.NewReader(b), int64(len(b)))
}

func ndbRead(ctx context.Context, b []byte) ([][]byte, error) {
	return ReadNDB(ctx, bytes.NewReader(b), int64(len(b)))
}

func BenchmarkReadBDB(b *testing.B) {
	data := readFile(b, bdbFixture)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := bdbRead(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}
