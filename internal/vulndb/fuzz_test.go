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

// FuzzParseKEV: any input is a catalogue whose entries have CVE IDs and
// dates, or ErrFeed; never a panic.
func FuzzParseKEV(f *testing.F) {
	f.Add(readFile(f, testKEV))
	f.Add([]byte(`{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2020-0601","dateAdded":"2021-11-03"}]}`))
	f.Add([]byte(`{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2020-0601","dateAdded":"2021-11-03","knownRansomwareCampaignUse":7}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseKEV(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFeed) {
				t.Fatalf("error not ErrFeed: %v", err)
			}
			return
		}
		for cve, e := range c.Entries {
			if !IsCVE(cve) || !isDate(e.DateAdded) {
				t.Fatalf("entry %q %+v", cve, e)
			}
		}
	})
}

// FuzzParseEPSS: any input (plain or gzip) is scores in [0, 1] for CVE IDs,
// or ErrFeed; never a panic.
func FuzzParseEPSS(f *testing.F) {
	raw := readFile(f, testEPSS)
	f.Add(raw)
	f.Add(gz(f, raw[:400]))
	f.Add([]byte("cve,epss,percentile\nCVE-2021-44228,1e-5,0.5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEPSS(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !errors.Is(err, ErrFeed) {
				t.Fatalf("error not ErrFeed: %v", err)
			}
			return
		}
		for _, r := range e.Rows {
			if !IsCVE(r.CVE) || r.Score < 0 || r.Score > 1 || r.Percentile < 0 || r.Percentile > 1 {
				t.Fatalf("row %+v", r)
			}
			if s, ok := decodeEPSS(encodeEPSS(r.EPSSScore)); !ok || s.Score < 0 || s.Score > 1 {
				t.Fatalf("stored %+v", s)
			}
		}
	})
}
