package server

import (
	"net/http"

	"mamori/internal/api"
	"mamori/internal/auth"
)

// Route is one API route: the method and net/http pattern it is served at,
// the action it needs (auth.Allowed decides who may), and its handler.
type Route struct {
	Method  string
	Pattern string
	Action  auth.Action
	// MaxBody caps the request body; 0 means MaxRequestBytes.
	MaxBody int64
	handler http.HandlerFunc
}

// routes is the API: the one list the mux, the OpenAPI document test and
// the routes × roles test are built from.
func (s *Server) routes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/healthz", Action: auth.ActionPublic, handler: s.handleHealth},

		{Method: "GET", Pattern: "/api/v1/whoami", Action: auth.ActionRead, handler: s.handleWhoami},
		{Method: "GET", Pattern: "/api/v1/db", Action: auth.ActionRead, handler: s.handleDB},

		{Method: "GET", Pattern: "/api/v1/images", Action: auth.ActionRead, handler: s.handleListImages},
		{Method: "GET", Pattern: "/api/v1/images/{id}", Action: auth.ActionRead, handler: s.handleGetImage},
		{Method: "DELETE", Pattern: "/api/v1/images/{id}", Action: auth.ActionAdmin, handler: s.handleDeleteImage},
		{Method: "GET", Pattern: "/api/v1/images/{id}/vulnerabilities", Action: auth.ActionRead, handler: s.handleImageVulnerabilities},
		{Method: "GET", Pattern: "/api/v1/images/{id}/findings", Action: auth.ActionRead, handler: s.handleImageFindings},

		{Method: "GET", Pattern: "/api/v1/vulnerabilities", Action: auth.ActionRead, handler: s.handleListVulnerabilities},
		{Method: "GET", Pattern: "/api/v1/vulnerabilities/{id}", Action: auth.ActionRead, handler: s.handleGetVulnerability},

		{Method: "GET", Pattern: "/api/v1/scans", Action: auth.ActionRead, handler: s.handleListScans},
		{Method: "POST", Pattern: "/api/v1/scans", Action: auth.ActionIngest, MaxBody: s.cfg.maxScanBytes, handler: s.handleIngest},

		{Method: "GET", Pattern: "/api/v1/registries", Action: auth.ActionRead, handler: s.handleListRegistries},
		{Method: "POST", Pattern: "/api/v1/registries", Action: auth.ActionAdmin, handler: s.handleCreateRegistry},
		{Method: "GET", Pattern: "/api/v1/registries/{id}", Action: auth.ActionRead, handler: s.handleGetRegistry},
		{Method: "PUT", Pattern: "/api/v1/registries/{id}", Action: auth.ActionAdmin, handler: s.handleUpdateRegistry},
		{Method: "DELETE", Pattern: "/api/v1/registries/{id}", Action: auth.ActionAdmin, handler: s.handleDeleteRegistry},
		{Method: "POST", Pattern: "/api/v1/registries/{id}/sync", Action: auth.ActionAdmin, handler: s.handleSyncRegistry},

		{Method: "POST", Pattern: "/api/v1/rematch", Action: auth.ActionAdmin, handler: s.handleRematch},

		{Method: "GET", Pattern: "/api/v1/tokens", Action: auth.ActionAdmin, handler: s.handleListTokens},
		{Method: "POST", Pattern: "/api/v1/tokens", Action: auth.ActionAdmin, handler: s.handleCreateToken},
		{Method: "DELETE", Pattern: "/api/v1/tokens/{id}", Action: auth.ActionAdmin, handler: s.handleRevokeToken},

		{Method: "POST", Pattern: api.PathEvents, Action: auth.ActionComponent, MaxBody: api.MaxEventBytes, handler: s.handleIngestEvents},
		{Method: "GET", Pattern: api.PathEvents, Action: auth.ActionRead, handler: s.handleListEvents},
		{Method: "GET", Pattern: api.PathEventsAttack, Action: auth.ActionRead, handler: s.handleEventsAttack},
		{Method: "GET", Pattern: api.PathRuntimeRules, Action: auth.ActionRead, handler: s.handleRuntimeRules},
		{Method: "GET", Pattern: api.PathRuntimeRulesets, Action: auth.ActionRead, handler: s.handleRuntimeRulesets},
		{Method: "POST", Pattern: api.PathMatch, Action: auth.ActionComponent, MaxBody: api.MaxInventoryBytes, handler: s.handleMatch},

		{Method: "GET", Pattern: api.PathClusters, Action: auth.ActionRead, handler: s.handleListClusters},
		{Method: "POST", Pattern: api.PathClusters, Action: auth.ActionAdmin, handler: s.handleCreateCluster},
		{Method: "DELETE", Pattern: api.PathCluster, Action: auth.ActionAdmin, handler: s.handleDeleteCluster},
		{Method: "POST", Pattern: api.PathClusterRegister, Action: auth.ActionCluster, handler: s.clusterContact(true)},
		{Method: "POST", Pattern: api.PathClusterHeartbeat, Action: auth.ActionCluster, handler: s.clusterContact(false)},
		{Method: "GET", Pattern: api.PathClusterConfig, Action: auth.ActionCluster, handler: s.handleComponentConfig},

		{Method: "PUT", Pattern: api.PathClusterPolicyAssign, Action: auth.ActionAdmin, handler: s.handleAssignClusterPolicy},
		{Method: "GET", Pattern: api.PathClusterPolicy, Action: auth.ActionCluster, handler: s.handleComponentPolicy},

		{Method: "POST", Pattern: api.PathClusterImageLookup, Action: auth.ActionCluster, handler: s.handleImageLookup},
		{Method: "POST", Pattern: api.PathClusterScans, Action: auth.ActionCluster, MaxBody: s.cfg.maxScanBytes, handler: s.handleClusterScan},
		{Method: "POST", Pattern: api.PathClusterInventory, Action: auth.ActionCluster, MaxBody: api.MaxInventoryBatchBytes, handler: s.handleInventory},
		{Method: "GET", Pattern: api.PathClusterObjects, Action: auth.ActionRead, handler: s.handleClusterObjects},
		{Method: "GET", Pattern: api.PathClusterMitigations, Action: auth.ActionCluster, handler: s.handlePendingMitigations},
		{Method: "POST", Pattern: api.PathClusterMitigation, Action: auth.ActionCluster, handler: s.handleCompleteMitigation},
		{Method: "POST", Pattern: api.PathAgentMitigations, Action: auth.ActionAgent, handler: s.handleRequestMitigation},
		{Method: "POST", Pattern: api.PathAgentLoads, Action: auth.ActionAgent, MaxBody: api.MaxLoadReportBytes, handler: s.handleAgentLoads},
		{Method: "PUT", Pattern: api.PathAgentContainers, Action: auth.ActionAgent, MaxBody: api.MaxNodeContainersBytes, handler: s.handleAgentContainers},
		{Method: "GET", Pattern: api.PathMitigations, Action: auth.ActionRead, handler: s.handleListMitigations},

		{Method: "GET", Pattern: api.PathAgents, Action: auth.ActionRead, handler: s.handleListAgents},
		{Method: "DELETE", Pattern: api.PathAgent, Action: auth.ActionAdmin, handler: s.handleDeleteAgent},
		{Method: "POST", Pattern: api.PathAgentRegister, Action: auth.ActionAgent, handler: s.agentContact(true)},
		{Method: "POST", Pattern: api.PathAgentHeartbeat, Action: auth.ActionAgent, handler: s.agentContact(false)},
		{Method: "GET", Pattern: api.PathAgentConfig, Action: auth.ActionAgent, handler: s.handleComponentConfig},
		{Method: "GET", Pattern: api.PathAgentPolicy, Action: auth.ActionAgent, handler: s.handleComponentPolicy},

		{Method: "GET", Pattern: api.PathHostGroups, Action: auth.ActionRead, handler: s.handleListHostGroups},
		{Method: "POST", Pattern: api.PathHostGroups, Action: auth.ActionAdmin, handler: s.handleCreateHostGroup},
		{Method: "GET", Pattern: api.PathHostGroup, Action: auth.ActionRead, handler: s.handleGetHostGroup},
		{Method: "PUT", Pattern: api.PathHostGroup, Action: auth.ActionAdmin, handler: s.handleUpdateHostGroup},
		{Method: "DELETE", Pattern: api.PathHostGroup, Action: auth.ActionAdmin, handler: s.handleDeleteHostGroup},
		{Method: "GET", Pattern: api.PathHostGroupAllowList, Action: auth.ActionRead, handler: s.handleGetAllowList},
		{Method: "PUT", Pattern: api.PathHostGroupAllowList, Action: auth.ActionAdmin, MaxBody: api.MaxAllowListBytes, handler: s.handleReplaceAllowList},
		{Method: "POST", Pattern: api.PathHostGroupAllowList, Action: auth.ActionAdmin, MaxBody: api.MaxAllowListBytes, handler: s.handleAddAllowEntries},
		{Method: "DELETE", Pattern: api.PathHostGroupAllowHash, Action: auth.ActionAdmin, handler: s.handleRemoveAllowEntry},
		{Method: "PUT", Pattern: api.PathAgentHostGroup, Action: auth.ActionAdmin, handler: s.handlePlaceAgent},
		{Method: "GET", Pattern: api.PathAgentRequests, Action: auth.ActionRead, handler: s.handleListHostRequests},
		{Method: "POST", Pattern: api.PathAgentRequests, Action: auth.ActionAdmin, handler: s.handleCreateHostRequest},
		{Method: "GET", Pattern: api.PathQuarantine, Action: auth.ActionRead, handler: s.handleListQuarantine},
		{Method: "GET", Pattern: api.PathBaselines, Action: auth.ActionRead, handler: s.handleListBaselines},
		{Method: "GET", Pattern: api.PathAgentHost, Action: auth.ActionAgent, handler: s.handleAgentHost},
		{Method: "GET", Pattern: api.PathAgentHostAllowList, Action: auth.ActionAgent, handler: s.handleAgentAllowList},
		{Method: "POST", Pattern: api.PathAgentHostAllowList, Action: auth.ActionAgent, MaxBody: api.MaxAllowListBytes, handler: s.handleAgentLearned},
		{Method: "PUT", Pattern: api.PathAgentHostQuarantine, Action: auth.ActionAgent, MaxBody: MaxRequestBytes * 8, handler: s.handleAgentQuarantine},
		{Method: "PUT", Pattern: api.PathAgentHostBaseline, Action: auth.ActionAgent, handler: s.handleAgentBaseline},
		{Method: "POST", Pattern: api.PathAgentHostRequest, Action: auth.ActionAgent, handler: s.handleAgentRequestResult},

		{Method: "GET", Pattern: api.PathPolicies, Action: auth.ActionRead, handler: s.handleListPolicies},
		{Method: "POST", Pattern: api.PathPolicies, Action: auth.ActionAdmin, MaxBody: api.MaxPolicyBytes, handler: s.handleApplyPolicy},
		{Method: "GET", Pattern: api.PathPolicy, Action: auth.ActionRead, handler: s.handleGetPolicy},
		{Method: "DELETE", Pattern: api.PathPolicy, Action: auth.ActionAdmin, handler: s.handleDeletePolicy},
		{Method: "GET", Pattern: api.PathPolicyVersions, Action: auth.ActionRead, handler: s.handleListPolicyVersions},
		{Method: "GET", Pattern: api.PathPolicyVersion, Action: auth.ActionRead, handler: s.handleGetPolicyVersion},

		{Method: "GET", Pattern: api.PathComplianceReport, Action: auth.ActionRead, handler: s.handleComplianceReport},
		{Method: "GET", Pattern: api.PathComplianceHistory, Action: auth.ActionRead, handler: s.handleComplianceHistory},
		{Method: "GET", Pattern: api.PathComplianceSnapshot, Action: auth.ActionRead, handler: s.handleComplianceSnapshot},
		{Method: "POST", Pattern: api.PathComplianceAssess, Action: auth.ActionIngest, handler: s.handleComplianceAssess},
		{Method: "POST", Pattern: api.PathAgentPosture, Action: auth.ActionAgent, MaxBody: api.MaxNodePostureBytes, handler: s.handleAgentPosture},
		{Method: "POST", Pattern: api.PathClusterPosture, Action: auth.ActionCluster, MaxBody: api.MaxClusterPostureBytes, handler: s.handleClusterPosture},
	}
}

