package server

import (
	"net/http"

	"mamori/internal/api"
)

// handleAgentLoads takes an agent's report of what its node's containers
// executed or loaded (issue 15 "in use at run time"; service/loads).
func (s *Server) handleAgentLoads(w http.ResponseWriter, r *http.Request) {
	var req api.LoadReport
	if !s.decodeUpload(w, r, api.MaxLoadReportBytes, "load report", &req) {
		return
	}
	out, err := s.loads.Ingest(r.Context(), req)
	if err != nil {
		s.fail(w, r, "load report", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
