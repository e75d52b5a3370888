package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzIngest sends arbitrary bodies to POST /api/v1/scans: the answer is
// always a deliberate one (stored, duplicate, or a 4xx), never a 5xx or a
// crash.
func FuzzIngest(f *testing.F) {
	f.Add(mustJSON(f, testResult("fz-1", digestN(1), time.Now())), false)
	f.Add([]byte(`{"schemaVersion":1,"scanID":"x","createdAt":"2024-01-01T00:00:00Z","target":{"name":"a","type":"fs"}}`), false)
	f.Add([]byte(`{"schemaVersion":1,"inventory":{"packages":[{"name":""}]}}`), false)
	f.Add([]byte("\x1f\x8b\x08\x00garbage"), true)
	f.Add([]byte(`[]`), false)
	e := newEnv(f, "")
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		req := httptest.NewRequest("POST", "/api/v1/scans", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, req)
		switch w.Code {
		case http.StatusCreated, http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
