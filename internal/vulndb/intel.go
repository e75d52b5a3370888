package vulndb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Exploit intelligence kept beside the advisories, keyed by CVE ID:
//
//   - CISA's Known Exploited Vulnerabilities catalogue (the JSON feed,
//     https://www.cisa.gov/known-exploited-vulnerabilities-catalog), and
//   - FIRST's Exploit Prediction Scoring System scores (the daily CSV,
//     usually gzip-compressed, https://www.first.org/epss/data_stats).
//
// Both are parsed whole and checked before a database is built from them:
// a truncated, garbage or oversized feed is an error and the old database
// stays.

// Feed caps: they bound memory and time whatever a feed holds. The real
// files are far below them (KEV about 1.3 MB, 1,400 entries; EPSS about
// 300,000 rows, 10 MB decompressed).
const (
	// MaxKEVBytes bounds the KEV JSON.
	MaxKEVBytes = 64 << 20
	// MaxEPSSBytes bounds the decompressed EPSS CSV (and its download).
	MaxEPSSBytes = 512 << 20
	// maxKEVEntries and maxEPSSRows bound the entries of one feed.
	maxKEVEntries = 1_000_000
	maxEPSSRows   = 10_000_000
	// maxEPSSLine bounds one CSV line.
	maxEPSSLine = 4096
)

// ErrFeed is returned (wrapped) for a KEV or EPSS feed that is not in the
// published format or goes over a cap.
var ErrFeed = errors.New("vulndb: invalid exploit-intelligence feed")

