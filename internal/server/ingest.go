package server

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"mamori/internal/model"
	"mamori/internal/store"
)

// Validation limits of an uploaded result, each with its reason.
const (
	// maxScanIDLen: scanner IDs are 32 hex characters; other producers may
	// use UUIDs; 128 leaves room without letting an ID be a payload.
	maxScanIDLen = 128
	// maxTargetNameLen: image references are at most a few hundred characters.
	maxTargetNameLen = 4096
	// maxFutureSkew: a result "created" further in the future than this is
	// refused, so that a skewed clock cannot pin an image's latest scan.
	maxFutureSkew = 24 * time.Hour
)

var (
	scanIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ErrInvalidScan: an uploaded result that is not a valid scan result.
var ErrInvalidScan = errors.New("invalid scan result")

// ingestResponse answers POST /api/v1/scans.
type ingestResponse struct {
	store.IngestOutcome
	// Duplicate is true when this (target, scanID) was already stored.
	Duplicate bool `json:"duplicate"`
}

// handleIngest stores one uploaded scan result (model.Result JSON, optionally
// gzip-encoded). The body is decoded as a stream under MaxScanBytes
// (compressed and decompressed), validated, then stored in one
// transaction; the answer (201 created/stale, 200 duplicate) is sent only
// after the commit. Nothing is stored for a refused payload.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", ct))
		return
	}
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.ingestDecodeError(w, err)
			return
		}
		defer zr.Close()
		body = &capReader{r: zr, left: s.cfg.maxScanBytes}
	default:
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q: want gzip or none", enc))
		return
	}
	var res model.Result
	dec := json.NewDecoder(body)
	if err := dec.Decode(&res); err != nil {
		s.ingestDecodeError(w, err)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("trailing data after the result")
		}
		s.ingestDecodeError(w, err)
		return
	}
	if err := validateResult(&res, time.Now()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := s.st.IngestScan(r.Context(), &res)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%v: %v", ErrInvalidScan, err))
			return
		}
		s.storeError(w, r, "scan", err)
		return
	}
	code := http.StatusCreated
	if out.Status == store.IngestDuplicate {
		code = http.StatusOK
	}
	s.log.Info("scan ingested", "target", res.Target.Name, "scanID", res.ScanID, "status", out.Status, "imageID", out.ImageID, "packages", out.Packages, "vulnerabilities", out.Vulnerabilities)
	writeJSON(w, code, ingestResponse{IngestOutcome: out, Duplicate: out.Status == store.IngestDuplicate})
}

// ingestDecodeError answers a body that could not be decoded: 413 over the
// cap, 400 otherwise.
func (s *Server) ingestDecodeError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("scan result over the %d-byte cap", s.cfg.maxScanBytes))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("%v: invalid JSON: %v", ErrInvalidScan, err))
}

// validateResult checks what the store cannot: the schema version and the
// shape of the identifying fields.
func validateResult(res *model.Result, now time.Time) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidScan, fmt.Sprintf(format, a...))
	}
	switch {
	case res.SchemaVersion != model.SchemaVersion:
		return bad("schemaVersion %d is not supported (this server reads %d)", res.SchemaVersion, model.SchemaVersion)
	case res.ScanID == "" || len(res.ScanID) > maxScanIDLen || !scanIDRE.MatchString(res.ScanID):
		return bad("scanID must be 1 to %d characters of letters, digits, '.', '_', ':' and '-'", maxScanIDLen)
	case res.CreatedAt.IsZero():
		return bad("createdAt is missing")
	case res.CreatedAt.After(now.Add(maxFutureSkew)):
		return bad("createdAt %s is in the future", res.CreatedAt.Format(time.RFC3339))
	case strings.TrimSpace(res.Target.Name) == "" || len(res.Target.Name) > maxTargetNameLen:
		return bad("target.name is required (at most %d characters)", maxTargetNameLen)
	}
	switch res.Target.Type {
	case model.TargetImage:
		if !digestRE.MatchString(res.Target.Digest) {
			return bad("target.digest %q: an image needs its manifest digest (sha256:<64 hex>)", res.Target.Digest)
		}
	case model.TargetRootFS, model.TargetFS, model.TargetConfig:
		if res.Target.Digest != "" && !digestRE.MatchString(res.Target.Digest) {
			return bad("target.digest %q is not a sha256 digest", res.Target.Digest)
		}
	default:
		return bad("target.type %q: want image, rootfs, fs or config", res.Target.Type)
	}
	for i, v := range res.Vulnerabilities {
		if v.ID == "" || v.Package.Name == "" {
			return bad("vulnerabilities[%d]: id and package.name are required", i)
		}
	}
	for i, f := range res.Findings {
		if f.ID == "" || f.Kind == "" {
			return bad("findings[%d]: id and kind are required", i)
		}
	}
	for i, p := range res.Inventory.Packages {
		if p.Name == "" {
			return bad("model.packages[%d]: name is required", i)
		}
	}
	return nil
}

var errTooLarge = errors.New("decompressed body over the cap")

// capReader fails once more than left bytes are read (a gzip bomb).
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
