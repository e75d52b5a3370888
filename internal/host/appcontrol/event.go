package appcontrol

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"mamori/internal/model"
)

// Module is the application control module's name in events.
const Module = "appcontrol"

// Rule IDs of application control events.
const (
	RuleNotAllowed = "appcontrol.not-allowed"
	RuleLearned    = "appcontrol.learned"
)

// Event converts the decision to the one event envelope (source host,
// module appcontrol).
func (d Decision) Event() model.Event {
	e := model.Event{
		ID: newEventID(), Time: d.Time, Source: model.SourceHost, Module: Module,
		Rule:     model.RuleRef{ID: RuleNotAllowed, Title: "Executable content not on the allow-list"},
		Severity: model.SeverityHigh,
		File:     &model.FileRef{Path: d.Path, SHA256: d.SHA256},
		Process:  &model.Process{PID: int(d.PID), Exe: d.Exe},
		Details:  map[string]string{"access": d.Access, "kind": string(d.Kind), "size": strconv.FormatInt(d.Size, 10)},
	}
	if d.Reason != "" {
		e.Details["reason"] = d.Reason
	}
	what := fmt.Sprintf("%s %s (%s, sha256 %s) by %s (pid %d)", d.Access, d.Path, d.Kind, d.SHA256, d.Exe, d.PID)
	switch d.Action {
	case ActionDenied:
		e.Action = model.ActionBlock
		e.Message = "denied: " + what + ": " + d.Reason
	case ActionLearned:
		e.Action = model.ActionLog
		e.Severity = model.SeverityLow
		e.Rule = model.RuleRef{ID: RuleLearned, Title: "Learned in maintenance mode"}
		e.Message = "learned in maintenance mode: " + what
	default:
		e.Action = model.ActionLog
		e.Message = "logged: " + what + ": " + d.Reason
	}
	return e
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux (getrandom)
	return hex.EncodeToString(b)
}
