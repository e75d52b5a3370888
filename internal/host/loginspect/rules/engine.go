package rules

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"mamori/internal/cel"
	"mamori/internal/host/loginspect/decode"
)

// Engine evaluates a catalog's rules over decoded records and keeps the threshold state. It is
// safe for concurrent use (Process serialises; the state is shared by every source, so that a
// brute force seen in two files is one burst).
type Engine struct {
	mu         sync.Mutex
	cat        *Catalog
	index      map[decode.Source]*sourceIndex
	states     []*ruleState
	fields     *cel.Fields
	cur        *decode.Record
	now        func() time.Time
	auditEvery uint64
	n          uint64
	out        []Detection
	stats      Stats
}

// Stats are the engine's counters.
type Stats struct {
	Records     uint64 // records processed
	Evaluations uint64 // conditions evaluated
	Matches     uint64 // conditions that held
	Detections  uint64 // detections reported
	Suppressed  uint64 // matches inside a burst already reported
	Errors      uint64 // evaluations that failed (the rule did not match)
	Audited     uint64 // records evaluated with the runtime cost fences
	Keys        int    // threshold keys tracked now
	Evicted     uint64 // keys dropped because a rule reached its MaxKeys before they expired
}

type sourceIndex struct {
	byType map[string][]*ruleState
	any    []*ruleState // rules without events: every record of the source
}

// DefaultAuditEvery: one record in 1,024 is evaluated with cel's runtime fences (cost limit),
// checking in production that the static bound holds.
const DefaultAuditEvery = 1024

// maxFuture bounds how far ahead of the clock a record's time stamp is believed (a host with a
// wrong clock or a forged line must not expire every key).
const maxFuture = 5 * time.Minute

// EngineOption configures an Engine.
type EngineOption func(*Engine) error

// WithClock replaces time.Now: the time of records without a time stamp, and the bound on
// time stamps in the future.
func WithClock(now func() time.Time) EngineOption {
	return func(e *Engine) error { e.now = now; return nil }
}

// WithAuditEvery sets how often a record is evaluated with the runtime fences (0: never).
func WithAuditEvery(n uint64) EngineOption {
	return func(e *Engine) error { e.auditEvery = n; return nil }
}

// NewEngine prepares the catalog's rules for evaluation.
func NewEngine(cat *Catalog, opts ...EngineOption) (*Engine, error) {
	e := &Engine{cat: cat, index: map[decode.Source]*sourceIndex{}, now: time.Now, auditEvery: DefaultAuditEvery}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	for _, s := range decode.Sources {
		e.index[s] = &sourceIndex{byType: map[string][]*ruleState{}}
	}
	for _, r := range cat.rules {
		rs := &ruleState{rule: r}
		if r.Threshold != nil {
			rs.keys = map[string]*keyState{}
		}
		e.states = append(e.states, rs)
		for _, s := range r.Sources {
			ix := e.index[s]
			if len(r.Events) == 0 {
				ix.any = append(ix.any, rs)
				continue
			}
			for _, t := range r.Events {
				ix.byType[t] = append(ix.byType[t], rs)
			}
		}
	}
	getters := make([]func(*decode.Record) ref.Val, len(cat.fields))
	for i, f := range cat.fields {
		getters[i] = f.get
	}
	e.fields = cat.env.NewFields(func(i int) cel.Value { return getters[i](e.cur) })
	return e, nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *Catalog { return e.cat }

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	for _, rs := range e.states {
		s.Keys += len(rs.keys)
	}
	return s
}

// Detection is a rule's finding: a matching record, or the record that completed a threshold.
type Detection struct {
	Rule    *Rule
	Time    time.Time
	Message string
	// Threshold rules: the key's values ("src.ip=203.0.113.5"), the weighted count within the
	// window when it was reached, the window, the first match of the burst and the distinct
	// values of Threshold.Distinct seen.
	Key      string
	Count    int
	Window   time.Duration
	First    time.Time
	Distinct []string
	// Record is a copy of the record that completed the detection.
	Record decode.Record
}

