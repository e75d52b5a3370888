package server

import (
	"bytes"
	"net/http"
	"strings"

	"mamori/internal/compliance"
	"mamori/internal/service"
)

// handleComplianceReport serves GET /api/v1/compliance/report: the
// assessment of a standard (?standard=, default nist-800-190) as JSON,
// HTML or PDF (?format=, default json).
func (s *Server) handleComplianceReport(w http.ResponseWriter, r *http.Request) {
	format := strings.TrimSpace(r.URL.Query().Get("format"))
	if format == "" {
		format = compliance.FormatJSON
	}
	if format != compliance.FormatJSON && format != compliance.FormatHTML && format != compliance.FormatPDF {
		s.fail(w, r, "compliance report", service.Invalid("format %q: want json, html or pdf", truncateParam(format)))
		return
	}
	rep, err := s.assessments.Report(r.Context(), strings.TrimSpace(r.URL.Query().Get("standard")))
	if err != nil {
		s.fail(w, r, "compliance report", err)
		return
	}
	var b bytes.Buffer
	if err := compliance.Render(&b, rep, format, ""); err != nil {
		s.fail(w, r, "compliance report", err)
		return
	}
	w.Header().Set("Content-Type", compliance.ContentType(format))
	if format == compliance.FormatPDF {
		w.Header().Set("Content-Disposition", `attachment; filename="`+rep.Standard+`.pdf"`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

func truncateParam(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
