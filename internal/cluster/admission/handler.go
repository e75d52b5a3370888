// Package admission serves Kubernetes' validating admission webhook
// protocol (admission.k8s.io/v1 AdmissionReview over HTTPS): it decodes
// each review under size and time limits, asks a Decider, and answers.
// What is decided, and how, is the cluster component's (package cluster).
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Path is where the webhook is served.
const Path = "/validate"

// Limits, each with its reason.
const (
	// MaxReviewBytes caps a review's body. The API server refuses objects
	// over 3 MiB; an UPDATE carries the object and the old one, with room
	// for the envelope. Larger bodies are refused with 413 before decoding.
	MaxReviewBytes = 16 << 20
	// DefaultTimeout is the deadline when the API server sends none: its
	// own default webhook timeout.
	DefaultTimeout = 10 * time.Second
	// timeoutMargin is kept back from the API server's deadline so that
	// the answer arrives before it gives up on the call.
	timeoutMargin = 500 * time.Millisecond
	// minBudget is the least a decision gets, whatever the deadline says.
	minBudget = 100 * time.Millisecond
)

// Decider decides one admission request. The context carries the
// deadline the API server gives the webhook (less a margin).
type Decider interface {
	Decide(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse
}

// Handler is the webhook's HTTP handler.
type Handler struct {
	d   Decider
	log *slog.Logger
}

// NewHandler returns the handler over d.
func NewHandler(d Decider, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{d: d, log: log}
}

// Budget is how long a decision may take: the API server's timeout query
// parameter (it sends ?timeout=10s) less a margin, DefaultTimeout when absent.
func Budget(r *http.Request) time.Duration {
	d := DefaultTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		if t, err := time.ParseDuration(v); err == nil && t > 0 && t <= 30*time.Second {
			d = t
		}
	}
	return max(d-timeoutMargin, minBudget)
}

// ServeHTTP answers one AdmissionReview. A body that is not a v1
// AdmissionReview with a request is answered 400 (the API server then
// applies the webhook's failure policy); a body over MaxReviewBytes 413.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, fmt.Sprintf("content type %q: want application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	review, err := Decode(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		code := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		h.log.Warn("admission review refused", "err", err, "status", code)
		http.Error(w, err.Error(), code)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), Budget(r))
	defer cancel()
	t0 := time.Now()
	resp := h.d.Decide(ctx, review.Request)
	took := time.Since(t0)
	if resp == nil {
		resp = &admissionv1.AdmissionResponse{Allowed: true}
	}
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	// The decision's own time (W3C Server-Timing, milliseconds): what the
	// webhook spent, apart from the network and the caller's queueing.
	w.Header().Set("Server-Timing", fmt.Sprintf("decide;dur=%.3f", float64(took.Microseconds())/1000))
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		h.log.Debug("admission answer not sent", "err", err)
	}
}

// Decode reads an admission.k8s.io/v1 AdmissionReview with a request.
func Decode(r io.Reader) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	dec := json.NewDecoder(r)
	if err := dec.Decode(&review); err != nil {
		return nil, fmt.Errorf("admission: decode review: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("admission: trailing data after the review")
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("admission: %s %s: want admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("admission: the review has no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("admission: the request has no uid")
	}
	return &review, nil
}
