package model

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// EventSchemaVersion is the version of the event envelope (docs/events.md).
const EventSchemaVersion = 1

// EventSource says which part of mamori produced an event. Every source
// writes the same envelope into the one events store.
type EventSource string

const (
	// SourceAdmission: an admission decision of the cluster component.
	SourceAdmission EventSource = "admission"
	// SourceCompliance: a running workload violates a continuous-compliance rule.
	SourceCompliance EventSource = "compliance"
	// SourceRuntime: a runtime rule of the node agent matched (drift included).
	SourceRuntime EventSource = "runtime"
	// SourceHost: a host-protection module of the node agent (Module names it).
	SourceHost EventSource = "host"
)

// Sources lists every event source, in display order.
var Sources = []EventSource{SourceAdmission, SourceCompliance, SourceRuntime, SourceHost}

// Action is what mamori did about an event.
type Action string

const (
	ActionLog        Action = "log"        // recorded only (detect mode)
	ActionAllow      Action = "allow"      // admission allowed (with warnings)
	ActionBlock      Action = "block"      // denied: admission request, file access, execution, packet
	ActionIsolate    Action = "isolate"    // the workload's network was cut
	ActionTerminate  Action = "terminate"  // the workload was killed or its pod deleted
	ActionQuarantine Action = "quarantine" // a file was moved to quarantine
)

// ParseAction reads an action name.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case ActionLog, ActionAllow, ActionBlock, ActionIsolate, ActionTerminate, ActionQuarantine:
		return a, nil
	}
	return "", fmt.Errorf("model: unknown action %q (want log, allow, block, isolate, terminate or quarantine)", s)
}

// Event is the one envelope of every security event: admission decisions,
// compliance violations, runtime detections and host-protection events.
// Producers fill what they know; the store indexes the scope fields.
type Event struct {
	// ID identifies the event for de-duplication: producers make it once
	// (a random 128-bit value, hex) and resend it unchanged, so delivering
	// an event twice stores it once.
	ID     string      `json:"id"`
	Time   time.Time   `json:"time"`
	Source EventSource `json:"source"`
	// Module names the producer inside a source ("antimalware", "integrity",
	// "loginspect", "appcontrol", "firewall" for SourceHost; "drift" or
	// "sensor" for SourceRuntime; "webhook" for SourceAdmission).
	Module string `json:"module,omitempty"`

	// Scope: where it happened. Empty fields are unknown or do not apply.
	Cluster   string        `json:"cluster,omitempty"`
	Node      string        `json:"node,omitempty"`
	Host      string        `json:"host,omitempty"`
	Namespace string        `json:"namespace,omitempty"`
	Workload  *WorkloadRef  `json:"workload,omitempty"`
	Pod       string        `json:"pod,omitempty"`
	Container *ContainerRef `json:"container,omitempty"`

	// Rule that fired, with its ATT&CK mapping when it has one.
	Rule      RuleRef  `json:"rule"`
	Tactic    string   `json:"tactic,omitempty"`    // "TA0006"
	Technique string   `json:"technique,omitempty"` // "T1552.001"
	Severity  Severity `json:"severity"`
	// Action is what was done; ActionError says why it could not be done
	// (the action then did not take effect).
	Action      Action `json:"action"`
	ActionError string `json:"actionError,omitempty"`
	Message     string `json:"message"`

	// Evidence: the objects that decided it.
	Process *Process          `json:"process,omitempty"`
	File    *FileRef          `json:"file,omitempty"`
	Network *NetworkRef       `json:"network,omitempty"`
	Change  *Change           `json:"change,omitempty"`
	Details map[string]string `json:"details,omitempty"`
	// Count is how many occurrences this event stands for (aggregated by
	// the producer); 0 and 1 both mean one.
	Count int `json:"count,omitempty"`
}

// WorkloadRef names a Kubernetes workload (the pod's top controller).
type WorkloadRef struct {
	Kind string `json:"kind"` // Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod ...
	Name string `json:"name"`
}

