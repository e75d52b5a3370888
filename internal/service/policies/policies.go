// Package policies is the policy service: applying a policy document (a new
// version when its content changed), reading policies and their versions,
// deleting them, and assigning one policy to each cluster. Documents are
// parsed and compiled with internal/policy before they are stored, so a
// policy with an error (a bad field, a CEL expression over its cost limit)
// is refused at apply, with its line, and never reaches a cluster. The API
// (/api/v1/policies), the console's Policies page and `mamori policy` all
// call it.
package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"mamori/internal/auth"
	"mamori/internal/policy"
	"mamori/internal/service"
	"mamori/internal/store"
)

// MaxFileName bounds the file name a caller gives for error messages.
const MaxFileName = 255

// Store is what the service needs of the store.
type Store interface {
	store.PolicyStore
	GetCluster(ctx context.Context, id int64) (store.Cluster, error)
	ListClusters(ctx context.Context) ([]store.Cluster, error)
}

// Service manages policies.
type Service struct {
	st  Store
	log *slog.Logger
	now func() time.Time
}

// New returns the service over st.
func New(st Store, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, log: log, now: now}
}

// View is one version of a policy with what its document says.
type View struct {
	// Version is the version shown (the latest, unless asked for another),
	// its document included.
	Version store.PolicyVersion
	// Latest is the policy's latest version number.
	Latest               int
	CreatedAt, UpdatedAt time.Time
	// Clusters enforce the policy's latest version.
	Clusters []string
	// Summary is what the document says; ParseError is set instead when a
	// stored document no longer parses (written by another mamori version).
	Summary    Summary
	ParseError string
	Warnings   []string
}

// Summary lists a policy's rules, exceptions and runtime rulesets.
type Summary struct {
	Description                  string
	UnknownImages, OnScanFailure string
	Rules                        []Rule
	Exceptions                   []Exception
	Runtime                      []Ruleset
}

// Rule is one admission or compliance rule.
type Rule struct {
	Section     string // "admission" or "compliance"
	Name        string
	Action      string
	Criterion   string // "podSecurity", "vulnerabilities", "cel" ...
	Description string
	Scope       string // "" for everywhere
}

// Exception is one exception, with whether it has expired.
type Exception struct {
	Name, Reason, Expires string
	Expired               bool
	Scope                 string
}

// Ruleset is one runtime ruleset reference.
type Ruleset struct {
	Ruleset, Action, Scope string
	Rules                  map[string]string
}

// Applied is the outcome of an apply.
type Applied struct {
	View
	// Created: the policy is new. Changed: a new version was stored (false
	// when the document equals the latest version).
	Created, Changed bool
}

// Apply checks a policy document (YAML or JSON) and stores it as the
// policy's next version. file names the document in error messages.
func (s *Service) Apply(ctx context.Context, file string, doc []byte) (Applied, error) {
	file = strings.TrimSpace(file)
	if file == "" {
		file = "policy.yaml"
	}
	if len(file) > MaxFileName || strings.IndexFunc(file, unicode.IsControl) >= 0 {
		return Applied{}, service.Invalid("file name: at most %d characters, no control characters", MaxFileName)
	}
	file = filepath.Base(file)
	if len(doc) > policy.MaxPolicySize {
		return Applied{}, service.Invalid("policy of %d bytes exceeds %d", len(doc), policy.MaxPolicySize)
	}
	p, err := policy.Parse(file, doc)
	if err != nil {
		return Applied{}, service.Invalid("%s", err)
	}
	ev, err := policy.Compile(p)
	if err != nil {
		return Applied{}, service.Invalid("%s", err)
	}
	sum := sha256.Sum256(doc)
	by := "system"
	if pr, ok := auth.PrincipalFromContext(ctx); ok {
		by = pr.TokenName
	}
	_, getErr := s.st.GetPolicy(ctx, p.Name)
	created := errors.Is(getErr, store.ErrNotFound)
	v, changed, err := s.st.PutPolicy(ctx, store.PolicyPut{Name: p.Name, Document: string(doc),
		Digest: "sha256:" + hex.EncodeToString(sum[:]), CreatedBy: by, At: s.now().UTC()})
	if err != nil {
		return Applied{}, fmt.Errorf("policy: %w", err)
	}
	if changed {
		s.log.Info("policy applied", append([]any{"policy", p.Name, "version", v.Version, "created", created && v.Version == 1}, service.Actor(ctx)...)...)
	}
	stored, err := s.st.GetPolicy(ctx, p.Name)
	if err != nil {
		return Applied{}, fmt.Errorf("policy: %w", err)
	}
	view := s.view(stored, v)
	view.Warnings = ev.Warnings()
	return Applied{View: view, Created: created && v.Version == 1, Changed: changed}, nil
}