// Routes lists the API routes (without handlers), for documentation and tests.
func (s *Server) Routes() []Route {
	rs := s.routes()
	for i := range rs {
		rs[i].handler = nil
	}
	return rs
}

// buildHandler assembles the whole HTTP handler: security headers, a
// global body cap and panic recovery around two parts: the API (auth
// middleware with its CSRF checks, then each route behind its action check
// and body cap) and the console at "/", which wraps itself in the same
// Authenticator's middleware.
func (s *Server) buildHandler() http.Handler {
	api := http.NewServeMux()
	for _, rt := range s.routes() {
		max := rt.MaxBody
		if max == 0 {
			max = MaxRequestBytes
		}
		api.Handle(rt.Method+" "+rt.Pattern, auth.RequireAction(rt.Action)(limitBody(max, rt.handler)))
	}
	// Any other path under /api/ is a JSON 404, never the console.
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
	})
	apiH := s.auth.Middleware(api)

	top := http.NewServeMux()
	top.Handle("/api/", apiH)
	top.Handle("/healthz", apiH)
	if s.console != nil {
		top.Handle("/", limitBody(MaxRequestBytes, s.console))
	} else {
		// The console seam: Config.Console / ConsoleFactory (internal/console).
		top.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not found (this server runs without the console)")
		})
	}
	var h http.Handler = top
	h = recoverer(s.log, h)
	h = limitBody(s.cfg.maxScanBytes, h)
	return securityHeaders(s.tls, h)
}
