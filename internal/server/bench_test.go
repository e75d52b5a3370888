package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkIngest measures POST /api/v1/scans end to end (auth, decode,
// validation, one SQLite transaction) for a result of 1,500 packages.
func BenchmarkIngest(b *testing.B) {
	e := newEnv(b, "")
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = mustJSON(b, bigResult(i, 1500))
	}
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/api/v1/scans", bytes.NewReader(bodies[i]))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkAuthenticatedRead measures an authenticated API read (token
// hash lookup, role check, a small store query): the per-request overhead.
func BenchmarkAuthenticatedRead(b *testing.B) {
	e := newEnv(b, "")
	for i := 0; i < 20; i++ {
		if _, err := e.srv.Store().IngestScan(b.Context(), testResult(fmt.Sprintf("b-%d", i), digestN(i), time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "/api/v1/images?limit=20", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