// Process evaluates the rules of the record's source and type and returns the detections,
// valid until the next call. A rule whose evaluation fails does not match; the first error is
// returned with the detections and every error is counted in Stats.
func (e *Engine) Process(r *decode.Record) ([]Detection, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.out = e.out[:0]
	e.stats.Records++
	ix := e.index[r.Source]
	if ix == nil {
		return nil, nil
	}
	typed := ix.byType[r.Type]
	if len(typed) == 0 && len(ix.any) == 0 {
		return nil, nil
	}
	now := e.now()
	t := r.Time
	if t.IsZero() || t.After(now.Add(maxFuture)) {
		t = now
	}
	e.cur = r
	e.fields.Reset()
	e.n++
	audit := e.auditEvery > 0 && e.n%e.auditEvery == 0
	if audit {
		e.stats.Audited++
	}
	var firstErr error
	for _, group := range [2][]*ruleState{typed, ix.any} {
		for _, rs := range group {
			if err := e.eval(rs, r, t, audit); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	e.cur = nil
	return e.out, firstErr
}

func (e *Engine) eval(rs *ruleState, r *decode.Record, t time.Time, audit bool) error {
	e.stats.Evaluations++
	var matched bool
	var err error
	if audit {
		matched, err = rs.rule.prg.EvalBool(context.Background(), e.fields)
	} else {
		matched, err = rs.rule.prg.EvalBoundedBool(e.fields)
	}
	if err != nil {
		e.stats.Errors++
		return fmt.Errorf("rule %s: %w", rs.rule.ID, err)
	}
	if !matched {
		return nil
	}
	e.stats.Matches++
	th := rs.rule.Threshold
	if th == nil {
		e.detect(rs, r, t, "", max(r.Count, 1), t, nil)
		return nil
	}
	w := max(r.Count, 1)
	if rs.rule.weight != nil {
		v, err := rs.rule.weight.EvalBounded(e.fields)
		if err != nil {
			e.stats.Errors++
			return fmt.Errorf("rule %s: weight: %w", rs.rule.ID, err)
		}
		n, ok := v.(types.Int)
		if !ok || n <= 0 {
			return nil // a match that counts for nothing
		}
		w = int(min(int64(n), int64(MaxCount)))
	}
	key := e.key(rs.rule)
	ks := rs.get(key, t, th, &e.stats)
	if t.Before(ks.last) {
		t = ks.last // out of order within a key: count it at the key's latest time
	}
	if ks.reported && t.Sub(ks.last) >= th.Window {
		ks.resetBurst()
	}
	ks.last = t
	if rs.rule.distIdx >= 0 {
		ks.addDistinct(valueString(e.cat.fields[rs.rule.distIdx].get(r)))
	}
	if ks.reported {
		e.stats.Suppressed++
		return nil
	}
	sum, first := ks.add(t, w, th)
	if sum >= th.Count {
		ks.reported = true
		e.detect(rs, r, t, key, sum, first, ks.distinct)
	}
	return nil
}

// key renders the values of the threshold's key fields.
func (e *Engine) key(r *Rule) string {
	if len(r.keyIdx) == 0 {
		return ""
	}
	var b strings.Builder
	for i, fi := range r.keyIdx {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.cat.fields[fi].name)
		b.WriteByte('=')
		v, _ := e.fields.ResolveName(e.cat.fields[fi].name)
		b.WriteString(valueString(v.(ref.Val)))
	}
	return b.String()
}

func valueString(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	}
	return fmt.Sprint(v.Value())
}

func (e *Engine) detect(rs *ruleState, r *decode.Record, t time.Time, key string, count int, first time.Time, distinct []string) {
	e.stats.Detections++
	rs.detections++
	d := Detection{Rule: rs.rule, Time: t, Key: key, Count: count, First: first, Record: *r}
	if th := rs.rule.Threshold; th != nil {
		d.Window = th.Window
		d.Distinct = append([]string(nil), distinct...)
	}
	// The record is reused by the caller: copy what is shared.
	if r.Fields != nil {
		d.Record.Fields = make(map[string]string, len(r.Fields))
		for k, v := range r.Fields {
			d.Record.Fields[k] = v
		}
	}
	d.Record.Audit.Groups = append([]string(nil), r.Audit.Groups...)
	d.Record.Audit.Subjects = append([]string(nil), r.Audit.Subjects...)
	if len(rs.rule.output) > 0 {
		d.Message = renderOutput(rs.rule.output, r, &d)
	} else {
		d.Message = rs.rule.Title
	}
	e.out = append(e.out, d)
}

