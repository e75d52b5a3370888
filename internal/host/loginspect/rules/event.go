package rules

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mamori/internal/host/loginspect/decode"
	"mamori/internal/model"
)

// Module is log inspection's module name in events.
const Module = "loginspect"

// Event converts the detection to the one event envelope (source host, module loginspect):
// the rule with its ATT&CK mapping, the rendered output as message, the process, remote address,
// file, container or Kubernetes object of the record as evidence, and the log line, its file
// and the threshold's key and count as details. host names the machine when the line does not.
func (d *Detection) Event(host string) model.Event {
	r := &d.Record
	ev := model.Event{
		ID:        newEventID(),
		Time:      d.Time,
		Source:    model.SourceHost,
		Module:    Module,
		Host:      fit(host),
		Rule:      model.RuleRef{ID: d.Rule.ID, Title: d.Rule.Title, Policy: Module},
		Tactic:    d.Rule.Tactic,
		Technique: d.Rule.Technique,
		Severity:  d.Rule.Severity,
		Action:    model.ActionLog,
		Message:   fitMessage(d.Message),
		Count:     d.Count,
		Details:   map[string]string{},
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Host == "" {
		ev.Host = fit(r.Host)
	}
	if r.PID > 0 || r.Program != "" {
		p := &model.Process{PID: max(r.PID, 0), UID: -1, Comm: fit(r.Program), Exe: fit(r.Fields["exe"])}
		if r.UID >= 0 && r.Source != decode.SourceK8sAudit {
			p.UID = r.UID
		}
		if p.UID < 0 {
			p.UID = 0
			ev.Details["uid"] = "unknown"
		}
		if r.Cmdline != "" {
			p.Args = []string{fit(r.Cmdline)}
		}
		p.Cwd = fit(r.Cwd)
		ev.Process = p
	}
	if r.SrcIP != "" {
		ev.Network = &model.NetworkRef{SrcAddr: fit(r.SrcIP), SrcPort: r.SrcPort}
	}
	if r.FilePath != "" {
		ev.File = &model.FileRef{Path: fit(r.FilePath)}
	}
	c := r.Container
	if c.ID != "" || c.Name != "" || c.Pod != "" {
		ev.Namespace, ev.Pod = fit(c.Namespace), fit(c.Pod)
		if c.ID != "" || c.Name != "" {
			ev.Container = &model.ContainerRef{ID: fit(c.ID), Name: fit(c.Name), Runtime: c.Runtime}
		}
	}
	if r.Source == decode.SourceK8sAudit {
		ev.Namespace = fit(r.Audit.Namespace)
		a := r.Audit
		for k, v := range map[string]string{"audit.verb": a.Verb, "audit.user": a.User, "audit.resource": a.Resource,
			"audit.subresource": a.Subresource, "audit.name": a.Name, "audit.code": codeString(a.Code), "audit.id": a.AuditID,
			"audit.role_ref": a.RoleRef, "audit.subjects": strings.Join(a.Subjects, ","), "audit.user_agent": a.UserAgent} {
			detail(ev.Details, k, v)
		}
	}
	detail(ev.Details, "log.source", string(r.Source))
	detail(ev.Details, "log.path", r.Path)
	detail(ev.Details, "log.program", r.Program)
	detail(ev.Details, "event.type", r.Type)
	detail(ev.Details, "user.name", r.User)
	detail(ev.Details, "user.target", r.TargetUser)
	detail(ev.Details, "group.name", r.Group)
	detail(ev.Details, "log.unit", r.Unit)
	detail(ev.Details, "log.line", cutValid(r.Line, 1024))
	if d.Rule.Threshold != nil {
		detail(ev.Details, "threshold.key", d.Key)
		detail(ev.Details, "threshold.count", strconv.Itoa(d.Count))
		detail(ev.Details, "threshold.window", d.Window.String())
		detail(ev.Details, "threshold.first", d.First.UTC().Format(time.RFC3339Nano))
		if len(d.Distinct) > 0 {
			detail(ev.Details, "threshold.distinct", strings.Join(d.Distinct, ","))
		}
	}
	if len(ev.Details) == 0 {
		ev.Details = nil
	}
	return ev
}

func codeString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// detail sets a non-empty value, made storable (valid UTF-8, no NUL, bounded).
func detail(m map[string]string, k, v string) {
	if v == "" || len(m) >= model.MaxEventDetails {
		return
	}
	m[k] = fit(v)
}

// fit makes a value from a log line storable: valid UTF-8 without NUL, within the store's limit.
func fit(s string) string {
	if s == "" {
		return s
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	return cutValid(s, model.MaxEventTextLen)
}

func fitMessage(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	return cutValid(s, model.MaxEventMessageLen)
}

// cutValid shortens a valid UTF-8 string to at most n bytes on a rune boundary.
func cutValid(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on Linux (getrandom)
	return hex.EncodeToString(b)
}
