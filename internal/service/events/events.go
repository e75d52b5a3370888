// Package events is the security events service: one envelope
// (model.Event) and one store for every source (admission, compliance,
// runtime, host). Components deliver batches (Ingest: validated, scoped to
// the delivering identity's cluster, stored once per event ID); people list
// them with filters (List, the API's GET /api/v1/events and the console's
// Events page, which share ParseFilter); a retention by age and by count
// keeps the table bounded (Prune, run periodically by the server).
package events

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Retention defaults, each with its reason.
const (
	// DefaultMaxAge: 90 days covers an incident investigation that starts
	// weeks after the fact, and a quarterly review.
	DefaultMaxAge = 90 * 24 * time.Hour
	// DefaultMaxCount: a million events is a few GiB at most on either
	// engine, and keeps the free-text filter's worst case (a scan) in seconds.
	DefaultMaxCount = 1_000_000
	// DefaultPruneInterval: retention is a bound, not a deadline; pruning
	// every ten minutes keeps each run short.
	DefaultPruneInterval = 10 * time.Minute
	// maxQueryLen bounds a free-text filter.
	maxQueryLen = 200
	// maxFilterLen bounds the exact-match filters.
	maxFilterLen = model.MaxEventTextLen
)

// Retention bounds the stored events. Zero fields take the defaults;
// negative ones turn that bound off.
type Retention struct {
	MaxAge   time.Duration
	MaxCount int
}

// Service ingests, lists and prunes events.
type Service struct {
	st  store.EventStore
	ret Retention
	log *slog.Logger
	now func() time.Time
}

// New returns the service over st.
func New(st store.EventStore, ret Retention, log *slog.Logger, now func() time.Time) *Service {
	if ret.MaxAge == 0 {
		ret.MaxAge = DefaultMaxAge
	}
	if ret.MaxCount == 0 {
		ret.MaxCount = DefaultMaxCount
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ret: ret, log: log, now: now}
}

// Retention is the retention in force (negative fields: no bound).
func (s *Service) Retention() Retention { return s.ret }

// Rejection says why one event of a batch was refused.
type Rejection struct {
	Index int
	ID    string
	Err   error
}

// IngestResult counts what Ingest did with each event of a batch.
type IngestResult struct {
	Accepted, Duplicates int
	Rejected             []Rejection
}

// Ingest stores a batch from the calling component. Each event is
// validated (model.Event.Validate), refused when dated more than
// model.MaxClockSkew after the server's clock, and scoped: a cluster or
// agent token bound to a cluster stamps that cluster on events without one
// and refuses events naming another; an unbound agent token (a bare host)
// refuses events naming any cluster. Valid events are stored in one
// transaction, once per event ID: a re-delivered event counts as a
// duplicate. Invalid ones are reported and not stored; the others still are.
func (s *Service) Ingest(ctx context.Context, evs []model.Event) (IngestResult, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || !p.Role.Machine() {
		return IngestResult{}, fmt.Errorf("%w: only cluster and agent tokens deliver events", auth.ErrForbidden)
	}
	if len(evs) > api.MaxEventBatch {
		return IngestResult{}, service.Invalid("%d events in one batch: at most %d", len(evs), api.MaxEventBatch)
	}
	now := s.now().UTC()
	res := IngestResult{Rejected: []Rejection{}}
	recs := make([]store.EventRecord, 0, len(evs))
	for i := range evs {
		e := evs[i]
		err := e.Validate()
		switch {
		case err != nil:
		case e.Time.After(now.Add(model.MaxClockSkew)):
			err = fmt.Errorf("time %s is in the future", e.Time.Format(time.RFC3339))
		case p.Cluster == "" && e.Cluster != "":
			err = fmt.Errorf("cluster %q: this token is not bound to a cluster", truncate(e.Cluster))
		case p.Cluster != "" && e.Cluster != "" && e.Cluster != p.Cluster:
			err = fmt.Errorf("cluster %q: this token belongs to cluster %q", truncate(e.Cluster), p.Cluster)
		}
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{Index: i, ID: truncate(e.ID), Err: err})
			continue
		}
		e.Cluster = p.Cluster
		e.Time = e.Time.UTC()
		recs = append(recs, store.EventRecord{Event: e, ReceivedAt: now, ReportedBy: p.TokenName})
	}
	stored, err := s.st.InsertEvents(ctx, recs)
	if err != nil {
		return IngestResult{}, fmt.Errorf("events: %w", err)
	}
	for _, ok := range stored {
		if ok {
			res.Accepted++
		} else {
			res.Duplicates++
		}
	}
	if len(res.Rejected) > 0 {
		s.log.Warn("events rejected", "rejected", len(res.Rejected), "first", res.Rejected[0].Err, "from", p.TokenName, "tokenID", p.TokenID)
	}
	s.log.Debug("events ingested", "accepted", res.Accepted, "duplicates", res.Duplicates, "from", p.TokenName)
	return res, nil
}