// Expire drops the threshold keys that have had no match for their window before now: call it
// now and then when records are rare (Process expires lazily as keys are added).
func (e *Engine) Expire(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rs := range e.states {
		if rs.rule.Threshold != nil {
			rs.expire(now, rs.rule.Threshold.Window)
		}
	}
}

// ruleState is one rule's threshold state: keys in least-recently-matched order.
type ruleState struct {
	rule       *Rule
	keys       map[string]*keyState
	head, tail *keyState // head: most recent
	detections uint64
}

type keyState struct {
	key        string
	times      []int64 // Unix ns of the retained matches, oldest first
	weights    []int
	sum        int
	last       time.Time
	reported   bool
	distinct   []string
	prev, next *keyState
}

// get returns the key's state, creating it (after expiring idle keys and, when the rule is at
// its MaxKeys, evicting the least recently matched one).
func (rs *ruleState) get(key string, now time.Time, th *Threshold, st *Stats) *keyState {
	if ks, ok := rs.keys[key]; ok {
		rs.moveToFront(ks)
		return ks
	}
	rs.expire(now, th.Window)
	if len(rs.keys) >= th.MaxKeys && rs.tail != nil {
		st.Evicted++
		rs.remove(rs.tail)
	}
	ks := &keyState{key: key}
	rs.keys[key] = ks
	rs.pushFront(ks)
	return ks
}

// expire removes keys whose last match is a window or more before now.
func (rs *ruleState) expire(now time.Time, window time.Duration) {
	for rs.tail != nil && now.Sub(rs.tail.last) >= window {
		rs.remove(rs.tail)
	}
}

func (rs *ruleState) pushFront(ks *keyState) {
	ks.prev, ks.next = nil, rs.head
	if rs.head != nil {
		rs.head.prev = ks
	}
	rs.head = ks
	if rs.tail == nil {
		rs.tail = ks
	}
}

func (rs *ruleState) unlink(ks *keyState) {
	if ks.prev != nil {
		ks.prev.next = ks.next
	} else {
		rs.head = ks.next
	}
	if ks.next != nil {
		ks.next.prev = ks.prev
	} else {
		rs.tail = ks.prev
	}
	ks.prev, ks.next = nil, nil
}

func (rs *ruleState) moveToFront(ks *keyState) {
	if rs.head == ks {
		return
	}
	rs.unlink(ks)
	rs.pushFront(ks)
}

func (rs *ruleState) remove(ks *keyState) {
	rs.unlink(ks)
	delete(rs.keys, ks.key)
}

// add records a match and returns the weighted count within the window ending at t, and the
// time of the oldest match counted. At most Count matches are retained: each weighs at least
// 1, so Count of them always reach the threshold.
func (ks *keyState) add(t time.Time, w int, th *Threshold) (int, time.Time) {
	tn := t.UnixNano()
	cutoff := tn - int64(th.Window)
	drop := 0
	for drop < len(ks.times) && ks.times[drop] <= cutoff {
		ks.sum -= ks.weights[drop]
		drop++
	}
	if len(ks.times)-drop >= th.Count {
		ks.sum -= ks.weights[drop]
		drop++
	}
	if drop > 0 {
		ks.times = append(ks.times[:0], ks.times[drop:]...)
		ks.weights = append(ks.weights[:0], ks.weights[drop:]...)
	}
	ks.times = append(ks.times, tn)
	ks.weights = append(ks.weights, w)
	ks.sum += w
	return ks.sum, time.Unix(0, ks.times[0])
}

func (ks *keyState) resetBurst() {
	ks.times, ks.weights, ks.sum, ks.reported, ks.distinct = ks.times[:0], ks.weights[:0], 0, false, ks.distinct[:0]
}

func (ks *keyState) addDistinct(v string) {
	if len(ks.distinct) >= MaxDistinct {
		return
	}
	for _, d := range ks.distinct {
		if d == v {
			return
		}
	}
	ks.distinct = append(ks.distinct, decodeCut(v, 256))
}

func decodeCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
