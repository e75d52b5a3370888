package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/service/events"
	"mamori/internal/service/identities"
	"mamori/internal/service/images/vulnmatch"
	"mamori/internal/store"
)

// Events and machine identities: the routes of the cluster component and
// the node agents, and the admin and read routes over them.

func (s *Server) handleIngestEvents(w http.ResponseWriter, r *http.Request) {
	var b api.EventBatch
	if !s.decodeUpload(w, r, api.MaxEventBytes, "event batch", &b) {
		return
	}
	res, err := s.events.Ingest(r.Context(), b.Events)
	if err != nil {
		s.fail(w, r, "events", err)
		return
	}
	out := api.EventIngestResult{Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: make([]api.EventRejection, 0, len(res.Rejected))}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, api.EventRejection{Index: rj.Index, ID: rj.ID, Error: rj.Err.Error()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListEvents(w http.ResponseWriter, r *http.Request) {
	f, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, "events", err)
		return
	}
	p, err := s.events.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, apiEventPage(p))
}

func (s *Server) handleListClusters(w http.ResponseWriter, r *http.Request) {
	cs, err := s.identities.ListClusters(r.Context())
	if err != nil {
		s.fail(w, r, "clusters", err)
		return
	}
	out := api.ClusterList{Clusters: make([]api.Cluster, 0, len(cs))}
	for _, c := range cs {
		out.Clusters = append(out.Clusters, apiCluster(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateCluster(w http.ResponseWriter, r *http.Request) {
	var req api.ClusterRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.identities.CreateCluster(r.Context(), req.Name)
	if err != nil {
		s.fail(w, r, "cluster", err)
		return
	}
	writeJSON(w, http.StatusCreated, api.ClusterCreated{Cluster: apiCluster(c.Cluster), TokenID: c.Token.Token.ID, Token: c.Token.Secret})
}

func (s *Server) handleDeleteCluster(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.identities.DeleteCluster(r.Context(), id); err != nil {
		s.fail(w, r, "cluster", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clusterContact(register bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.ClusterReport
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		c, err := s.identities.ClusterContact(r.Context(), register, identities.ClusterReport{Version: req.Version,
			KubernetesVersion: req.KubernetesVersion, Nodes: req.Nodes})
		if err != nil {
			s.fail(w, r, "cluster", err)
			return
		}
		writeJSON(w, http.StatusOK, apiCluster(c))
	}
}

func (s *Server) handleListAgents(w http.ResponseWriter, r *http.Request) {
	as, err := s.identities.ListAgents(r.Context())
	if err != nil {
		s.fail(w, r, "agents", err)
		return
	}
	out := api.AgentList{Agents: make([]api.Agent, 0, len(as))}
	for _, a := range as {
		out.Agents = append(out.Agents, apiAgent(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteAgent(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.identities.DeleteAgent(r.Context(), id); err != nil {
		s.fail(w, r, "agent", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) agentContact(register bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.AgentReport
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		rep := identities.AgentReport{Node: req.Node, Hostname: req.Hostname, Version: req.Version, OS: req.OS, Kernel: req.Kernel, Arch: req.Arch}
		if req.Sensor != nil {
			rep.Sensor = store.AgentSensor{Mode: req.Sensor.Mode, Hooks: req.Sensor.Hooks, Missing: req.Sensor.Missing}
		}
		contact := s.identities.AgentHeartbeat
		if register {
			contact = s.identities.RegisterAgent
		}
		a, err := contact(r.Context(), rep)
		if err != nil {
			s.fail(w, r, "agent", err)
			return
		}
		writeJSON(w, http.StatusOK, apiAgent(a))
	}
}

// HeartbeatInterval is how often components are asked to send a
// heartbeat: a minute makes "last contact" tell a dead component within a
// few minutes, at one small write per component per minute.
const HeartbeatInterval = time.Minute

// handleComponentConfig answers a component's configuration request.
func (s *Server) handleComponentConfig(w http.ResponseWriter, r *http.Request) {
	ret := s.events.Retention()
	out := api.ComponentConfig{HeartbeatInterval: HeartbeatInterval.String(), MaxEventBatch: api.MaxEventBatch, MaxEventBytes: api.MaxEventBytes}
	if ret.MaxAge > 0 {
		out.EventRetention = ret.MaxAge.String()
	}
	switch v, err := s.policies.ForComponent(r.Context()); {
	case err == nil:
		out.Policy, out.PolicyVersion = v.Policy, v.Version
	case !errors.Is(err, store.ErrNotFound):
		s.fail(w, r, "policy of this cluster", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMatch matches an inventory a component took against the server's
// vulnerability database and answers what it finds; nothing is stored.
func (s *Server) handleMatch(w http.ResponseWriter, r *http.Request) {
	var req api.MatchRequest
	if !s.decodeUpload(w, r, api.MaxInventoryBytes, "inventory", &req) {
		return
	}
	if n := len(req.Inventory.Packages); n > api.MaxMatchPackages {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%d packages: at most %d in one request", n, api.MaxMatchPackages))
		return
	}
	if err := req.Inventory.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid inventory: "+err.Error())
		return
	}
	vulns, mal, db, err := s.matcher.MatchInventory(r.Context(), &req.Inventory)
	switch {
	case errors.Is(err, vulnmatch.ErrNoVulnDB):
		writeError(w, http.StatusConflict, "no vulnerability database on the server yet: run `mamori db update` on the server")
		return
	case err != nil:
		s.fail(w, r, "match", err)
		return
	}
	if vulns == nil {
		vulns = []model.Vulnerability{}
	}
	if mal == nil {
		mal = []model.Finding{}
	}
	writeJSON(w, http.StatusOK, api.MatchResult{Vulnerabilities: vulns, Findings: mal, DB: db})
}
