// Package decode turns log lines into typed records: the framing of each log format (syslog
// RFC 3164 and RFC 5424 and rsyslog's ISO file format, journald's JSON export, the CRI and
// Docker json-file container log formats, klog for the kubelet, Kubernetes audit events, auditd
// records) and, inside syslog and journal messages, the programs whose lines matter for
// security (sshd, sudo, su, the shadow utilities, PAM, systemd, journald, the kernel's audit
// lines). Decoders are pure functions of a line (and a path for container logs), tested on
// lines the real programs wrote on Debian 12, and fuzzed.
package decode

import (
	"errors"
	"time"
)

// Source is where a record came from; log rules select sources by these names.
type Source string

const (
	SourceSyslog    Source = "syslog"    // syslog files (auth.log, secure, messages, syslog)
	SourceJournal   Source = "journal"   // the systemd journal
	SourceContainer Source = "container" // container runtime logs (CRI, Docker json-file)
	SourceKubelet   Source = "kubelet"   // the kubelet's klog file
	SourceK8sAudit  Source = "k8s_audit" // the Kubernetes API server's audit log
	SourceAuditd    Source = "auditd"    // the Linux audit daemon's log
	SourceFile      Source = "file"      // changes to log files themselves (truncated, removed)
)

// Sources lists every source, in documentation order.
var Sources = []Source{SourceSyslog, SourceJournal, SourceContainer, SourceKubelet, SourceK8sAudit, SourceAuditd, SourceFile}