// ServerReporter is the reportedBy of events the server itself produces.
const ServerReporter = "server"

// Record stores events the server itself produces (continuous
// compliance), each validated as Ingest validates a component's, once per
// event ID. Unlike Ingest it takes no caller's scope: the server sets the
// cluster. An invalid event fails the whole call and stores nothing.
func (s *Service) Record(ctx context.Context, evs []model.Event) error {
	now := s.now().UTC()
	recs := make([]store.EventRecord, 0, len(evs))
	for i := range evs {
		e := evs[i]
		if err := e.Validate(); err != nil {
			return fmt.Errorf("events: server event %d: %w", i, err)
		}
		e.Time = e.Time.UTC()
		recs = append(recs, store.EventRecord{Event: e, ReceivedAt: now, ReportedBy: ServerReporter})
	}
	if _, err := s.st.InsertEvents(ctx, recs); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// Filter is a parsed events query: the store's filter and the page size.
type Filter = store.EventFilter

// ParseFilter reads the filters of an events listing from query parameters
// (the api.EventParam* names), for the API and the console alike. Bad
// values are errors wrapping service.ErrInvalid, never dropped.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{api.EventParamModule, &f.Module}, {api.EventParamCluster, &f.Cluster}, {api.EventParamNode, &f.Node},
		{api.EventParamNamespace, &f.Namespace}, {api.EventParamPod, &f.Pod}, {api.EventParamContainer, &f.Container},
		{api.EventParamImage, &f.Image}, {api.EventParamRule, &f.Rule},
	} {
		v := strings.TrimSpace(q.Get(p.name))
		if len(v) > maxFilterLen {
			return f, service.Invalid("%s: at most %d bytes", p.name, maxFilterLen)
		}
		*p.dst = v
	}
	// ATT&CK IDs: the form the rules write (upper case), or a clear error.
	if v := strings.ToUpper(strings.TrimSpace(q.Get(api.EventParamTechnique))); v != "" {
		if !techniqueRE.MatchString(v) {
			return f, service.Invalid("technique %q: want an ATT&CK technique ID (T1059 or T1059.004)", truncate(v))
		}
		f.Technique = v
	}
	if v := strings.ToUpper(strings.TrimSpace(q.Get(api.EventParamTactic))); v != "" {
		if !tacticRE.MatchString(v) {
			return f, service.Invalid("tactic %q: want an ATT&CK tactic ID (TA0002)", truncate(v))
		}
		f.Tactic = v
	}
	if v := strings.TrimSpace(q.Get(api.EventParamSource)); v != "" {
		ok := false
		for _, s := range model.Sources {
			ok = ok || string(s) == v
		}
		if !ok {
			return f, service.Invalid("source %q: want admission, compliance, runtime or host", truncate(v))
		}
		f.Source = v
	}
	if v := strings.TrimSpace(q.Get(api.EventParamAction)); v != "" {
		a, err := model.ParseAction(v)
		if err != nil {
			return f, service.Invalid("action %q: want log, allow, block, isolate, terminate or quarantine", truncate(v))
		}
		f.Action = string(a)
	}
	if v := strings.TrimSpace(q.Get(api.EventParamSeverity)); v != "" {
		sev, err := model.ParseSeverity(v)
		if err != nil || len(v) > 16 {
			return f, service.Invalid("severity %q: want critical, high, medium, low, negligible or unknown", truncate(v))
		}
		f.MinSeverity = &sev
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{api.EventParamSince, &f.Since}, {api.EventParamUntil, &f.Until}} {
		v := strings.TrimSpace(q.Get(p.name))
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, service.Invalid("%s %q: want an RFC 3339 time (2026-03-01T12:00:00Z)", p.name, truncate(v))
		}
		*p.dst = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, service.Invalid("since must be before until")
	}
	f.Query = strings.TrimSpace(q.Get(api.EventParamQuery))
	if len(f.Query) > maxQueryLen {
		return f, service.Invalid("q: at most %d bytes", maxQueryLen)
	}
	if v := q.Get(api.EventParamCursor); v != "" {
		c, err := DecodeCursor(v)
		if err != nil {
			return f, err
		}
		f.After = c
	}
	if v := q.Get(api.EventParamLimit); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, service.Invalid("limit %q: want a number from 1 to %d", truncate(v), api.MaxLimit)
		}
		f.Limit = min(n, api.MaxLimit)
	}
	return f, nil
}