// Get returns a policy's latest version.
func (s *Service) Get(ctx context.Context, name string) (View, error) {
	p, err := s.st.GetPolicy(ctx, name)
	if err != nil {
		return View{}, fmt.Errorf("policy: %w", err)
	}
	return s.view(p, p.Latest), nil
}

// GetVersion returns one version of a policy.
func (s *Service) GetVersion(ctx context.Context, name string, version int) (View, error) {
	if version < 1 {
		return View{}, service.Invalid("version %d: versions start at 1", version)
	}
	p, err := s.st.GetPolicy(ctx, name)
	if err != nil {
		return View{}, fmt.Errorf("policy: %w", err)
	}
	v, err := s.st.GetPolicyVersion(ctx, name, version)
	if err != nil {
		return View{}, fmt.Errorf("policy: %w", err)
	}
	return s.view(p, v), nil
}

// List lists the policies by name, each at its latest version.
func (s *Service) List(ctx context.Context) ([]View, error) {
	ps, err := s.st.ListPolicies(ctx)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	out := make([]View, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.view(p, p.Latest))
	}
	return out, nil
}

// Versions lists a policy's versions, newest first (without documents).
func (s *Service) Versions(ctx context.Context, name string) ([]store.PolicyVersion, error) {
	vs, err := s.st.ListPolicyVersions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return vs, nil
}

// Delete deletes a policy and its versions; refused (store.ErrConflict)
// while a cluster enforces it.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := s.st.DeletePolicy(ctx, name); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	s.log.Info("policy deleted", append([]any{"policy", name}, service.Actor(ctx)...)...)
	return nil
}

// Assign makes a cluster enforce a policy ("" for none).
func (s *Service) Assign(ctx context.Context, clusterID int64, name string) (store.Cluster, error) {
	name = strings.TrimSpace(name)
	before, err := s.st.GetCluster(ctx, clusterID)
	if err != nil {
		return store.Cluster{}, fmt.Errorf("cluster: %w", err)
	}
	c, err := s.st.SetClusterPolicy(ctx, clusterID, name)
	if err != nil {
		return store.Cluster{}, fmt.Errorf("cluster policy: %w", err)
	}
	if before.Policy != name {
		s.log.Info("cluster policy assigned", append([]any{"cluster", c.Name, "policy", name, "previous", before.Policy}, service.Actor(ctx)...)...)
	}
	return c, nil
}

// Clusters lists the clusters with the policy each enforces, for choosing
// where a policy applies.
func (s *Service) Clusters(ctx context.Context) ([]store.Cluster, error) {
	cs, err := s.st.ListClusters(ctx)
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	return cs, nil
}

// ForComponent returns the latest version of the policy the calling
// cluster component or node agent enforces: its token's cluster's policy.
// store.ErrNotFound when the cluster has none.
func (s *Service) ForComponent(ctx context.Context) (store.PolicyVersion, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || (p.Role != auth.RoleCluster && p.Role != auth.RoleAgent) {
		return store.PolicyVersion{}, fmt.Errorf("%w: only a cluster or agent token has a policy to enforce", auth.ErrForbidden)
	}
	if p.Cluster == "" {
		return store.PolicyVersion{}, fmt.Errorf("policy: this agent belongs to no cluster: %w", store.ErrNotFound)
	}
	v, err := s.st.ClusterPolicy(ctx, p.Cluster)
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("policy: %w", err)
	}
	return v, nil
}

// view parses a stored version for display.
func (s *Service) view(p store.Policy, v store.PolicyVersion) View {
	out := View{Version: v, Latest: p.Latest.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Clusters: p.Clusters}
	if out.Clusters == nil {
		out.Clusters = []string{}
	}
	doc, err := policy.Parse(p.Name+".yaml", []byte(v.Document))
	if err != nil {
		out.ParseError = err.Error()
		return out
	}
	out.Summary = Summarize(doc, s.now())
	return out
}

