package rules

import (
	"maps"
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"mamori/internal/cel"
	"mamori/internal/cel/ruledoc"
	"mamori/internal/host/loginspect/decode"
)

// sourceSet is a set of record sources, bit i for decode.Sources[i].
type sourceSet uint32

func sourceBit(s decode.Source) sourceSet { return ruledoc.Bit[sourceSet](decode.Sources, s) }

func sourcesOf(ss ...decode.Source) sourceSet {
	return ruledoc.BitsOf[sourceSet](decode.Sources, ss...)
}

var allSources = ruledoc.AllBits[sourceSet](decode.Sources)

// Sources whose records carry the syslog-style framing and the program decoders' fields.
var textSources = sourcesOf(decode.SourceSyslog, decode.SourceJournal, decode.SourceAuditd)

// field is one variable log rules read.
type field struct {
	name    string
	typ     *cel.Type
	size    uint64 // string bytes, list elements, map entries
	elem    uint64 // list element or map value bytes
	key     uint64 // map key bytes
	sources sourceSet
	doc     string
	get     func(r *decode.Record) ref.Val
	scalar  bool // usable as a threshold key or distinct field
}

func integer(n int) ref.Val { return types.Int(n) }

var emptyMap = types.NewStringStringMap(types.DefaultTypeAdapter, map[string]string{})

// Bounds of the fields (the decoders already keep to them; the getters clamp again so that the
// static cost estimate is a true bound whatever produced the record).
const (
	maxShort = 64
	maxName  = 256
	maxPath  = 4096
)

