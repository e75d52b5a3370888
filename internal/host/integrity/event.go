package integrity

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"mamori/internal/model"
)

// Module is the integrity module's name in events (model.Event.Module).
const Module = "integrity"

// Model converts the change to the one event envelope of the events store
// (source host, module integrity, action log): Rule.ID is
// "integrity.<rule or collector>", Change holds before and after, File
// the path with its digest, mode and owner, Details the kind, key, change,
// changed attributes and what found it.
func (e Event) Model() model.Event {
	me := model.Event{
		ID: newEventID(), Time: e.Time, Source: model.SourceHost, Module: Module,
		Rule:     model.RuleRef{ID: Module + "." + e.Rule, Title: ruleTitle(e)},
		Severity: modelSeverity(e.Severity),
		Action:   model.ActionLog,
		Change:   &model.Change{Before: e.Before, After: e.After},
		Details: map[string]string{
			"kind": string(e.Kind), "key": e.Key, "change": string(e.Change), "source": string(e.Source),
		},
	}
	if len(e.Changed) > 0 {
		me.Details["changed"] = strings.Join(e.Changed, ",")
	}
	if e.Kind == KindFile {
		a := e.After
		if a == nil {
			a = e.Before
		}
		me.File = &model.FileRef{Path: e.Key, SHA256: a["sha256"], Mode: a["mode"], Owner: a["uid"] + ":" + a["gid"]}
		if strings.HasPrefix(me.File.SHA256, "(") {
			me.File.SHA256 = ""
		}
	}
	me.Message = fmt.Sprintf("%s %s %s", e.Kind, e.Key, e.Change)
	if len(e.Changed) > 0 {
		me.Message += ": " + strings.Join(e.Changed, ", ")
	}
	return me
}

func ruleTitle(e Event) string {
	if e.Kind == KindFile {
		return "Monitored file changed (" + e.Rule + ")"
	}
	return "System " + string(e.Kind) + " changed"
}

func modelSeverity(s Severity) model.Severity {
	switch s {
	case SeverityCritical:
		return model.SeverityCritical
	case SeverityHigh:
		return model.SeverityHigh
	case SeverityMedium:
		return model.SeverityMedium
	case SeverityLow:
		return model.SeverityLow
	}
	return model.SeverityUnknown
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (getrandom)
	return hex.EncodeToString(b)
}
