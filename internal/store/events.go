package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"mamori/internal/model"
)

// EventStore keeps security events, one table for every source
// (admission, compliance, runtime, host), newest first.
type EventStore interface {
	// InsertEvents stores the events whose ID is not stored yet, in one
	// transaction, and reports for each whether it was stored now (true) or
	// was already there or earlier in evs (false: nothing changed). An
	// invalid event (model.Event.Validate) fails the whole call with
	// ErrInvalid, storing nothing: the caller validates first.
	InsertEvents(ctx context.Context, evs []EventRecord) ([]bool, error)
	// ListEvents lists the events the filter selects, newest first (by
	// time, then by arrival), at most f.Limit (DefaultLimit when 0, at most
	// MaxLimit). Next is set when more events follow: pass it as f.After.
	ListEvents(ctx context.Context, f EventFilter) (EventPage, error)
	// GetEvent returns one event by its event ID.
	GetEvent(ctx context.Context, id string) (EventRecord, error)
	// PruneEvents deletes the events older than before (none when zero) and
	// then the oldest beyond the newest keep (none when keep <= 0), in
	// batches, and returns how many it deleted.
	PruneEvents(ctx context.Context, before time.Time, keep int) (int64, error)
	// CountEvents counts the stored events.
	CountEvents(ctx context.Context) (int64, error)
	// CountEventsByTechnique counts the events f selects that carry an
	// ATT&CK technique, by tactic and technique (the ATT&CK matrix), in
	// the order of tactic then technique. f.After and f.Limit do not apply.
	// Each stored event counts once (an event standing for several
	// occurrences, model.Event.Count, too).
	CountEventsByTechnique(ctx context.Context, f EventFilter) ([]TechniqueCount, error)
}

// TechniqueCount is how many events one (tactic, technique) pair has.
// Tactic is "" for events whose producer named a technique only.
type TechniqueCount struct {
	Tactic, Technique string
	Events            int64
}

// EventRecord is one stored event.
type EventRecord struct {
	// Seq is the store's own sequence number (arrival order), set on insert.
	Seq   int64
	Event model.Event
	// ReceivedAt is when the server received it; ReportedBy names the
	// token that delivered it.
	ReceivedAt time.Time
	ReportedBy string
}

// EventCursor is the position after which a listing continues.
type EventCursor struct {
	Time time.Time
	Seq  int64
}

// EventFilter selects events. Zero fields do not filter; the string fields
// match exactly (Container: the container's name or ID; Image: its
// reference or digest).
type EventFilter struct {
	Source, Module                  string
	Cluster, Node, Namespace, Pod   string
	Container, Image                string
	Rule, Technique, Tactic, Action string
	// MinSeverity keeps events of this severity or worse.
	MinSeverity *model.Severity
	// Since (inclusive) and Until (exclusive) bound the event time.
	Since, Until time.Time
	// Query matches a case-insensitive substring of the message, the rule,
	// the process, the file, the container, the scope and the details.
	Query string
	// After continues a listing after this position.
	After *EventCursor
	Limit int
}

// EventPage is a page of events and, when more follow, where they continue.
type EventPage struct {
	Events []EventRecord
	Next   *EventCursor
}

// eventBatchRows bounds the rows of one multi-row INSERT (24 columns: far
// under the engines' parameter limits).
const eventBatchRows = 200

// pruneBatch bounds the rows one prune transaction deletes, so that a
// prune of millions of rows never holds the write lock for long.
const pruneBatch = 5000

var eventCols = []string{"event_id", "at", "received_at", "source", "module", "cluster", "node", "host", "namespace", "pod",
	"container_id", "container_name", "image", "image_digest", "rule_id", "tactic", "technique", "severity", "action",
	"reported_by", "search", "body"}