// ATT&CK ID forms (the rule loader of internal/runtime/rules checks the same).
var (
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
	tacticRE    = regexp.MustCompile(`^TA[0-9]{4}$`)
)

// ParseCountFilter reads the filters of the ATT&CK counts
// (GET /api/v1/events/attack and the console's matrix): ParseFilter's
// names and checks; cursor and limit, which do not apply to counts, are
// refused rather than ignored.
func ParseCountFilter(q url.Values) (Filter, error) {
	for _, p := range []string{api.EventParamCursor, api.EventParamLimit} {
		if q.Has(p) {
			return Filter{}, service.Invalid("%s: counts are not paged", p)
		}
	}
	return ParseFilter(q)
}

// CountByTechnique counts the events f selects by ATT&CK tactic and
// technique (events without a technique are not counted).
func (s *Service) CountByTechnique(ctx context.Context, f Filter) ([]store.TechniqueCount, error) {
	f.After, f.Limit = nil, 0
	c, err := s.st.CountEventsByTechnique(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return c, nil
}

// EncodeCursor makes the opaque cursor of a position ("" for none).
func EncodeCursor(c *store.EventCursor) string {
	if c == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + strconv.FormatInt(c.Seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (*store.EventCursor, error) {
	bad := service.Invalid("cursor %q: not a cursor this server gave", truncate(s))
	if len(s) > 64 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	at, seq, ok := strings.Cut(string(b), ".")
	if !ok {
		return nil, bad
	}
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return nil, bad
	}
	c := &store.EventCursor{Time: time.UnixMicro(us).UTC(), Seq: n}
	if EncodeCursor(c) != s {
		// Only the canonical form: one position, one cursor.
		return nil, bad
	}
	return c, nil
}

// List lists the events f selects, newest first.
func (s *Service) List(ctx context.Context, f Filter) (store.EventPage, error) {
	p, err := s.st.ListEvents(ctx, f)
	if err != nil {
		return store.EventPage{}, fmt.Errorf("events: %w", err)
	}
	return p, nil
}

// Prune applies the retention once and returns how many events it deleted.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	var before time.Time
	if s.ret.MaxAge > 0 {
		before = s.now().Add(-s.ret.MaxAge)
	}
	keep := max(s.ret.MaxCount, 0)
	n, err := s.st.PruneEvents(ctx, before, keep)
	if err != nil {
		return n, fmt.Errorf("events: %w", err)
	}
	if n > 0 {
		s.log.Info("events pruned", "deleted", n, "maxAge", s.ret.MaxAge, "maxCount", s.ret.MaxCount)
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