// ContainerRef names a container and the image it runs.
type ContainerRef struct {
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Image       string            `json:"image,omitempty"`       // reference as the runtime knows it
	ImageDigest string            `json:"imageDigest,omitempty"` // sha256:… of the manifest (or the image ID when that is all the runtime has)
	Runtime     string            `json:"runtime,omitempty"`     // "containerd", "cri", "docker"
	Labels      map[string]string `json:"labels,omitempty"`
}

// RuleRef names the rule (and the policy or ruleset carrying it) behind an event.
type RuleRef struct {
	ID     string `json:"id"`
	Title  string `json:"title,omitempty"`
	Policy string `json:"policy,omitempty"` // policy or ruleset name
	// PolicyVersion is the stored policy version that decided (admission, compliance).
	PolicyVersion int `json:"policyVersion,omitempty"`
}

// Process is the process behind a runtime or host event.
type Process struct {
	PID  int      `json:"pid"`
	PPID int      `json:"ppid,omitempty"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid,omitempty"`
	Exe  string   `json:"exe,omitempty"`
	Comm string   `json:"comm,omitempty"`
	Args []string `json:"args,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
	// Ancestors are the parents' executables, nearest first.
	Ancestors []string `json:"ancestors,omitempty"`
}

// FileRef is the file an event is about.
type FileRef struct {
	Path    string `json:"path"`
	NewPath string `json:"newPath,omitempty"` // rename target
	SHA256  string `json:"sha256,omitempty"`
	Mode    string `json:"mode,omitempty"` // "0755", "-rwsr-xr-x"
	Owner   string `json:"owner,omitempty"`
}

// NetworkRef is the connection or socket an event is about.
type NetworkRef struct {
	Protocol string `json:"protocol,omitempty"` // tcp, udp, raw, packet ...
	SrcAddr  string `json:"srcAddr,omitempty"`
	SrcPort  int    `json:"srcPort,omitempty"`
	DstAddr  string `json:"dstAddr,omitempty"`
	DstPort  int    `json:"dstPort,omitempty"`
}

// Change is a before/after pair (integrity monitoring, policy changes).
type Change struct {
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
}

// Event limits, enforced by Validate so that one hostile producer cannot
// fill the store or break a page.
const (
	MaxEventIDLen      = 128
	MaxEventTextLen    = 4096  // most text fields
	MaxEventMessageLen = 16384 // Message
	MaxEventArgs       = 256   // Process.Args entries
	MaxEventDetails    = 64    // Details and Change map entries
)

// Validate checks an event the way the store and the ingest API need it:
// every text field valid UTF-8 without NUL, within its length limit, a
// known source and action, and a time. It does not change e.
func (e *Event) Validate() error {
	v := &validator{}
	v.required("id", e.ID, MaxEventIDLen)
	if e.Time.IsZero() {
		v.fail("time is missing")
	}
	known := false
	for _, s := range Sources {
		known = known || s == e.Source
	}
	if !known {
		v.fail("source %q is not one of admission, compliance, runtime, host", truncate(string(e.Source)))
	}
	if _, err := ParseAction(string(e.Action)); err != nil {
		v.fail("action %q is not one of log, allow, block, isolate, terminate, quarantine", truncate(string(e.Action)))
	}
	if e.Severity < SeverityUnknown || e.Severity > SeverityCritical {
		v.fail("severity out of range")
	}
	if e.Count < 0 {
		v.fail("count is negative")
	}
	for _, f := range []struct{ name, val string }{
		{"module", e.Module}, {"cluster", e.Cluster}, {"node", e.Node}, {"host", e.Host},
		{"namespace", e.Namespace}, {"pod", e.Pod}, {"rule.id", e.Rule.ID}, {"rule.title", e.Rule.Title},
		{"rule.policy", e.Rule.Policy}, {"tactic", e.Tactic}, {"technique", e.Technique},
		{"actionError", e.ActionError},
	} {
		v.text(f.name, f.val, MaxEventTextLen)
	}
	v.text("message", e.Message, MaxEventMessageLen)
	if w := e.Workload; w != nil {
		v.text("workload.kind", w.Kind, MaxEventTextLen)
		v.text("workload.name", w.Name, MaxEventTextLen)
	}
	if c := e.Container; c != nil {
		v.text("container.id", c.ID, MaxEventTextLen)
		v.text("container.name", c.Name, MaxEventTextLen)
		v.text("container.image", c.Image, MaxEventTextLen)
		v.text("container.imageDigest", c.ImageDigest, MaxEventTextLen)
		v.text("container.runtime", c.Runtime, MaxEventTextLen)
		v.strMap("container.labels", c.Labels)
	}
	if p := e.Process; p != nil {
		v.text("process.exe", p.Exe, MaxEventTextLen)
		v.text("process.comm", p.Comm, MaxEventTextLen)
		v.text("process.cwd", p.Cwd, MaxEventTextLen)
		if len(p.Args) > MaxEventArgs {
			v.fail("process.args has %d entries (at most %d)", len(p.Args), MaxEventArgs)
		}
		for i, a := range p.Args {
			v.text(fmt.Sprintf("process.args[%d]", i), a, MaxEventTextLen)
		}
		if len(p.Ancestors) > MaxEventArgs {
			v.fail("process.ancestors has %d entries (at most %d)", len(p.Ancestors), MaxEventArgs)
		}
		for i, a := range p.Ancestors {
			v.text(fmt.Sprintf("process.ancestors[%d]", i), a, MaxEventTextLen)
		}
	}
	if f := e.File; f != nil {
		v.text("file.path", f.Path, MaxEventTextLen)
		v.text("file.newPath", f.NewPath, MaxEventTextLen)
		v.text("file.sha256", f.SHA256, MaxEventTextLen)
		v.text("file.mode", f.Mode, MaxEventTextLen)
		v.text("file.owner", f.Owner, MaxEventTextLen)
	}
	if n := e.Network; n != nil {
		v.text("network.protocol", n.Protocol, MaxEventTextLen)
		v.text("network.srcAddr", n.SrcAddr, MaxEventTextLen)
		v.text("network.dstAddr", n.DstAddr, MaxEventTextLen)
		if n.SrcPort < 0 || n.SrcPort > 65535 || n.DstPort < 0 || n.DstPort > 65535 {
			v.fail("network port out of range")
		}
	}
	if c := e.Change; c != nil {
		v.strMap("change.before", c.Before)
		v.strMap("change.after", c.After)
	}
	v.strMap("details", e.Details)
	return v.err
}

// validator collects the first problem found.
type validator struct{ err error }

func (v *validator) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
}

// text refuses what a database cannot store faithfully (PostgreSQL rejects
// NUL bytes and invalid UTF-8 in text columns) and over-long values.
func (v *validator) text(field, s string, maxLen int) {
	if v.err != nil {
		return
	}
	switch {
	case len(s) > maxLen:
		v.fail("%s is longer than %d bytes", field, maxLen)
	case strings.IndexByte(s, 0) >= 0:
		v.fail("%s contains a NUL byte", field)
	case !utf8.ValidString(s):
		v.fail("%s is not valid UTF-8", field)
	}
}

func (v *validator) required(field, s string, maxLen int) {
	if strings.TrimSpace(s) == "" {
		v.fail("%s is empty", field)
		return
	}
	v.text(field, s, maxLen)
}

func (v *validator) strMap(field string, m map[string]string) {
	if len(m) > MaxEventDetails {
		v.fail("%s has %d entries (at most %d)", field, len(m), MaxEventDetails)
		return
	}
	for k, val := range m {
		v.text(field+" key", k, MaxEventTextLen)
		v.text(field+"["+truncate(k)+"]", val, MaxEventTextLen)
	}
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