// eventSearch is the text the free-text filter searches: the values of
// an event a person looks for, lower-cased, one per line.
func eventSearch(e *model.Event) string {
	vals := []string{e.Message, e.Rule.ID, e.Rule.Title, e.Rule.Policy, e.Module, e.Cluster, e.Node, e.Host,
		e.Namespace, e.Pod, e.Tactic, e.Technique, e.ActionError}
	if w := e.Workload; w != nil {
		vals = append(vals, w.Kind+"/"+w.Name)
	}
	if c := e.Container; c != nil {
		vals = append(vals, c.ID, c.Name, c.Image, c.ImageDigest)
	}
	if p := e.Process; p != nil {
		vals = append(vals, p.Exe, p.Comm, strings.Join(p.Args, " "))
	}
	if f := e.File; f != nil {
		vals = append(vals, f.Path, f.NewPath, f.SHA256)
	}
	if n := e.Network; n != nil {
		vals = append(vals, n.SrcAddr, n.DstAddr)
	}
	for k, v := range e.Details {
		vals = append(vals, k+"="+v)
	}
	var b strings.Builder
	for _, v := range vals {
		if v == "" {
			continue
		}
		b.WriteString(strings.ReplaceAll(strings.ToLower(v), "\n", " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// InsertEvents implements EventStore.
func (s *sqlStore) InsertEvents(ctx context.Context, evs []EventRecord) ([]bool, error) {
	stored := make([]bool, len(evs))
	if len(evs) == 0 {
		return stored, nil
	}
	// First occurrence of each ID in evs, and the rows to insert.
	first := make(map[string]int, len(evs))
	rows := make([][]any, 0, len(evs))
	for i := range evs {
		e := &evs[i].Event
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("store: event %d: %w: %w", i, ErrInvalid, err)
		}
		if len(evs[i].ReportedBy) > maxIDLen {
			return nil, fmt.Errorf("store: event %d: reporter name too long: %w", i, ErrInvalid)
		}
		if _, dup := first[e.ID]; dup {
			continue
		}
		first[e.ID] = i
		body, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("store: encode event %s: %w", e.ID, err)
		}
		var cID, cName, img, digest string
		if c := e.Container; c != nil {
			cID, cName, img, digest = c.ID, c.Name, c.Image, c.ImageDigest
		}
		received := evs[i].ReceivedAt
		if received.IsZero() {
			received = time.Now()
		}
		rows = append(rows, []any{e.ID, ts(e.Time), ts(received), string(e.Source), e.Module, e.Cluster, e.Node, e.Host,
			e.Namespace, e.Pod, cID, cName, img, digest, e.Rule.ID, e.Tactic, e.Technique, int64(e.Severity),
			string(e.Action), evs[i].ReportedBy, eventSearch(e), string(body)})
	}
	inserted := map[string]bool{}
	err := s.write(ctx, func(t *tx) error {
		clear(inserted)
		for start := 0; start < len(rows); start += eventBatchRows {
			end := min(start+eventBatchRows, len(rows))
			err := t.insertRows(ctx, "events", eventCols, rows[start:end], " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
				func(r *sql.Rows) error {
					var id string
					if err := r.Scan(&id); err != nil {
						return err
					}
					inserted[id] = true
					return nil
				})
			if err != nil {
				return err
			}
			if err := s.step("events"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert events: %w", err)
	}
	for i := range evs {
		id := evs[i].Event.ID
		stored[i] = inserted[id] && first[id] == i
	}
	return stored, nil
}

const eventSelect = `SELECT seq, at, received_at, reported_by, body FROM events`

func scanEvent(r rowScanner) (EventRecord, error) {
	var rec EventRecord
	var at, received int64
	var body string
	if err := r.Scan(&rec.Seq, &at, &received, &rec.ReportedBy, &body); err != nil {
		return rec, err
	}
	if err := json.Unmarshal([]byte(body), &rec.Event); err != nil {
		return rec, fmt.Errorf("decode event %d: %w", rec.Seq, err)
	}
	rec.ReceivedAt = fromTS(received)
	// The column is what the filters and the order use: keep the two equal.
	rec.Event.Time = fromTS(at)
	return rec, nil
}

// eventConds is the WHERE clause of a filter (without the cursor): the
// conditions and their arguments, shared by the listing and the counts.
func eventConds(f EventFilter) ([]string, []any) {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	eq("source", f.Source)
	eq("module", f.Module)
	eq("cluster", f.Cluster)
	eq("node", f.Node)
	eq("namespace", f.Namespace)
	eq("pod", f.Pod)
	eq("rule_id", f.Rule)
	eq("technique", f.Technique)
	eq("tactic", f.Tactic)
	eq("action", f.Action)
	if f.Container != "" {
		conds = append(conds, "(container_name = ? OR container_id = ?)")
		args = append(args, f.Container, f.Container)
	}
	if f.Image != "" {
		conds = append(conds, "(image = ? OR image_digest = ?)")
		args = append(args, f.Image, f.Image)
	}
	if f.MinSeverity != nil {
		conds = append(conds, "severity >= ?")
		args = append(args, int64(*f.MinSeverity))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "at >= ?")
		args = append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "at < ?")
		args = append(args, ts(f.Until))
	}
	if q := searchText(f.Query); q != "" {
		conds = append(conds, `search LIKE ? ESCAPE '\'`)
		args = append(args, likeContains(q))
	}
	return conds, args
}

// ListEvents implements EventStore.
func (s *sqlStore) ListEvents(ctx context.Context, f EventFilter) (EventPage, error) {
	conds, args := eventConds(f)
	if c := f.After; c != nil {
		conds = append(conds, "(at < ? OR (at = ? AND seq < ?))")
		args = append(args, ts(c.Time), ts(c.Time), c.Seq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	query := eventSelect
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY at DESC, seq DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return EventPage{}, fmt.Errorf("store: list events: %w", err)
	}
	defer rows.Close()
	page := EventPage{Events: []EventRecord{}}
	for rows.Next() {
		rec, err := scanEvent(rows)
		if err != nil {
			return EventPage{}, fmt.Errorf("store: list events: %w", err)
		}
		page.Events = append(page.Events, rec)
	}
	if err := rows.Err(); err != nil {
		return EventPage{}, fmt.Errorf("store: list events: %w", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = &EventCursor{Time: last.Event.Time, Seq: last.Seq}
	}
	return page, nil
}

// CountEventsByTechnique implements EventStore.
func (s *sqlStore) CountEventsByTechnique(ctx context.Context, f EventFilter) ([]TechniqueCount, error) {
	conds, args := eventConds(f)
	// "technique > ''" (not "<> ''") so that the engines can range-scan the
	// technique index.
	conds = append(conds, "technique > ''")
	from := "events"
	if s.engine == EngineSQLite && attackIndexCovers(f) {
		// SQLite's planner (without statistics) prefers an index with an
		// equality on cluster, namespace or node and then reads a table
		// row per event; the matrix's index reads none and needs no sort
		// (PostgreSQL's planner has statistics and finds it alone).
		from = "events INDEXED BY events_attack"
	}
	query := `SELECT tactic, technique, COUNT(*) FROM ` + from + ` WHERE ` + strings.Join(conds, " AND ") +
		` GROUP BY tactic, technique ORDER BY tactic, technique`
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: count events by technique: %w", err)
	}
	defer rows.Close()
	out := []TechniqueCount{}
	for rows.Next() {
		var c TechniqueCount
		if err := rows.Scan(&c.Tactic, &c.Technique, &c.Events); err != nil {
			return nil, fmt.Errorf("store: count events by technique: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count events by technique: %w", err)
	}
	return out, nil
}

// attackIndexCovers reports whether the events_attack index (migration 6)
// holds every column f filters on.
func attackIndexCovers(f EventFilter) bool {
	return f.Module == "" && f.Pod == "" && f.Container == "" && f.Image == "" && f.Rule == "" &&
		f.Action == "" && searchText(f.Query) == ""
}

// GetEvent implements EventStore.
func (s *sqlStore) GetEvent(ctx context.Context, id string) (EventRecord, error) {
	rec, err := scanEvent(s.db.QueryRowContext(ctx, s.q(eventSelect+` WHERE event_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return EventRecord{}, fmt.Errorf("store: event %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return EventRecord{}, fmt.Errorf("store: get event: %w", err)
	}
	return rec, nil
}

// CountEvents implements EventStore.
func (s *sqlStore) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count events: %w", err)
	}
	return n, nil
}

// PruneEvents implements EventStore.
func (s *sqlStore) PruneEvents(ctx context.Context, before time.Time, keep int) (int64, error) {
	var total int64
	// deleteOlder deletes, batch by batch, the events before the position
	// (at, seq) (seq 0: every event before at).
	deleteOlder := func(at int64, seq int64) error {
		for {
			var n int64
			err := s.write(ctx, func(t *tx) error {
				res, err := t.exec(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events
					WHERE at < ? OR (at = ? AND seq < ?) ORDER BY at, seq LIMIT ?)`, at, at, seq, pruneBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return err
			}
			total += n
			if n < pruneBatch || ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if !before.IsZero() {
		if err := deleteOlder(ts(before), 0); err != nil {
			return total, fmt.Errorf("store: prune events by age: %w", err)
		}
	}
	if keep > 0 {
		// The oldest event to keep: the keep-th newest.
		var at, seq int64
		err := s.db.QueryRowContext(ctx, s.q(`SELECT at, seq FROM events ORDER BY at DESC, seq DESC LIMIT 1 OFFSET ?`), keep-1).Scan(&at, &seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// keep or fewer events: nothing to do
		case err != nil:
			return total, fmt.Errorf("store: prune events by count: %w", err)
		default:
			if err := deleteOlder(at, seq); err != nil {
				return total, fmt.Errorf("store: prune events by count: %w", err)
			}
		}
	}
	return total, nil
}
