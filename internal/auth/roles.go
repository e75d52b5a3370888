package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Role is a token's role: the authorization vocabulary of mamori server.
// The store keeps it as text; only this package gives it meaning.
type Role string

// Human roles, ordered: admin > operator > viewer.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Machine roles: the identities of components, each allowed only its own
// routes (never reading other data nor administering anything), and bound
// to a cluster by its token.
const (
	// RoleCluster is the cluster component of one Kubernetes cluster.
	RoleCluster Role = "cluster"
	// RoleAgent is a node agent (of a cluster, or of a bare host).
	RoleAgent Role = "agent"
)

// Roles lists every role: the human ones from the least, then the machine ones.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin, RoleCluster, RoleAgent}

// HumanRoles are the roles a person's token has (the console's).
var HumanRoles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.Human() || r.Machine() }

// Human reports whether r is admin, operator or viewer.
func (r Role) Human() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// Machine reports whether r is cluster or agent.
func (r Role) Machine() bool { return r == RoleCluster || r == RoleAgent }

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if !r.Valid() {
		return "", fmt.Errorf("unknown role %q (want admin, operator, viewer, cluster or agent)", truncate(s))
	}
	return r, nil
}

// Action is what a request does, for Allowed.
type Action string

// The actions. Every route of the server names one.
const (
	// ActionPublic needs no authentication at all (/healthz, the login page).
	ActionPublic Action = "public"
	// ActionRead: read images, vulnerabilities, findings, scans, registries
	// (without secrets), events, clusters, agents, the DB info. viewer and above.
	ActionRead Action = "read"
	// ActionIngest: upload scan results. operator and above (CI pipelines).
	ActionIngest Action = "ingest"
	// ActionAdmin: manage registries, tokens, clusters and agents, start
	// syncs and re-matches. admin only.
	ActionAdmin Action = "admin"
	// ActionComponent: what every component does: deliver security events,
	// have an inventory matched. The cluster component and node agents only.
	ActionComponent Action = "component"
	// ActionCluster: a cluster component's own routes (register, heartbeat,
	// configuration). cluster only.
	ActionCluster Action = "cluster"
	// ActionAgent: a node agent's own routes (register, heartbeat,
	// configuration). agent only.
	ActionAgent Action = "agent"
)

// Actions lists every action.
var Actions = []Action{ActionPublic, ActionRead, ActionIngest, ActionAdmin, ActionComponent, ActionCluster, ActionAgent}

// rank orders the human roles; machine and unknown roles rank 0.
func rank(r Role) int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleOperator:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// AllowedRoles lists the roles that may do a (nil for ActionPublic, which
// needs none, and for unknown actions, which nobody may do).
func AllowedRoles(a Action) []Role {
	switch a {
	case ActionRead:
		return []Role{RoleViewer, RoleOperator, RoleAdmin}
	case ActionIngest:
		return []Role{RoleOperator, RoleAdmin}
	case ActionAdmin:
		return []Role{RoleAdmin}
	case ActionComponent:
		return []Role{RoleCluster, RoleAgent}
	case ActionCluster:
		return []Role{RoleCluster}
	case ActionAgent:
		return []Role{RoleAgent}
	}
	return nil
}

// Who names the roles allowed to do a, as docs/openapi.yaml's
// x-mamori-role says it: "public", the least human role ("viewer" means
// viewer and above), or the machine roles ("cluster", "agent", "agent cluster").
func Who(a Action) string {
	if a == ActionPublic {
		return "public"
	}
	rs := AllowedRoles(a)
	if len(rs) == 0 {
		return ""
	}
	if rs[0].Human() {
		return string(rs[0])
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// Allowed reports whether role may do action. ActionPublic is allowed to
// everyone, even without a role; unknown roles and actions are refused.
func Allowed(role Role, a Action) bool {
	if a == ActionPublic {
		return true
	}
	return slices.Contains(AllowedRoles(a), role)
}

// AtLeast reports whether role have is the human role want or above.
// Machine roles are never at least anything.
func AtLeast(have, want Role) bool {
	return rank(have) > 0 && rank(want) > 0 && rank(have) >= rank(want)
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