// fields is the variable set of log rules, in declaration order (documentation order too).
func fields() []field {
	s := func(name string, size int, srcs sourceSet, doc string, get func(r *decode.Record) string) field {
		return field{name: name, typ: cel.String, size: uint64(size), sources: srcs, doc: doc, scalar: true,
			get: func(r *decode.Record) ref.Val { return ruledoc.Str(get(r), size) }}
	}
	n := func(name string, srcs sourceSet, doc string, get func(r *decode.Record) int) field {
		return field{name: name, typ: cel.Int, sources: srcs, doc: doc, scalar: true,
			get: func(r *decode.Record) ref.Val { return integer(get(r)) }}
	}
	list := func(name string, srcs sourceSet, doc string, get func(r *decode.Record) []string) field {
		return field{name: name, typ: cel.ListOf(cel.String), size: decode.MaxList, elem: decode.MaxField, sources: srcs, doc: doc,
			get: func(r *decode.Record) ref.Val { return ruledoc.StrList(get(r), decode.MaxList, decode.MaxField) }}
	}
	audit := sourcesOf(decode.SourceK8sAudit)
	container := sourcesOf(decode.SourceContainer)
	file := sourcesOf(decode.SourceFile)
	all := allSources
	return []field{
		s("log.source", maxShort, all, `where the record came from: "syslog", "journal", "container", "kubelet", "k8s_audit", "auditd", "file"`, func(r *decode.Record) string { return string(r.Source) }),
		s("log.format", maxShort, all, `line format: "rfc3164", "rfc5424", "iso", "journal", "cri", "docker", "klog", "k8s-audit", "auditd", "notice"`, func(r *decode.Record) string { return r.Format }),
		s("log.path", maxPath, all, `the file the line came from ("journal" for the journal)`, func(r *decode.Record) string { return r.Path }),
		s("log.host", decode.MaxField, all, "host name in the line", func(r *decode.Record) string { return r.Host }),
		s("log.program", maxShort, all, `program (syslog TAG / APP-NAME, journal SYSLOG_IDENTIFIER; "container", "kubelet", "kube-apiserver", "auditd")`, func(r *decode.Record) string { return r.Program }),
		n("log.pid", all, "process ID in the line, -1 when none", func(r *decode.Record) int { return r.PID }),
		s("log.facility", maxShort, all, `syslog facility ("auth", "authpriv", "daemon", ...); "" when unknown`, func(r *decode.Record) string { return decode.FacilityName(r.Facility) }),
		s("log.severity", maxShort, all, `syslog severity ("err", "warning", "info", ...); "" when unknown`, func(r *decode.Record) string { return decode.SeverityName(r.Severity) }),
		s("log.unit", decode.MaxField, all, "systemd unit (journal UNIT / _SYSTEMD_UNIT, or named in systemd's message)", func(r *decode.Record) string { return r.Unit }),
		s("log.message", decode.MaxMessage, all, "the message (after the syslog header; the whole line for other formats)", func(r *decode.Record) string { return r.Message }),
		n("log.count", all, `occurrences the line stands for (rsyslog's "message repeated N times"), else 1`, func(r *decode.Record) int { return r.Count }),
		{name: "log.fields", typ: cel.MapOf(cel.String, cel.String), size: decode.MaxFields, key: 64, elem: decode.MaxField, sources: all,
			doc: "other key/value pairs the decoder found (RFC 5424 SD params, auditd fields, klog pairs, sshd's invalid_user, usermod's attribute/from/to ...)",
			get: func(r *decode.Record) ref.Val {
				if len(r.Fields) == 0 {
					return emptyMap
				}
				return types.NewStringStringMap(types.DefaultTypeAdapter, r.Fields)
			}},
		s("event.type", maxShort, all, "what the decoders recognised (see the event types); \"\" for other lines", func(r *decode.Record) string { return r.Type }),
		s("event.outcome", maxShort, all, `"success", "failure" or ""`, func(r *decode.Record) string { return r.Outcome }),
		s("user.name", decode.MaxField, all, "the acting or authenticating user (sshd, sudo and su's user, PAM user=, the k8s audit user)", func(r *decode.Record) string { return r.User }),
		s("user.target", decode.MaxField, textSources, "the user acted on: sudo USER=, su's target, the account added, changed or deleted", func(r *decode.Record) string { return r.TargetUser }),
		n("user.uid", textSources, "UID in the line (new user's UID, PAM uid=, usermod's new UID), -1 when none", func(r *decode.Record) int { return r.UID }),
		s("group.name", decode.MaxField, textSources, "the group added, deleted or joined", func(r *decode.Record) string { return r.Group }),
		n("group.gid", textSources, "GID in the line, -1 when none", func(r *decode.Record) int { return r.GID }),
		s("src.ip", maxShort, all, "remote address (sshd, PAM rhost, auditd addr, the k8s audit source IP), canonical form", func(r *decode.Record) string { return r.SrcIP }),
		n("src.port", all, "remote port, 0 when none", func(r *decode.Record) int { return r.SrcPort }),
		s("proc.cmdline", decode.MaxField, textSources, "sudo's COMMAND=", func(r *decode.Record) string { return r.Cmdline }),
		s("proc.tty", maxShort, textSources, "terminal (sudo TTY=, su, PAM tty=, auditd terminal=)", func(r *decode.Record) string { return r.TTY }),
		s("proc.cwd", decode.MaxField, textSources, "sudo's PWD=", func(r *decode.Record) string { return r.Cwd }),
		s("auth.method", maxShort, textSources, "sshd's method: password, publickey, keyboard-interactive/pam, none", func(r *decode.Record) string { return r.AuthMethod }),
		n("auth.attempts", textSources, `sudo's "N incorrect password attempts"`, func(r *decode.Record) int { return r.Attempts }),
		s("auth.service", maxShort, textSources, "PAM service of pam_* lines (sshd, sudo, su, login, passwd ...)", func(r *decode.Record) string { return r.PAMService }),
		s("file.path", decode.MaxField, file|textSources, "the log file changed (file records); the journal file vacuumed (journal_vacuum)", func(r *decode.Record) string { return r.FilePath }),
		n("file.size_before", file, "file records: size before the change", func(r *decode.Record) int { return int(r.SizeBefore) }),
		n("file.size", file, "file records: size after the change", func(r *decode.Record) int { return int(r.SizeAfter) }),
		s("container.id", maxName, container, "container ID (from /var/log/containers or Docker paths)", func(r *decode.Record) string { return r.Container.ID }),
		s("container.name", maxName, container, "container name", func(r *decode.Record) string { return r.Container.Name }),
		s("container.pod", maxName, container, "pod name", func(r *decode.Record) string { return r.Container.Pod }),
		s("container.ns", maxName, container, "Kubernetes namespace (namespace is a CEL reserved word)", func(r *decode.Record) string { return r.Container.Namespace }),
		s("container.pod_uid", maxName, container, "pod UID", func(r *decode.Record) string { return r.Container.PodUID }),
		s("container.stream", maxShort, container, `"stdout" or "stderr"`, func(r *decode.Record) string { return r.Container.Stream }),
		s("container.runtime", maxShort, container, `"cri" or "docker"`, func(r *decode.Record) string { return r.Container.Runtime }),
		s("audit.verb", maxShort, audit, "get, list, watch, create, update, patch, delete, deletecollection", func(r *decode.Record) string { return r.Audit.Verb }),
		s("audit.user", decode.MaxField, audit, "the requesting user", func(r *decode.Record) string { return r.Audit.User }),
		list("audit.groups", audit, "the user's groups", func(r *decode.Record) []string { return r.Audit.Groups }),
		s("audit.impersonated_user", decode.MaxField, audit, "the impersonated user, \"\" when none", func(r *decode.Record) string { return r.Audit.Impersonated }),
		s("audit.source_ip", maxShort, audit, "first source IP", func(r *decode.Record) string { return r.Audit.SourceIP }),
		s("audit.user_agent", decode.MaxField, audit, "user agent", func(r *decode.Record) string { return r.Audit.UserAgent }),
		s("audit.uri", decode.MaxField, audit, "request URI", func(r *decode.Record) string { return r.Audit.URI }),
		s("audit.resource", maxName, audit, "resource (pods, secrets, clusterrolebindings ...)", func(r *decode.Record) string { return r.Audit.Resource }),
		s("audit.subresource", maxName, audit, "subresource (exec, attach, log ...)", func(r *decode.Record) string { return r.Audit.Subresource }),
		s("audit.api_group", maxName, audit, `API group ("" for the core group)`, func(r *decode.Record) string { return r.Audit.APIGroup }),
		s("audit.ns", maxName, audit, "namespace of the object", func(r *decode.Record) string { return r.Audit.Namespace }),
		s("audit.name", maxName, audit, "name of the object", func(r *decode.Record) string { return r.Audit.Name }),
		n("audit.code", audit, "response status code (0 when not yet known)", func(r *decode.Record) int { return r.Audit.Code }),
		s("audit.decision", maxShort, audit, `authorization decision: "allow", "forbid" or ""`, func(r *decode.Record) string { return r.Audit.Decision }),
		s("audit.reason", decode.MaxField, audit, "authorization reason", func(r *decode.Record) string { return r.Audit.Reason }),
		s("audit.role_ref", maxName, audit, "roleRef.name of a RoleBinding or ClusterRoleBinding written", func(r *decode.Record) string { return r.Audit.RoleRef }),
		s("audit.role_ref_kind", maxShort, audit, `roleRef.kind: "ClusterRole" or "Role"`, func(r *decode.Record) string { return r.Audit.RoleRefKind }),
		list("audit.subjects", audit, `subjects of the binding ("User:alice", "Group:dev", "ServiceAccount:ns/name")`, func(r *decode.Record) []string { return r.Audit.Subjects }),
		s("audit.level", maxShort, audit, "audit level: Metadata, Request, RequestResponse", func(r *decode.Record) string { return r.Audit.Level }),
		s("audit.stage", maxShort, audit, "stage: ResponseStarted, ResponseComplete, Panic", func(r *decode.Record) string { return r.Audit.Stage }),
	}
}

