package server

import (
	"fmt"
	"net/http"
	"strconv"

	"mamori/internal/api"
)

// Host protection (issue 12): host groups and their settings, allow-lists,
// the quarantine and baseline views, requests to agents, and the calling
// agent's routes. Every rule is in service/hosts.

// decodeStrict decodes a JSON body, gzip-compressed or not (the typed
// client compresses bodies over 4 KiB), refusing unknown fields (a
// misspelt setting must not be ignored) and trailing data; it answers the
// error itself and returns false.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, max int64, what string, dst any) bool {
	return decodeBody(w, r, max, what, dst, true)
}

func (s *Server) handleListHostGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := s.hosts.ListGroups(r.Context())
	if err != nil {
		s.fail(w, r, "host groups", err)
		return
	}
	writeJSON(w, http.StatusOK, api.HostGroupList{Groups: gs})
}

func (s *Server) handleGetHostGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	g, err := s.hosts.GetGroup(r.Context(), id)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) handleCreateHostGroup(w http.ResponseWriter, r *http.Request) {
	var req api.HostGroupRequest
	if !s.decodeStrict(w, r, MaxRequestBytes, "host group", &req) {
		return
	}
	g, err := s.hosts.CreateGroup(r.Context(), req)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) handleUpdateHostGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req api.HostGroupRequest
	if !s.decodeStrict(w, r, MaxRequestBytes, "host group", &req) {
		return
	}
	g, err := s.hosts.UpdateGroup(r.Context(), id, req)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) handleDeleteHostGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.hosts.DeleteGroup(r.Context(), id); err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGetAllowList(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := s.hosts.AllowList(r.Context(), id)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleReplaceAllowList(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var doc api.AllowListDocument
	if !s.decodeStrict(w, r, api.MaxAllowListBytes, "allow-list", &doc) {
		return
	}
	ch, err := s.hosts.ReplaceAllowList(r.Context(), id, doc)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) handleAddAllowEntries(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var add api.AllowListAdd
	if !s.decodeStrict(w, r, api.MaxAllowListBytes, "allow-list entries", &add) {
		return
	}
	ch, err := s.hosts.AddAllowEntries(r.Context(), id, add.Entries)
	if err != nil {
		s.fail(w, r, "host group", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) handleRemoveAllowEntry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ch, err := s.hosts.RemoveAllowEntry(r.Context(), id, r.PathValue("sha256"))
	if err != nil {
		s.fail(w, r, "allow-list entry", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) handlePlaceAgent(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req api.HostPlacement
	if !s.decodeStrict(w, r, MaxRequestBytes, "placement", &req) {
		return
	}
	g, err := s.hosts.PlaceAgent(r.Context(), id, req.Group)
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) handleCreateHostRequest(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req api.HostRequestCreate
	if !s.decodeStrict(w, r, MaxRequestBytes, "request", &req) {
		return
	}
	hr, err := s.hosts.CreateRequest(r.Context(), id, req)
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusAccepted, hr)
}

func (s *Server) handleListHostRequests(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rs, err := s.hosts.Requests(r.Context(), id)
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusOK, api.HostRequestList{Requests: rs})
}

func (s *Server) handleListQuarantine(w http.ResponseWriter, r *http.Request) {
	var agentID int64
	if v := r.URL.Query().Get(api.HostParamAgent); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid agent %q", v))
			return
		}
		agentID = n
	}
	es, err := s.hosts.Quarantine(r.Context(), agentID)
	if err != nil {
		s.fail(w, r, "quarantine", err)
		return
	}
	writeJSON(w, http.StatusOK, api.QuarantineList{Entries: es})
}

func (s *Server) handleListBaselines(w http.ResponseWriter, r *http.Request) {
	bs, err := s.hosts.Baselines(r.Context())
	if err != nil {
		s.fail(w, r, "baselines", err)
		return
	}
	writeJSON(w, http.StatusOK, api.BaselineList{Baselines: bs})
}

// The calling agent's routes.

func agentNode(r *http.Request) string { return r.URL.Query().Get(api.HostParamNode) }

func (s *Server) handleAgentHost(w http.ResponseWriter, r *http.Request) {
	hc, err := s.hosts.AgentHost(r.Context(), agentNode(r))
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusOK, hc)
}

func (s *Server) handleAgentAllowList(w http.ResponseWriter, r *http.Request) {
	l, err := s.hosts.AgentAllowList(r.Context(), agentNode(r))
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleAgentLearned(w http.ResponseWriter, r *http.Request) {
	var add api.AllowListAdd
	if !s.decodeStrict(w, r, api.MaxAllowListBytes, "allow-list entries", &add) {
		return
	}
	ch, err := s.hosts.AgentLearned(r.Context(), agentNode(r), add.Entries)
	if err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (s *Server) handleAgentQuarantine(w http.ResponseWriter, r *http.Request) {
	var rep api.QuarantineReport
	if !s.decodeStrict(w, r, MaxRequestBytes*8, "quarantine report", &rep) {
		return
	}
	if err := s.hosts.AgentQuarantine(r.Context(), agentNode(r), rep); err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAgentBaseline(w http.ResponseWriter, r *http.Request) {
	var rep api.BaselineReport
	if !s.decodeStrict(w, r, MaxRequestBytes, "baseline report", &rep) {
		return
	}
	if err := s.hosts.AgentBaseline(r.Context(), agentNode(r), rep); err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAgentRequestResult(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var res api.HostRequestResult
	if !s.decodeStrict(w, r, MaxRequestBytes, "request result", &res) {
		return
	}
	hr, err := s.hosts.AgentRequestResult(r.Context(), agentNode(r), id, res)
	if err != nil {
		s.fail(w, r, "request", err)
		return
	}
	writeJSON(w, http.StatusOK, hr)
}