// Summarize lists what a policy says, with the exceptions' expiry judged at now.
func Summarize(p *policy.Policy, now time.Time) Summary {
	sum := Summary{Description: p.Description, UnknownImages: p.UnknownImages.Action, OnScanFailure: p.UnknownImages.OnScanFailure,
		Rules: []Rule{}, Exceptions: []Exception{}, Runtime: []Ruleset{}}
	if sum.UnknownImages == "" {
		sum.UnknownImages = policy.UnknownAllow
	}
	if sum.UnknownImages == policy.UnknownScan && sum.OnScanFailure == "" {
		sum.OnScanFailure = policy.UnknownAllow
	}
	for _, sec := range []struct {
		name  string
		rules []policy.Rule
	}{{"admission", p.Admission}, {"compliance", p.Compliance}} {
		for i := range sec.rules {
			r := &sec.rules[i]
			crit := r.Criterion()
			if crit == "podSecurity" {
				crit += " (" + r.PodSecurity.Level + ")"
			}
			sum.Rules = append(sum.Rules, Rule{Section: sec.name, Name: r.Name, Action: string(r.Action), Criterion: crit,
				Description: r.Description, Scope: matchScope(r.Match)})
		}
	}
	for _, x := range p.Exceptions {
		e := Exception{Name: x.Name, Reason: x.Reason, Expires: x.Expires}
		if t, ok := policy.ExceptionExpiry(x); ok && !now.Before(t) {
			e.Expired = true
		}
		var parts []string
		if len(x.Rules) > 0 {
			parts = append(parts, "rules "+strings.Join(x.Rules, ", "))
		}
		if len(x.Namespaces) > 0 {
			parts = append(parts, "namespaces "+strings.Join(x.Namespaces, ", "))
		}
		if x.Selector != nil {
			parts = append(parts, "selector "+selectorString(x.Selector))
		}
		if len(x.Images) > 0 {
			parts = append(parts, "images "+strings.Join(x.Images, ", "))
		}
		if len(x.Vulnerabilities) > 0 {
			parts = append(parts, "vulnerabilities "+strings.Join(x.Vulnerabilities, ", "))
		}
		e.Scope = strings.Join(parts, "; ")
		sum.Exceptions = append(sum.Exceptions, e)
	}
	for _, r := range p.Runtime {
		rs := Ruleset{Ruleset: r.Ruleset, Action: string(r.Action), Scope: matchScope(r.Match), Rules: map[string]string{}}
		for k, v := range r.Rules {
			rs.Rules[k] = string(v)
		}
		sum.Runtime = append(sum.Runtime, rs)
	}
	return sum
}

func matchScope(m *policy.Match) string {
	if m == nil {
		return ""
	}
	var parts []string
	if len(m.Namespaces) > 0 {
		parts = append(parts, "namespaces "+strings.Join(m.Namespaces, ", "))
	}
	if len(m.ExcludeNamespaces) > 0 {
		parts = append(parts, "not namespaces "+strings.Join(m.ExcludeNamespaces, ", "))
	}
	if m.Selector != nil {
		parts = append(parts, "selector "+selectorString(m.Selector))
	}
	if m.NamespaceSelector != nil {
		parts = append(parts, "namespace selector "+selectorString(m.NamespaceSelector))
	}
	if len(m.Kinds) > 0 {
		parts = append(parts, "kinds "+strings.Join(m.Kinds, ", "))
	}
	return strings.Join(parts, "; ")
}

func selectorString(s *policy.LabelSelector) string {
	var parts []string
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+s.MatchLabels[k])
	}
	for _, r := range s.MatchExpressions {
		switch r.Operator {
		case "In", "NotIn":
			parts = append(parts, r.Key+" "+strings.ToLower(r.Operator)+" ("+strings.Join(r.Values, ", ")+")")
		case "Exists":
			parts = append(parts, r.Key)
		default:
			parts = append(parts, "!"+r.Key)
		}
	}
	return strings.Join(parts, ", ")
}
