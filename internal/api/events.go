package api

import (
	"time"

	"mamori/internal/model"
)

// EventBatch is the body of POST /api/v1/events: at most MaxEventBatch
// events in the envelope of docs/events.md.
type EventBatch struct {
	Events []model.Event `json:"events"`
}

// EventIngestResult answers POST /api/v1/events (200 once the batch is
// committed). Every event of the batch is counted once: Accepted (stored
// now), Duplicates (an event with its ID was stored before, or earlier in
// the batch: nothing changed) or Rejected (invalid; the others were still
// stored). Accepted and duplicate events are both safely stored: a
// producer drops them from its spool, and drops rejected ones too (sending
// them again cannot succeed).
type EventIngestResult struct {
	Accepted   int              `json:"accepted"`
	Duplicates int              `json:"duplicates"`
	Rejected   []EventRejection `json:"rejected"`
}

// EventRejection says why one event of a batch was refused.
type EventRejection struct {
	// Index is the event's position in the batch (0-based).
	Index int    `json:"index"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// EventRecord is one stored event: the envelope as the producer sent it
// (with the cluster the server stamped for a cluster-bound identity) and
// what the server recorded on receipt.
type EventRecord struct {
	model.Event
	ReceivedAt time.Time `json:"receivedAt"`
	// ReportedBy names the token that delivered the event.
	ReportedBy string `json:"reportedBy,omitempty"`
}

// EventPage answers GET /api/v1/events: events newest first. NextCursor,
// when not empty, is the cursor parameter of the next (older) page.
type EventPage struct {
	Events     []EventRecord `json:"events"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// Query parameters of GET /api/v1/events (each optional; several combine
// with AND). Scope fields match exactly; severity is a minimum; since and
// until are RFC 3339 times (since inclusive, until exclusive); q is a
// case-insensitive substring of the message, rule, process, file and
// image; cursor continues a listing.
const (
	EventParamSource    = "source"
	EventParamModule    = "module"
	EventParamCluster   = "cluster"
	EventParamNode      = "node"
	EventParamNamespace = "namespace"
	EventParamPod       = "pod"
	EventParamContainer = "container"
	EventParamImage     = "image"
	EventParamRule      = "rule"
	EventParamTechnique = "technique"
	EventParamTactic    = "tactic"
	EventParamSeverity  = "severity"
	EventParamAction    = "action"
	EventParamSince     = "since"
	EventParamUntil     = "until"
	EventParamQuery     = "q"
	EventParamCursor    = "cursor"
	EventParamLimit     = "limit"
)
