package server

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"mamori/internal/model"
	"mamori/internal/store"
)

// ErrInvalidScan: an uploaded result that is not a valid scan result.
var ErrInvalidScan = errors.New("invalid scan result")

// handleIngest stores one uploaded scan result (model.Result JSON, optionally
// gzip-encoded). The body is decoded as a stream under MaxScanBytes
// (compressed and decompressed), validated, then stored in one
// transaction; the answer (201 created/stale, 200 duplicate) is sent only
// after the commit. Nothing is stored for a refused payload.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	var res model.Result
	if !s.decodeUpload(w, r, s.cfg.maxScanBytes, "scan result", &res) {
		return
	}
	out, err := s.images.Ingest(r.Context(), &res)
	if err != nil {
		s.fail(w, r, "scan", err)
		return
	}
	code := http.StatusCreated
	if out.Status == store.IngestDuplicate {
		code = http.StatusOK
	}
	writeJSON(w, code, apiIngestOutcome(out))
}

// decodeUpload decodes an uploaded JSON body (optionally gzip-encoded)
// into dst as a stream under max bytes (compressed and decompressed),
// refusing trailing data. Unknown fields are allowed: a newer producer may
// send fields this server does not know. It answers the request and
// returns false when the body is refused: 415 for another content type or
// encoding, 413 over the cap, 400 for anything else.
func (s *Server) decodeUpload(w http.ResponseWriter, r *http.Request, max int64, what string, dst any) bool {
	return decodeBody(w, r, max, what, dst, false)
}

// decodeBody is decodeUpload (strict false) and decodeStrict (strict true:
// unknown fields refused, and a body without a Content-Type taken as JSON).
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, what string, dst any, strict bool) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && (ct != "" || !strict) {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", ct))
		return false
	}
	fail := func(err error) bool {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s over the %d-byte cap", what, max))
			return false
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s: invalid JSON: %v", what, err))
		return false
	}
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return fail(err)
		}
		defer zr.Close()
		body = &capReader{r: zr, left: max}
	default:
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q: want gzip or none", enc))
		return false
	}
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("trailing data after the %s", what)
		}
		return fail(err)
	}
	return true
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
