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

// handleAgentContainers takes the calling agent's node's running containers.
func (s *Server) handleAgentContainers(w http.ResponseWriter, r *http.Request) {
	var req api.NodeContainersReport
	if !s.decodeUpload(w, r, api.MaxNodeContainersBytes, "node containers", &req) {
		return
	}
	out, err := s.nodes.Report(r.Context(), req)
	if err != nil {
		s.fail(w, r, "node containers", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
