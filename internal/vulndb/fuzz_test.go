package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseRecord: any input either parses into a record that survives a
// JSON round trip or fails with ErrInvalidRecord; never a panic.
func FuzzParseRecord(f *testing.F) {
	for _, rel := range []string{"Debian/DSA-5514-1.json", "npm/GHSA-29mw-wpgm-hmr9.json", "Go/GO-2026-6218.json",
		"PyPI/PYSEC-2024-68.json", "AlmaLinux/ALBA-2019-0973.json", "crates.io/RUSTSEC-2024-0445.json", "malicious/MAL-2024-4720.json"} {
		f.Add(readTestRecord(f, rel))
	}
	f.Add([]byte(`{"id":"X","modified":"x","affected":[{"package":{"ecosystem":"npm","name":"a"},"ecosystem_specific":{"severity":7,"urgency":["x"]}}]}`))
	f.Add([]byte(`{"id":"X","modified":"x","database_specific":{"severity":{"a":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error not ErrInvalidRecord: %v", err)
			}
			return
		}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Record
		if err := json.Unmarshal(js, &back); err != nil || back.ID != r.ID {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzImportZip: any zip (or non-zip) input is read or fails with an
// error; never a panic, never more than the caps. (Records are fuzzed by
// FuzzParseRecord.)
func FuzzImportZip(f *testing.F) {
	f.Add(makeZip(f, map[string][]byte{"a.json": []byte(`{"id":"x"}`)}))
	f.Add(makeZip(f, map[string][]byte{"a.json": readTestRecord(f, "npm/GHSA-29mw-wpgm-hmr9.json"), "b.json": []byte("{")}))
	f.Add(makeZip(f, map[string][]byte{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := &limits{maxRecord: 64 << 10, maxEntries: 1000, maxTotal: 1 << 20}
		n := 0
		_ = readZip(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", lim, func(raw rawRecord) error {
			n++
			if len(raw.Data) > 64<<10 {
				t.Fatalf("record of %d bytes passed the cap", len(raw.Data))
			}
			return nil
		})
		if n > 1000 || lim.total > 1<<20 {
			t.Fatalf("caps exceeded: %d entries, %d bytes", n, lim.total)
		}
	})
}
