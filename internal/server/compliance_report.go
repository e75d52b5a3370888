package server

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"mamori/internal/api"
	"mamori/internal/compliance"
	"mamori/internal/compliance/posture"
	"mamori/internal/service"
	"mamori/internal/service/assessments"
)

// reportFormat reads ?format= (default json).
func reportFormat(r *http.Request) (string, error) {
	format := strings.TrimSpace(r.URL.Query().Get(api.ComplianceParamFormat))
	if format == "" {
		format = compliance.FormatJSON
	}
	if format != compliance.FormatJSON && format != compliance.FormatHTML && format != compliance.FormatPDF {
		return "", service.Invalid("format %q: want json, html or pdf", truncateParam(format))
	}
	return format, nil
}

// handleComplianceReport serves GET /api/v1/compliance/report: the
// assessment of a standard (?standard=, default nist-800-190) on the
// current evidence, as JSON, HTML or PDF (?format=, default json).
func (s *Server) handleComplianceReport(w http.ResponseWriter, r *http.Request) {
	format, err := reportFormat(r)
	if err != nil {
		s.fail(w, r, "compliance report", err)
		return
	}
	rep, err := s.assessments.Report(r.Context(), strings.TrimSpace(r.URL.Query().Get(api.ComplianceParamStandard)))
	if err != nil {
		s.fail(w, r, "compliance report", err)
		return
	}
	s.writeReport(w, r, rep, format)
}

func (s *Server) writeReport(w http.ResponseWriter, r *http.Request, rep *compliance.Report, format string) {
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

// handleComplianceSnapshot serves a stored snapshot's report.
func (s *Server) handleComplianceSnapshot(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	format, err := reportFormat(r)
	if err != nil {
		s.fail(w, r, "compliance snapshot", err)
		return
	}
	rep, err := s.assessments.SnapshotReport(r.Context(), id)
	if err != nil {
		s.fail(w, r, "compliance snapshot", err)
		return
	}
	s.writeReport(w, r, rep, format)
}

func apiSummary(s compliance.Summary) api.ComplianceSummary {
	return api.ComplianceSummary{Group: s.Group, Pass: s.Pass, Fail: s.Fail, NotApplicable: s.NotApplicable, NotAssessed: s.NotAssessed, Score: s.Score}
}

func apiSnapshot(sn assessments.Snapshot) api.ComplianceSnapshot {
	out := api.ComplianceSnapshot{ID: sn.ID, Standard: sn.Standard, GeneratedAt: sn.GeneratedAt, Cause: sn.Cause,
		Summary: apiSummary(sn.Summary), Groups: make([]api.ComplianceSummary, 0, len(sn.Groups)), Stored: sn.Stored}
	for _, g := range sn.Groups {
		out.Groups = append(out.Groups, apiSummary(g))
	}
	return out
}

// handleComplianceHistory serves a standard's snapshots, newest first.
func (s *Server) handleComplianceHistory(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get(api.ComplianceParamLimit); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit: want a non-negative integer")
			return
		}
		limit = n
	}
	std := strings.TrimSpace(r.URL.Query().Get(api.ComplianceParamStandard))
	snaps, err := s.assessments.History(r.Context(), std, limit)
	if err != nil {
		s.fail(w, r, "compliance history", err)
		return
	}
	std, _ = assessments.CheckStandard(std)
	out := api.ComplianceHistory{Standard: std, Snapshots: make([]api.ComplianceSnapshot, 0, len(snaps))}
	for _, sn := range snaps {
		out.Snapshots = append(out.Snapshots, apiSnapshot(sn))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleComplianceAssess re-assesses every standard now.
func (s *Server) handleComplianceAssess(w http.ResponseWriter, r *http.Request) {
	if _, err := s.assessments.CheckRegistries(r.Context(), true); err != nil {
		s.fail(w, r, "compliance assessment", err)
		return
	}
	snaps, err := s.assessments.Reassess(r.Context(), "requested")
	if err != nil {
		s.fail(w, r, "compliance assessment", err)
		return
	}
	out := api.ComplianceAssessed{Snapshots: make([]api.ComplianceSnapshot, 0, len(snaps))}
	for _, sn := range snaps {
		out.Snapshots = append(out.Snapshots, apiSnapshot(sn))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAgentPosture takes a node agent's posture.
func (s *Server) handleAgentPosture(w http.ResponseWriter, r *http.Request) {
	var n posture.Node
	if !s.decodeUpload(w, r, api.MaxNodePostureBytes, "node posture", &n) {
		return
	}
	o, err := s.assessments.RecordNodePosture(r.Context(), &n)
	if err != nil {
		s.fail(w, r, "node posture", err)
		return
	}
	writeJSON(w, http.StatusOK, api.PostureResult{Matched: o.Matched, HostPackages: o.HostPackages, HostVulnerabilities: o.HostVulnerabilities})
}

// handleClusterPosture takes a cluster component's posture.
func (s *Server) handleClusterPosture(w http.ResponseWriter, r *http.Request) {
	var c posture.Cluster
	if !s.decodeUpload(w, r, api.MaxClusterPostureBytes, "cluster posture", &c) {
		return
	}
	if err := s.assessments.RecordClusterPosture(r.Context(), &c); err != nil {
		s.fail(w, r, "cluster posture", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func truncateParam(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
