package server

import (
	"errors"
	"net/http"
	"strconv"

	"mamori/internal/api"
	"mamori/internal/service/policies"
	"mamori/internal/store"
)

// Policies: apply, read, list, versions, delete, assignment to clusters, and
// the policy of the calling cluster component or agent (service/policies).

func (s *Server) handleApplyPolicy(w http.ResponseWriter, r *http.Request) {
	var req api.PolicyApply
	if !s.decodeUpload(w, r, api.MaxPolicyBytes, "policy", &req) {
		return
	}
	a, err := s.policies.Apply(r.Context(), req.File, []byte(req.Document))
	if err != nil {
		s.fail(w, r, "policy", err)
		return
	}
	code := http.StatusOK
	if a.Created {
		code = http.StatusCreated
	}
	writeJSON(w, code, api.PolicyApplied{Policy: apiPolicy(a.View), Created: a.Created, Changed: a.Changed})
}

func (s *Server) handleListPolicies(w http.ResponseWriter, r *http.Request) {
	vs, err := s.policies.List(r.Context())
	if err != nil {
		s.fail(w, r, "policies", err)
		return
	}
	out := api.PolicyList{Policies: make([]api.PolicySummary, 0, len(vs))}
	for _, v := range vs {
		out.Policies = append(out.Policies, apiPolicySummary(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	v, err := s.policies.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, "policy", err)
		return
	}
	writeJSON(w, http.StatusOK, apiPolicy(v))
}

func (s *Server) handleGetPolicyVersion(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, "invalid version "+strconv.Quote(r.PathValue("version")))
		return
	}
	v, err := s.policies.GetVersion(r.Context(), r.PathValue("name"), n)
	if err != nil {
		s.fail(w, r, "policy version", err)
		return
	}
	writeJSON(w, http.StatusOK, apiPolicy(v))
}

func (s *Server) handleListPolicyVersions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	vs, err := s.policies.Versions(r.Context(), name)
	if err != nil {
		s.fail(w, r, "policy", err)
		return
	}
	out := api.PolicyVersionList{Policy: name, Versions: make([]api.PolicyVersion, 0, len(vs))}
	for _, v := range vs {
		out.Versions = append(out.Versions, api.PolicyVersion{Version: v.Version, Digest: v.Digest, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeletePolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.policies.Delete(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "policy "+strconv.Quote(name)+" is enforced by a cluster: assign the cluster another policy first")
		return
	case err != nil:
		s.fail(w, r, "policy", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAssignClusterPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req api.ClusterPolicyRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.policies.Assign(r.Context(), id, req.Policy)
	if err != nil {
		s.fail(w, r, "cluster or policy", err)
		return
	}
	writeJSON(w, http.StatusOK, apiCluster(c))
}

// handleComponentPolicy answers a cluster component or agent: its cluster's policy.
func (s *Server) handleComponentPolicy(w http.ResponseWriter, r *http.Request) {
	v, err := s.policies.ForComponent(r.Context())
	if err != nil {
		s.fail(w, r, "policy of this cluster", err)
		return
	}
	writeJSON(w, http.StatusOK, api.ComponentPolicy{Name: v.Policy, Version: v.Version, Digest: v.Digest, Document: v.Document})
}

func apiPolicy(v policies.View) api.Policy {
	sum := v.Summary
	out := api.Policy{Name: v.Version.Policy, Description: sum.Description, Version: v.Version.Version, LatestVersion: v.Latest,
		Digest: v.Version.Digest, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, VersionCreatedAt: v.Version.CreatedAt,
		CreatedBy: v.Version.CreatedBy, UnknownImages: sum.UnknownImages, OnScanFailure: sum.OnScanFailure,
		Rules: make([]api.PolicyRule, 0, len(sum.Rules)), Exceptions: make([]api.PolicyException, 0, len(sum.Exceptions)),
		Runtime: make([]api.PolicyRuleset, 0, len(sum.Runtime)), Clusters: v.Clusters, Document: v.Version.Document,
		ParseError: v.ParseError, Warnings: v.Warnings}
	for _, r := range sum.Rules {
		out.Rules = append(out.Rules, api.PolicyRule{Section: r.Section, Name: r.Name, Action: r.Action, Criterion: r.Criterion,
			Description: r.Description, Scope: r.Scope})
	}
	for _, x := range sum.Exceptions {
		out.Exceptions = append(out.Exceptions, api.PolicyException{Name: x.Name, Reason: x.Reason, Expires: x.Expires, Expired: x.Expired, Scope: x.Scope})
	}
	for _, rs := range sum.Runtime {
		out.Runtime = append(out.Runtime, api.PolicyRuleset{Ruleset: rs.Ruleset, Action: rs.Action, Scope: rs.Scope, Rules: rs.Rules})
	}
	return out
}

func apiPolicySummary(v policies.View) api.PolicySummary {
	out := api.PolicySummary{Name: v.Version.Policy, Description: v.Summary.Description, Version: v.Version.Version,
		UpdatedAt: v.UpdatedAt, Rules: len(v.Summary.Rules), Exceptions: len(v.Summary.Exceptions), Clusters: v.Clusters,
		ParseError: v.ParseError}
	for _, x := range v.Summary.Exceptions {
		if x.Expired {
			out.ExpiredExceptions++
		}
	}
	return out
}
