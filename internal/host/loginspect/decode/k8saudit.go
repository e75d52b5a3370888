package decode

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaxAuditLine bounds one audit event: RequestResponse events carry whole objects.
const MaxAuditLine = 1 << 20

// K8sAuditLog decodes the Kubernetes API server's audit log (--audit-log-path; JSON lines,
// audit.k8s.io/v1 Event). The request or response object of a (Cluster)RoleBinding is read for
// its roleRef and subjects; nothing else of the objects is kept.
type K8sAuditLog struct{}

var _ Decoder = (*K8sAuditLog)(nil)

// Name implements Decoder.
func (*K8sAuditLog) Name() string { return "k8s-audit" }

type auditUser struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

type auditEvent struct {
	Kind       string     `json:"kind"`
	APIVersion string     `json:"apiVersion"`
	Level      string     `json:"level"`
	AuditID    string     `json:"auditID"`
	Stage      string     `json:"stage"`
	RequestURI string     `json:"requestURI"`
	Verb       string     `json:"verb"`
	User       auditUser  `json:"user"`
	Imp        *auditUser `json:"impersonatedUser"`
	SourceIPs  []string   `json:"sourceIPs"`
	UserAgent  string     `json:"userAgent"`
	ObjectRef  *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestObject  json.RawMessage   `json:"requestObject"`
	ResponseObject json.RawMessage   `json:"responseObject"`
	Received       string            `json:"requestReceivedTimestamp"`
	StageTime      string            `json:"stageTimestamp"`
	Annotations    map[string]string `json:"annotations"`
}

type binding struct {
	RoleRef *struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"roleRef"`
	Subjects []struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"subjects"`
}

// Decode implements Decoder.
func (*K8sAuditLog) Decode(line []byte, path string, r *Record) error {
	r.Source, r.Format, r.Path, r.Program, r.Type = SourceK8sAudit, "k8s-audit", path, "kube-apiserver", TypeK8sAudit
	if len(line) > MaxAuditLine {
		r.Type = ""
		r.Line = lineString(line)
		r.Message = cut(r.Line, MaxMessage)
		return fmt.Errorf("%w: audit event longer than %d bytes", ErrFormat, MaxAuditLine)
	}
	var e auditEvent
	if err := json.Unmarshal(line, &e); err != nil || e.Kind != "Event" || !strings.HasPrefix(e.APIVersion, "audit.k8s.io/") {
		r.Type = ""
		r.Line = lineString(line)
		r.Message = cut(r.Line, MaxMessage)
		if err == nil {
			err = fmt.Errorf("kind %q apiVersion %q", cut(e.Kind, 40), cut(e.APIVersion, 40))
		}
		return fmt.Errorf("%w: not an audit event: %v", ErrFormat, err)
	}
	a := &r.Audit
	a.AuditID, a.Level, a.Stage, a.Verb = cut(e.AuditID, 64), cut(e.Level, 32), cut(e.Stage, 32), cut(e.Verb, 32)
	a.User = cut(e.User.Username, MaxField)
	for _, g := range e.User.Groups {
		if len(a.Groups) < MaxList {
			a.Groups = append(a.Groups, cut(g, MaxField))
		}
	}
	if e.Imp != nil {
		a.Impersonated = cut(e.Imp.Username, MaxField)
	}
	if len(e.SourceIPs) > 0 {
		if ip, ok := parseIP(e.SourceIPs[0]); ok {
			a.SourceIP, r.SrcIP = ip, ip
		}
	}
	a.UserAgent, a.URI = cut(e.UserAgent, MaxField), cut(e.RequestURI, MaxField)
	if o := e.ObjectRef; o != nil {
		a.Resource, a.Namespace, a.Name = cut(o.Resource, 256), cut(o.Namespace, 256), cut(o.Name, 256)
		a.APIGroup, a.Subresource = cut(o.APIGroup, 256), cut(o.Subresource, 256)
	}
	if e.ResponseStatus != nil {
		a.Code = e.ResponseStatus.Code
	}
	a.Decision = cut(e.Annotations["authorization.k8s.io/decision"], 32)
	a.Reason = cut(e.Annotations["authorization.k8s.io/reason"], MaxField)
	if a.Resource == "rolebindings" || a.Resource == "clusterrolebindings" {
		for _, obj := range []json.RawMessage{e.RequestObject, e.ResponseObject} {
			var b binding
			if len(obj) == 0 || json.Unmarshal(obj, &b) != nil || b.RoleRef == nil {
				continue
			}
			a.RoleRef, a.RoleRefKind = cut(b.RoleRef.Name, 256), cut(b.RoleRef.Kind, 64)
			for _, s := range b.Subjects {
				if len(a.Subjects) >= MaxList {
					break
				}
				subj := s.Kind + ":" + s.Name
				if s.Namespace != "" {
					subj = s.Kind + ":" + s.Namespace + "/" + s.Name
				}
				a.Subjects = append(a.Subjects, cut(subj, MaxField))
			}
			break
		}
	}
	for _, ts := range []string{e.StageTime, e.Received} {
		if t, ok := parseISO(ts); ok {
			r.Time = t
			break
		}
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			r.Time = t
			break
		}
	}
	r.User = a.User
	switch {
	case a.Decision == "forbid" || a.Code == 401 || a.Code == 403:
		r.Outcome = OutcomeFailure
	case a.Code >= 200 && a.Code < 400:
		r.Outcome = OutcomeSuccess
	}
	// A one-line summary, for messages and rules that match text.
	var b strings.Builder
	b.WriteString(a.Verb)
	b.WriteByte(' ')
	if a.APIGroup != "" {
		b.WriteString(a.APIGroup)
		b.WriteByte('/')
	}
	b.WriteString(a.Resource)
	if a.Subresource != "" {
		b.WriteByte('/')
		b.WriteString(a.Subresource)
	}
	if a.Name != "" || a.Namespace != "" {
		b.WriteByte(' ')
		if a.Namespace != "" {
			b.WriteString(a.Namespace)
			b.WriteByte('/')
		}
		b.WriteString(a.Name)
	}
	if a.Resource == "" {
		b.WriteString(a.URI)
	}
	fmt.Fprintf(&b, " by %s (%d)", a.User, a.Code)
	r.Message = cut(b.String(), MaxMessage)
	r.Line = r.Message
	return nil
}
