package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"mamori/internal/cel"
	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

// Engine evaluates a catalog's rules under a list of rulesets. It is immutable and safe for
// concurrent use; each goroutine evaluates through its own Evaluator.
type Engine struct {
	cat      *Catalog
	rulesets []*Ruleset
	kindPos  map[event.Kind]int
	capsIdx  int
	// AuditEvery makes one evaluation in AuditEvery run with cel's runtime fences (cost limit),
	// checking in production that the static bound holds; 0 disables it.
	auditEvery uint64
}

// DefaultAuditEvery is how often an Evaluator runs an event through the fenced evaluator.
const DefaultAuditEvery = 1024

// NewEngine prepares the rules of cat under rulesets (DefaultRuleset when none is given).
func NewEngine(cat *Catalog, rulesets ...*Ruleset) (*Engine, error) {
	if len(rulesets) == 0 {
		rulesets = []*Ruleset{DefaultRuleset()}
	}
	names := map[string]bool{}
	for _, rs := range rulesets {
		if err := rs.Validate(cat); err != nil {
			return nil, err
		}
		if names[rs.Name] {
			return nil, fmt.Errorf("%w: ruleset %q given twice", ErrInvalid, rs.Name)
		}
		names[rs.Name] = true
	}
	e := &Engine{cat: cat, rulesets: rulesets, kindPos: map[event.Kind]int{}, capsIdx: -1, auditEvery: DefaultAuditEvery}
	for i, k := range event.Kinds {
		e.kindPos[k] = i
	}
	for i, f := range cat.fields {
		if f.name == "proc.caps" {
			e.capsIdx = i
		}
	}
	return e, nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *Catalog { return e.cat }

// Selection is the rules enabled for one container (or the host), indexed by event kind.
type Selection struct {
	byKind [][]active
	count  int
}

type active struct {
	rule    *Rule
	action  model.Action
	ruleset string
}

// Len is the number of (rule, kind) pairs selected.
func (s *Selection) Len() int { return s.count }

// Select computes which rules apply to events of a container (zero Container: the host), with
// the strongest action any applying ruleset gives each.
func (e *Engine) Select(c *event.Container) *Selection {
	type choice struct {
		action  model.Action
		ruleset string
	}
	chosen := map[*Rule]choice{}
	for _, rs := range e.rulesets {
		if !rs.Applies(c) {
			continue
		}
		for r, a := range rs.enabled(e.cat) {
			if prev, ok := chosen[r]; !ok || actionRank(a) > actionRank(prev.action) {
				chosen[r] = choice{a, rs.Name}
			}
		}
	}
	s := &Selection{byKind: make([][]active, len(event.Kinds))}
	// Keep catalog order so evaluation and output are deterministic.
	for _, r := range e.cat.rules {
		ch, ok := chosen[r]
		if !ok {
			continue
		}
		for _, k := range r.Kinds {
			i := e.kindPos[k]
			s.byKind[i] = append(s.byKind[i], active{rule: r, action: ch.action, ruleset: ch.ruleset})
			s.count++
		}
	}
	return s
}

// Match is a rule that matched an event.
type Match struct {
	Rule    *Rule
	Action  model.Action
	Ruleset string
}

// Evaluator evaluates events for one goroutine, reusing its activation and result slice.
type Evaluator struct {
	e      *Engine
	in     *Input
	fields *cel.Fields
	getter []func(*Input) ref.Val
	sels   map[string]*Selection
	caps   map[uint64]ref.Val
	out    []Match
	n      uint64

	// Stats counts work and errors since the Evaluator was made.
	Stats Stats
}

// Stats are an Evaluator's counters.
type Stats struct {
	Events      uint64 // events evaluated
	Evaluations uint64 // rule conditions evaluated
	Matches     uint64
	Errors      uint64 // rule evaluations that failed (the rule did not match)
	Audited     uint64 // events evaluated with the runtime fences
}

// maxSelections bounds the per-container selection cache (short-lived containers come and go).
const maxSelections = 4096

// maxCapsCache bounds the cache of capability-name lists by mask.
const maxCapsCache = 64

// NewEvaluator returns an Evaluator; it is not safe for concurrent use.
func (e *Engine) NewEvaluator() *Evaluator {
	ev := &Evaluator{e: e, sels: map[string]*Selection{}, caps: map[uint64]ref.Val{}}
	ev.getter = make([]func(*Input) ref.Val, len(e.cat.fields))
	for i, f := range e.cat.fields {
		ev.getter[i] = f.get
	}
	ev.fields = e.cat.env.NewFields(ev.get)
	return ev
}

func (ev *Evaluator) get(i int) cel.Value {
	if i == ev.e.capsIdx {
		mask := ev.in.Event.Process.CapEffective
		if v, ok := ev.caps[mask]; ok {
			return v
		}
		v := types.NewStringList(types.DefaultTypeAdapter, event.CapNames(mask))
		if len(ev.caps) >= maxCapsCache {
			clear(ev.caps)
		}
		ev.caps[mask] = v
		return v
	}
	return ev.getter[i](ev.in)
}

// Invalidate forgets the cached rule selection of a container (its labels changed, it exited);
// "" forgets all.
func (ev *Evaluator) Invalidate(containerID string) {
	if containerID == "" {
		clear(ev.sels)
		return
	}
	delete(ev.sels, containerID)
}

func (ev *Evaluator) selection(c *event.Container) *Selection {
	if s, ok := ev.sels[c.ID]; ok {
		return s
	}
	s := ev.e.Select(c)
	if len(ev.sels) >= maxSelections {
		clear(ev.sels)
	}
	ev.sels[c.ID] = s
	return s
}

// Eval runs the rules that apply to the input's kind and container and returns those that
// matched. The returned slice is reused by the next call. A rule whose evaluation fails does not
// match; the first such error is returned (with every match) and all are counted in Stats.
func (ev *Evaluator) Eval(in *Input) ([]Match, error) {
	ev.out = ev.out[:0]
	ev.Stats.Events++
	ki, ok := ev.e.kindPos[in.Event.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: event of unknown kind %q", ErrInvalid, event.Sanitize(string(in.Event.Kind), 64))
	}
	rules := ev.selection(&in.Event.Container).byKind[ki]
	if len(rules) == 0 {
		return nil, nil
	}
	ev.in = in
	ev.fields.Reset()
	ev.n++
	audit := ev.e.auditEvery > 0 && ev.n%ev.e.auditEvery == 0
	if audit {
		ev.Stats.Audited++
	}
	var firstErr error
	for i := range rules {
		a := &rules[i]
		ev.Stats.Evaluations++
		var matched bool
		var err error
		if audit {
			matched, err = a.rule.prg.EvalBool(context.Background(), ev.fields)
		} else {
			matched, err = a.rule.prg.EvalBoundedBool(ev.fields)
		}
		if err != nil {
			ev.Stats.Errors++
			if firstErr == nil {
				firstErr = fmt.Errorf("rule %s: %w", a.rule.ID, err)
			}
			continue
		}
		if matched {
			ev.out = append(ev.out, Match{Rule: a.rule, Action: a.action, Ruleset: a.ruleset})
		}
	}
	ev.Stats.Matches += uint64(len(ev.out))
	ev.in = nil
	return ev.out, firstErr
}

// Message renders the rule's output template for an input (its title when it has none). Values
// are sanitized: hostile paths and arguments cannot break the line or forge text.
func (m Match) Message(in *Input) string {
	if len(m.Rule.output) == 0 {
		return m.Rule.Title
	}
	return renderOutput(m.Rule.output, in)
}

// Kinds returns the event kinds some rule of the selection for the container needs, sorted: what
// the sensor must report for it.
func (e *Engine) Kinds() []event.Kind {
	seen := map[event.Kind]bool{}
	for _, rs := range e.rulesets {
		for r := range rs.enabled(e.cat) {
			for _, k := range r.Kinds {
				seen[k] = true
			}
		}
	}
	out := make([]event.Kind, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(string(out[i]), string(out[j])) < 0 })
	return out
}
