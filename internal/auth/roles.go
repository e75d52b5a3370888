package auth

import "mamori/internal/store"

// Action is what a request does, for Allowed.
type Action string

// The actions. Every route of the server names one.
const (
	// ActionPublic needs no authentication at all (/healthz, the login page).
	ActionPublic Action = "public"
	// ActionRead: read images, vulnerabilities, findings, scans, registries
	// (without secrets), the DB info. viewer and above.
	ActionRead Action = "read"
	// ActionIngest: upload scan results. operator and above (CI pipelines).
	ActionIngest Action = "ingest"
	// ActionAdmin: manage registries and tokens, start syncs and re-matches.
	// admin only.
	ActionAdmin Action = "admin"
)

// rank orders the roles; an unknown role ranks 0 (nothing allowed).
func rank(r store.Role) int {
	switch r {
	case store.RoleAdmin:
		return 3
	case store.RoleOperator:
		return 2
	case store.RoleViewer:
		return 1
	}
	return 0
}

// MinRole is the least role allowed to do a; "" for ActionPublic and for
// unknown actions (which Allowed refuses).
func MinRole(a Action) store.Role {
	switch a {
	case ActionRead:
		return store.RoleViewer
	case ActionIngest:
		return store.RoleOperator
	case ActionAdmin:
		return store.RoleAdmin
	}
	return ""
}

// Allowed reports whether role may do action. ActionPublic is allowed to
// everyone, even without a role; unknown roles and actions are refused.
func Allowed(role store.Role, a Action) bool {
	if a == ActionPublic {
		return true
	}
	min := MinRole(a)
	if min == "" {
		return false
	}
	return rank(role) > 0 && rank(role) >= rank(min)
}

// AtLeast reports whether role have is role want or above.
func AtLeast(have, want store.Role) bool {
	return rank(have) > 0 && rank(want) > 0 && rank(have) >= rank(want)
}