// cveRE is the CVE ID form the KEV schema gives.
var cveRE = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,19}$`)

// IsCVE reports whether id is a well-formed CVE ID.
func IsCVE(id string) bool { return cveRE.MatchString(id) }

// KEVEntry is what the database keeps of one KEV catalogue entry.
type KEVEntry struct {
	// DateAdded is when CISA added the CVE to the catalogue (YYYY-MM-DD).
	DateAdded string `json:"dateAdded"`
	// DueDate is the remediation due date for US federal agencies.
	DueDate string `json:"dueDate,omitempty"`
	// Ransomware is true when CISA says the CVE is known to be used in
	// ransomware campaigns (knownRansomwareCampaignUse "Known").
	Ransomware bool `json:"ransomware,omitempty"`
}

// KEVCatalog is a parsed KEV feed.
type KEVCatalog struct {
	// Version is catalogVersion ("2025.08.25"), Released dateReleased.
	Version  string
	Released string
	Entries  map[string]KEVEntry
}

type kevFile struct {
	CatalogVersion  *string           `json:"catalogVersion"`
	DateReleased    string            `json:"dateReleased"`
	Count           *int              `json:"count"`
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

type kevVuln struct {
	CVEID      string `json:"cveID"`
	DateAdded  string `json:"dateAdded"`
	DueDate    string `json:"dueDate"`
	Ransomware string `json:"knownRansomwareCampaignUse"`
}

// ParseKEV reads CISA's KEV catalogue in its published JSON form. It
// checks the required fields (catalogVersion, count, vulnerabilities),
// that count matches the entries (a truncated download fails), and each
// entry's CVE ID and dates. An entry listed twice keeps its earliest date.
func ParseKEV(r io.Reader) (*KEVCatalog, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKEVBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: KEV: read: %v", ErrFeed, err)
	}
	if len(data) > MaxKEVBytes {
		return nil, fmt.Errorf("%w: KEV: over %d bytes", ErrFeed, MaxKEVBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var f kevFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: KEV: not the catalogue's JSON: %v", ErrFeed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: KEV: data after the JSON object", ErrFeed)
	}
	switch {
	case f.CatalogVersion == nil || strings.TrimSpace(*f.CatalogVersion) == "":
		return nil, fmt.Errorf("%w: KEV: no catalogVersion", ErrFeed)
	case f.Count == nil:
		return nil, fmt.Errorf("%w: KEV: no count", ErrFeed)
	case f.Vulnerabilities == nil:
		return nil, fmt.Errorf("%w: KEV: no vulnerabilities list", ErrFeed)
	case *f.Count != len(f.Vulnerabilities):
		return nil, fmt.Errorf("%w: KEV: count says %d entries, the list has %d (truncated?)", ErrFeed, *f.Count, len(f.Vulnerabilities))
	case len(f.Vulnerabilities) > maxKEVEntries:
		return nil, fmt.Errorf("%w: KEV: more than %d entries", ErrFeed, maxKEVEntries)
	case len(f.Vulnerabilities) == 0:
		return nil, fmt.Errorf("%w: KEV: the catalogue is empty", ErrFeed)
	}
	c := &KEVCatalog{Version: truncate(*f.CatalogVersion, 64), Released: truncate(f.DateReleased, 64),
		Entries: make(map[string]KEVEntry, len(f.Vulnerabilities))}
	for i, raw := range f.Vulnerabilities {
		var v kevVuln
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%w: KEV: vulnerabilities[%d]: %v", ErrFeed, i, err)
		}
		if !IsCVE(v.CVEID) {
			return nil, fmt.Errorf("%w: KEV: vulnerabilities[%d]: cveID %q is not a CVE ID", ErrFeed, i, truncate(v.CVEID, 40))
		}
		if !isDate(v.DateAdded) {
			return nil, fmt.Errorf("%w: KEV: %s: dateAdded %q is not YYYY-MM-DD", ErrFeed, v.CVEID, truncate(v.DateAdded, 40))
		}
		if v.DueDate != "" && !isDate(v.DueDate) {
			return nil, fmt.Errorf("%w: KEV: %s: dueDate %q is not YYYY-MM-DD", ErrFeed, v.CVEID, truncate(v.DueDate, 40))
		}
		e := KEVEntry{DateAdded: v.DateAdded, DueDate: v.DueDate, Ransomware: strings.EqualFold(strings.TrimSpace(v.Ransomware), "Known")}
		if old, ok := c.Entries[v.CVEID]; ok && old.DateAdded <= e.DateAdded {
			continue
		}
		c.Entries[v.CVEID] = e
	}
	return c, nil
}

func isDate(s string) bool {
	if len(s) != 10 {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// EPSSScore is one CVE's EPSS probability and percentile, both in [0, 1].
type EPSSScore struct {
	Score      float64 `json:"score"`
	Percentile float64 `json:"percentile"`
}

// EPSSRow is one row of an EPSS file.
type EPSSRow struct {
	CVE string
	EPSSScore
}

// EPSSFile is a parsed EPSS CSV.
type EPSSFile struct {
	// Model is the model version ("v2025.03.14") and Date the score date
	// (YYYY-MM-DD) from the file's leading comment; empty when the file
	// has none (files before 2022 had none).
	Model string
	Date  string
	Rows  []EPSSRow
}

// ParseEPSS reads FIRST's EPSS CSV as published: gzip-compressed or not
// (by its magic), an optional "#model_version:…,score_date:…" line, the
// header "cve,epss,percentile", then one row per CVE. Every row must have
// a CVE ID and two numbers in [0, 1]; a CVE listed twice, an empty file or
// anything over the caps is an error (a half-written download must not
// become the scores).
func ParseEPSS(r io.Reader) (*EPSSFile, error) { return parseEPSS(r, MaxEPSSBytes) }

func parseEPSS(r io.Reader, maxBytes int64) (*EPSSFile, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: EPSS: gzip: %v", ErrFeed, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	lim := &countingReader{r: br, max: maxBytes}
	sc := bufio.NewScanner(lim)
	sc.Buffer(make([]byte, 0, 512), maxEPSSLine)
	f := &EPSSFile{}
	line := 0
	header := false
	seen := map[string]struct{}{}
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 && strings.HasPrefix(text, "#") {
			f.Model, f.Date = parseEPSSComment(text)
			continue
		}
		if !header {
			if h := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(text)), " ", ""); h != "cve,epss,percentile" {
				return nil, fmt.Errorf("%w: EPSS: line %d: header %q, want \"cve,epss,percentile\"", ErrFeed, line, truncate(text, 60))
			}
			header = true
			continue
		}
		if text == "" {
			continue
		}
		if len(f.Rows) >= maxEPSSRows {
			return nil, fmt.Errorf("%w: EPSS: more than %d rows", ErrFeed, maxEPSSRows)
		}
		cve, rest, ok1 := strings.Cut(text, ",")
		es, ps, ok2 := strings.Cut(rest, ",")
		if !ok1 || !ok2 || strings.Contains(ps, ",") {
			return nil, fmt.Errorf("%w: EPSS: line %d: want cve,epss,percentile, got %q", ErrFeed, line, truncate(text, 60))
		}
		if !IsCVE(cve) {
			return nil, fmt.Errorf("%w: EPSS: line %d: %q is not a CVE ID", ErrFeed, line, truncate(cve, 40))
		}
		score, err1 := parseProbability(es)
		pct, err2 := parseProbability(ps)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%w: EPSS: line %d (%s): %v", ErrFeed, line, cve, err)
		}
		if _, dup := seen[cve]; dup {
			return nil, fmt.Errorf("%w: EPSS: line %d: %s listed twice", ErrFeed, line, cve)
		}
		seen[cve] = struct{}{}
		f.Rows = append(f.Rows, EPSSRow{CVE: cve, EPSSScore: EPSSScore{Score: score, Percentile: pct}})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: EPSS: line %d is over %d bytes", ErrFeed, line+1, maxEPSSLine)
		}
		if errors.Is(err, errTooBig) {
			return nil, fmt.Errorf("%w: EPSS: over %d bytes decompressed", ErrFeed, maxBytes)
		}
		return nil, fmt.Errorf("%w: EPSS: read: %v", ErrFeed, err)
	}
	if !header {
		return nil, fmt.Errorf("%w: EPSS: no \"cve,epss,percentile\" header", ErrFeed)
	}
	if len(f.Rows) == 0 {
		return nil, fmt.Errorf("%w: EPSS: no scores", ErrFeed)
	}
	return f, nil
}

// parseEPSSComment reads "#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z".
func parseEPSSComment(s string) (model, date string) {
	for _, part := range strings.Split(strings.TrimPrefix(s, "#"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch strings.TrimSpace(k) {
		case "model_version":
			model = truncate(strings.TrimSpace(v), 64)
		case "score_date":
			if v = strings.TrimSpace(v); len(v) >= 10 && isDate(v[:10]) {
				date = v[:10]
			}
		}
	}
	return model, date
}

func parseProbability(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is not a number in [0, 1]", truncate(s, 20))
	}
	return v, nil
}

var errTooBig = errors.New("too big")

// countingReader fails once more than max bytes were read (a gzip bomb).
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		// Nothing of the read that went over is passed on: a scanner
		// would take its cut last line for a row.
		return 0, errTooBig
	}
	return n, err
}

// epssScale stores scores as integers of 1e-5: FIRST publishes five
// significant decimals, which this keeps exactly.
const epssScale = 100_000

func encodeEPSS(s EPSSScore) []byte {
	b := make([]byte, 8)
	putU32(b[0:4], uint32(math.Round(s.Score*epssScale)))
	putU32(b[4:8], uint32(math.Round(s.Percentile*epssScale)))
	return b
}

func decodeEPSS(b []byte) (EPSSScore, bool) {
	if len(b) != 8 {
		return EPSSScore{}, false
	}
	return EPSSScore{Score: float64(getU32(b[0:4])) / epssScale, Percentile: float64(getU32(b[4:8])) / epssScale}, true
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
func getU32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// FeedInfo describes the KEV or EPSS data a database holds.
type FeedInfo struct {
	// Version is KEV's catalogVersion or EPSS's model version.
	Version string `json:"version,omitempty"`
	// Date is KEV's dateReleased or EPSS's score date.
	Date    string `json:"date,omitempty"`
	Entries int    `json:"entries"`
	Source  Source `json:"source"`
}

// feeds are the KEV and EPSS inputs of one build: parsed before anything
// is written.
type feeds struct {
	kev     *KEVCatalog
	kevSrc  Source
	epss    *EPSSFile
	epssSrc Source
}

func loadFeeds(kevPath string, kevSrc Source, epssPath string, epssSrc Source) (*feeds, error) {
	fd := &feeds{kevSrc: kevSrc, epssSrc: epssSrc}
	if kevPath != "" {
		c, err := parseFile(kevPath, ParseKEV)
		if err != nil {
			return nil, err
		}
		fd.kev = c
	}
	if epssPath != "" {
		e, err := parseFile(epssPath, ParseEPSS)
		if err != nil {
			return nil, err
		}
		fd.epss = e
	}
	return fd, nil
}

func parseFile[T any](p string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(p)
	if err != nil {
		return zero, fmt.Errorf("vulndb: open %s: %w", p, err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}