func celVars(fs []field) []cel.Var {
	out := make([]cel.Var, len(fs))
	for i, f := range fs {
		out[i] = cel.Var{Name: f.name, Type: f.typ, MaxSize: f.size, ElemSize: f.elem, KeySize: f.key, Doc: f.doc}
	}
	return out
}

// FieldDoc describes one field, for documentation.
type FieldDoc struct {
	Name, Type, Doc string
	Sources         []decode.Source
}

// Fields lists the fields rules read, in documentation order.
func Fields() []FieldDoc {
	var out []FieldDoc
	for _, f := range fields() {
		srcs := ruledoc.Members(decode.Sources, f.sources)
		out = append(out, FieldDoc{Name: f.name, Type: f.typ.String(), Doc: f.doc, Sources: srcs})
	}
	return out
}

// sourceNames lists the names of a set, in decode.Sources order.
func sourceNames(s sourceSet) []string { return ruledoc.Names(decode.Sources, s) }

// knownTypes is every event type the decoders set (auditd types are open-ended: auditd_*).
func knownTypes() map[string]bool {
	types := []string{
		decode.TypeSSHAuthFailed, decode.TypeSSHInvalidUser, decode.TypeSSHNotAllowed, decode.TypeSSHMaxAuth,
		decode.TypeSSHAuthError, decode.TypeSSHAccepted, decode.TypeSSHPreauthClose, decode.TypeSSHNegotiation,
		decode.TypePAMAuthFailed, decode.TypePAMSessionOpened, decode.TypePAMSessionClosed,
		decode.TypeSudoAuthFailed, decode.TypeSudoNotAllowed, decode.TypeSudoCommand, decode.TypeSuFailed, decode.TypeSuSession,
		decode.TypeUserAdded, decode.TypeUserDeleted, decode.TypeUserModified, decode.TypeGroupAdded, decode.TypeGroupDeleted,
		decode.TypeGroupModified, decode.TypeGroupMemberAdded, decode.TypeGroupMemberRemoved, decode.TypePasswordChanged,
		decode.TypeServiceStarted, decode.TypeServiceStopping, decode.TypeServiceStopped, decode.TypeServiceFailed,
		decode.TypeServiceKilled, decode.TypeJournalVacuum, decode.TypeK8sAudit,
		decode.TypeLogTruncated, decode.TypeLogRemoved, decode.TypeLogLost,
	}
	m := make(map[string]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return m
}

// EventTypes lists the event types the decoders set, sorted.
func EventTypes() []string { return slices.Sorted(maps.Keys(knownTypes())) }