// Event types set by the decoders (Record.Type). A line no decoder classifies has Type "".
const (
	// sshd
	TypeSSHAuthFailed   = "ssh_auth_failed"   // Failed <method> for [invalid user] U from IP port P
	TypeSSHInvalidUser  = "ssh_invalid_user"  // Invalid user U from IP port P
	TypeSSHNotAllowed   = "ssh_not_allowed"   // User U from IP not allowed because ..., ROOT LOGIN REFUSED
	TypeSSHMaxAuth      = "ssh_max_auth"      // maximum authentication attempts exceeded, Too many authentication failures
	TypeSSHAuthError    = "ssh_auth_error"    // Authentication failure for U from IP, User not known to the underlying authentication module, Auth fail disconnect
	TypeSSHAccepted     = "ssh_accepted"      // Accepted <method> for U from IP port P
	TypeSSHPreauthClose = "ssh_preauth_close" // Connection closed / Disconnected ... [preauth]
	TypeSSHNegotiation  = "ssh_negotiation"   // Unable to negotiate, banner exchange: invalid format
	// PAM (any program)
	TypePAMAuthFailed    = "pam_auth_failed"    // pam_unix(SERVICE:auth): authentication failure
	TypePAMSessionOpened = "pam_session_opened" // pam_unix(SERVICE:session): session opened for user U
	TypePAMSessionClosed = "pam_session_closed"
	// sudo and su
	TypeSudoAuthFailed = "sudo_auth_failed" // U : N incorrect password attempts ; ... COMMAND=...
	TypeSudoNotAllowed = "sudo_not_allowed" // U : user NOT in sudoers / command not allowed ; ...
	TypeSudoCommand    = "sudo_command"     // U : TTY=... ; PWD=... ; USER=... ; COMMAND=...
	TypeSuFailed       = "su_failed"        // FAILED SU (to T) U on TTY
	TypeSuSession      = "su_session"       // (to T) U on TTY
	// accounts (shadow utilities, passwd, chpasswd)
	TypeUserAdded          = "user_added"           // new user: name=U, UID=...
	TypeUserDeleted        = "user_deleted"         // delete user 'U'
	TypeUserModified       = "user_modified"        // change user 'U' ..., lock/unlock, rename
	TypeGroupAdded         = "group_added"          // new group: name=G, GID=...
	TypeGroupDeleted       = "group_deleted"        // group 'G' removed
	TypeGroupModified      = "group_modified"       // group changed in /etc/group
	TypeGroupMemberAdded   = "group_member_added"   // add 'U' to group 'G', user U added by R to group G
	TypeGroupMemberRemoved = "group_member_removed" // delete 'U' from group 'G', user U removed by R from group G
	TypePasswordChanged    = "password_changed"     // password for 'U' changed by 'R', pam_unix(passwd:chauthtok): password changed for U
	// systemd and journald
	TypeServiceStarted  = "service_started"  // Started UNIT - Description.
	TypeServiceStopping = "service_stopping" // Stopping UNIT - Description...
	TypeServiceStopped  = "service_stopped"  // Stopped UNIT - Description.
	TypeServiceFailed   = "service_failed"   // Failed to start UNIT, UNIT: Failed with result '...'
	TypeServiceKilled   = "service_killed"   // UNIT: Main process exited, code=killed, status=9/KILL
	TypeJournalVacuum   = "journal_vacuum"   // Deleted archived journal ..., Vacuuming done, freed ...
	// auditd and the kernel's audit lines: "auditd_" + the record type in lower case
	// ("auditd_user_auth", "auditd_add_user"); Outcome from res=.
	TypeAuditdPrefix = "auditd_"
	// Kubernetes audit: every event.
	TypeK8sAudit = "k8s_audit"
	// Log files (SourceFile).
	TypeLogTruncated = "log_truncated" // a log file shrank with no copy beside it: cleared
	TypeLogRemoved   = "log_removed"   // a log file was removed
	TypeLogLost      = "log_lost"      // lines could not be read (rotated away while stopped)
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Bounds on decoded values, so that rule costs are bounded (see the rules package).
const (
	MaxLine     = 64 << 10 // a line longer than this is decoded from its beginning
	MaxMessage  = 8 << 10  // Record.Message
	MaxField    = 1024     // most string fields
	MaxFields   = 32       // entries of Record.Fields
	MaxList     = 64       // list fields (audit groups, subjects)
	maxTagBytes = 64       // a syslog TAG longer than this is not a program name
)

// ErrFormat: the line is not in the decoder's format (the record keeps what was decoded up to
// the error; the line is still evaluated with Message set to the line).
var ErrFormat = errors.New("decode: not in the expected format")

// Record is one decoded line. Zero values mean unknown: "" for strings, -1 for numbers that
// can be 0 (PID, UID, GID, facility, severity), 0 for ports and counts.
type Record struct {
	// Framing.
	Source   Source
	Format   string    // "rfc3164", "rfc5424", "iso", "journal", "cri", "docker", "klog", "k8s-audit", "auditd"
	Path     string    // the file the line came from ("journal" for the journal)
	Time     time.Time // the line's own time stamp (zero when it has none)
	Host     string
	Program  string // syslog APP-NAME / TAG, journal SYSLOG_IDENTIFIER
	PID      int
	Facility int // syslog facility number
	Severity int // syslog severity number
	Unit     string
	Message  string
	Line     string // the whole line (bounded by MaxLine)
	// Count is how many occurrences the line stands for: rsyslog's "message repeated N times"
	// counts N; every other line 1.
	Count int

	// Classification.
	Type    string
	Outcome string

	// Typed fields extracted by the program decoders.
	User       string // the acting or authenticating user
	TargetUser string // sudo USER=, su target, the account changed
	UID        int
	SrcIP      string
	SrcPort    int
	Group      string
	GID        int
	Cmdline    string // sudo COMMAND=
	TTY        string
	Cwd        string
	AuthMethod string // password, publickey, keyboard-interactive/pam ...
	Attempts   int    // sudo's "N incorrect password attempts"
	PAMService string // the PAM service of pam_* lines (sshd, sudo, su, login ...)
	FilePath   string // SourceFile: the log file
	SizeBefore int64  // SourceFile: size before
	SizeAfter  int64  // SourceFile: size after
	Container  Container
	Audit      K8sAudit
	Fields     map[string]string // other key=value pairs (SD params, auditd fields, klog pairs)
}

// Container names the container a container log line came from.
type Container struct {
	ID        string
	Name      string
	Pod       string
	Namespace string
	PodUID    string
	Stream    string // stdout, stderr
	Runtime   string // "cri", "docker"
}

// K8sAudit holds the fields of a Kubernetes audit event rules read.
type K8sAudit struct {
	AuditID      string
	Level        string
	Stage        string
	Verb         string
	User         string
	Groups       []string
	Impersonated string
	SourceIP     string
	UserAgent    string
	URI          string
	Resource     string
	Subresource  string
	APIGroup     string
	Namespace    string
	Name         string
	Code         int
	Decision     string // authorization.k8s.io/decision annotation
	Reason       string // authorization.k8s.io/reason annotation
	RoleRef      string // roleRef.name of a (Cluster)RoleBinding in the request or response
	RoleRefKind  string
	Subjects     []string // subjects of a binding, as Kind:namespace/name or Kind:name
}

// Reset clears r for the next line, keeping allocated capacity.
func (r *Record) Reset() {
	fields := r.Fields
	groups, subjects := r.Audit.Groups[:0], r.Audit.Subjects[:0]
	*r = Record{PID: -1, UID: -1, GID: -1, Facility: -1, Severity: -1, Count: 1}
	if fields != nil {
		clear(fields)
		r.Fields = fields
	}
	r.Audit.Groups, r.Audit.Subjects = groups, subjects
}

// SetField records an extra key/value pair (at most MaxFields, values cut at MaxField).
func (r *Record) SetField(k, v string) {
	if r.Fields == nil {
		r.Fields = make(map[string]string, 8)
	}
	if len(r.Fields) >= MaxFields {
		if _, ok := r.Fields[k]; !ok {
			return
		}
	}
	r.Fields[cut(k, 64)] = cut(v, MaxField)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
