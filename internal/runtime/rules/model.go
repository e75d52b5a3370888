package rules

import (
	"slices"
	"unicode/utf8"

	"mamori/internal/model"
	"mamori/internal/runtime/event"
)

// ModelEvent is the match as the one event envelope (docs/events.md): the rule with its ATT&CK
// tactic and technique, the action, the rendered output, and the process, container, file and
// socket as evidence. The caller sets what the rules do not know: the event ID, and the node,
// host and cluster (and ActionError when the action could not be carried out).
func (m Match) ModelEvent(in *Input, id string) model.Event {
	e := in.Event
	module := "sensor"
	if slices.Contains(m.Rule.Tags, "drift") && e.Drift {
		module = "drift"
	}
	ev := model.Event{
		ID:        id,
		Time:      e.Time,
		Source:    model.SourceRuntime,
		Module:    module,
		Rule:      model.RuleRef{ID: m.Rule.ID, Title: m.Rule.Title, Policy: m.Ruleset},
		Tactic:    m.Rule.Tactic,
		Technique: m.Rule.Technique,
		Severity:  m.Rule.Severity,
		Action:    m.Action,
		Message:   fitMessage(m.Message(in)),
		Process:   e.ModelProcess(),
		Container: e.ModelContainer(),
		File:      e.ModelFile(),
		Network:   e.ModelNetwork(),
	}
	if !e.Container.IsHost() {
		ev.Namespace = fitText(e.Container.Namespace)
		ev.Pod = fitText(e.Container.Pod)
	}
	if n := min(len(in.Ctx.Ancestors), MaxAncestors); n > 0 && ev.Process != nil {
		ev.Process.Ancestors = make([]string, n)
		for i, a := range in.Ctx.Ancestors[:n] {
			ev.Process.Ancestors[i] = fitText(a)
		}
	}
	return ev
}

// fitText keeps s when the store can hold it, else escapes and cuts it (as runtime/event does).
func fitText(s string) string {
	if len(s) <= model.MaxEventTextLen && utf8.ValidString(s) {
		return s
	}
	return event.Sanitize(s, 600)
}

func fitMessage(s string) string {
	if len(s) <= model.MaxEventMessageLen {
		return s
	}
	return event.Sanitize(s, model.MaxEventMessageLen/8)
}
