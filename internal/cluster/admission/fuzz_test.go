package admission

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

type allowAll struct{}

func (allowAll) Decide(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true}
}

// FuzzDecode: any body is a review or a clear error, never a panic; the
// handler answers it with 200 or a 4xx.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"object":{"kind":"Pod"}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`))
	f.Add([]byte(`[[[[[[`))
	f.Add([]byte(`{"request":{"uid":"1"}} {}`))
	h := NewHandler(allowAll{}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(bytes.NewReader(b))
		if err == nil && (r.Request == nil || r.Request.UID == "") {
			t.Fatal("a review without a request or uid was accepted")
		}
		req := httptest.NewRequest("POST", Path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code >= 500) {
			t.Fatalf("status %d", w.Code)
		}
		if (w.Code == http.StatusOK) != (err == nil) {
			t.Fatalf("status %d, decode error %v", w.Code, err)
		}
	})
}
