package rpmdb

import (
	"bytes"
	"context"
	"testing"
)

func FuzzParseHeader(f *testing.F) {
	for _, b := range headers(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err == nil && h == nil {
			t.Fatal("nil header without error")
		}
	})
}

func FuzzReadBDB(f *testing.F) {
	f.Add(readFile(f, bdbFixture))
	f.Fuzz(func(t *testing.T, data []byte) {
		blobs, err := ReadBDB(context.Background(), bytes.NewReader(data), int64(len(data)))
		checkBlobs(t, blobs, err, len(data))
	})
}

func FuzzReadNDB(f *testing.F) {
	f.Add(writeNDB(headers(f)))
	f.Add(writeNDB(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		blobs, err := ReadNDB(context.Background(), bytes.NewReader(data), int64(len(data)))
		checkBlobs(t, blobs, err, len(data))
	})
}

// checkBlobs asserts the readers' bound: never more bytes out than in.
func checkBlobs(t *testing.T, blobs [][]byte, err error, size int) {
	if err != nil {
		return
	}
	total := 0
	for _, b := range blobs {
		total += len(b)
		if _, err := ParseHeader(b); err == nil {
			continue
		}
	}
	if total > size {
		t.Fatalf("%d bytes of blobs from a %d-byte file", total, size)
	}
}
