// Package identities is the service of machine identities: clusters (one
// cluster component each) and node agents. An admin creates a cluster,
// which gives its first cluster token (shown once); agent tokens are made
// by the token service. Components register at start and send heartbeats;
// the service records their last contact. A component acts only for its
// own identity: the cluster comes from its token, never from its request.
package identities

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"mamori/internal/auth"
	"mamori/internal/service"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
)

var (
	// clusterNameRE: a cluster's name is a label people type and a value
	// events carry: letters, digits, '.', '_' and '-', starting with a
	// letter or digit.
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	// nodeNameRE: Kubernetes node names are DNS subdomains (at most 253
	// characters); host names of bare hosts fit the same rule.
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
)

// maxReportText bounds the free-text fields a component reports.
const maxReportText = 256

// Store is what the service needs of the store.
type Store interface {
	store.ClusterStore
}

// Service manages clusters and agents.
type Service struct {
	st  Store
	tok *tokens.Service
	log *slog.Logger
	now func() time.Time
}

// New returns the service; tok makes the cluster tokens.
func New(st Store, tok *tokens.Service, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, tok: tok, log: log, now: now}
}

// CheckClusterName is the rule for a cluster's name.
func CheckClusterName(name string) error {
	if !clusterNameRE.MatchString(name) {
		return service.Invalid("cluster name %q: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(name))
	}
	return nil
}

// ClusterCreated is a new cluster and its first token (the secret shown once).
type ClusterCreated struct {
	Cluster store.Cluster
	Token   tokens.Created
}

// CreateCluster creates a cluster and its first cluster token.
func (s *Service) CreateCluster(ctx context.Context, name string) (ClusterCreated, error) {
	name = strings.TrimSpace(name)
	if err := CheckClusterName(name); err != nil {
		return ClusterCreated{}, err
	}
	c, err := s.st.CreateCluster(ctx, name, s.now().UTC())
	if err != nil {
		return ClusterCreated{}, fmt.Errorf("cluster: %w", err)
	}
	tk, err := s.tok.Create(ctx, tokens.Request{Name: "cluster " + name, Role: auth.RoleCluster, Cluster: name})
	if err != nil {
		// No cluster without a way to act for it: undo.
		if derr := s.st.DeleteCluster(ctx, c.ID, s.now()); derr != nil {
			s.log.Error("undo cluster creation", "cluster", name, "err", derr)
		}
		return ClusterCreated{}, err
	}
	s.log.Info("cluster created", append([]any{"cluster", name, "clusterID", c.ID, "tokenID", tk.Token.ID}, service.Actor(ctx)...)...)
	return ClusterCreated{Cluster: c, Token: tk}, nil
}

// ListClusters lists the clusters by name.
func (s *Service) ListClusters(ctx context.Context) ([]store.Cluster, error) {
	return s.st.ListClusters(ctx)
}

// DeleteCluster deletes a cluster and its agents and revokes its tokens.
func (s *Service) DeleteCluster(ctx context.Context, id int64) error {
	c, err := s.st.GetCluster(ctx, id)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := s.st.DeleteCluster(ctx, id, s.now().UTC()); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	s.log.Info("cluster deleted, its tokens revoked", append([]any{"cluster", c.Name, "clusterID", id}, service.Actor(ctx)...)...)
	return nil
}

// ClusterReport is what a cluster component reports of itself.
type ClusterReport struct {
	Version, KubernetesVersion string
	Nodes                      int
}

// machine returns the caller when it has role want.
func machine(ctx context.Context, want auth.Role) (*auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != want {
		return nil, fmt.Errorf("%w: only a %s token may do this", auth.ErrForbidden, want)
	}
	return p, nil
}

func checkText(field, v string) error {
	if len(v) > maxReportText || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || !utf8.ValidString(v) {
		return service.Invalid("%s: at most %d printable characters", field, maxReportText)
	}
	return nil
}

// ClusterContact records the calling cluster component's registration
// (register) or heartbeat.
func (s *Service) ClusterContact(ctx context.Context, register bool, r ClusterReport) (store.Cluster, error) {
	p, err := machine(ctx, auth.RoleCluster)
	if err != nil {
		return store.Cluster{}, err
	}
	for _, f := range [][2]string{{"version", r.Version}, {"kubernetesVersion", r.KubernetesVersion}} {
		if err := checkText(f[0], f[1]); err != nil {
			return store.Cluster{}, err
		}
	}
	if r.Nodes < 0 || r.Nodes > 1_000_000 {
		return store.Cluster{}, service.Invalid("nodes: %d is out of range", r.Nodes)
	}
	c, err := s.st.RecordClusterContact(ctx, p.Cluster, store.ClusterContact{At: s.now().UTC(), Register: register,
		Version: r.Version, KubernetesVersion: r.KubernetesVersion, Nodes: r.Nodes})
	if err != nil {
		return store.Cluster{}, fmt.Errorf("cluster: %w", err)
	}
	if register {
		s.log.Info("cluster component registered", "cluster", c.Name, "version", c.Version, "kubernetes", c.KubernetesVersion, "tokenID", p.TokenID)
	}
	return c, nil
}

// AgentReport is what a node agent reports of itself.
type AgentReport struct {
	Node, Hostname, Version, OS, Kernel, Arch string
	// Sensor is the runtime sensor's mode, hooks and missing kinds (zero:
	// not said: the stored one stays).
	Sensor store.AgentSensor
}

// Sensor modes an agent reports (internal/runtime/sensor).
var sensorModes = []string{"", "ebpf", "fallback"}

// maxMissingKinds bounds the kinds an agent says its sensor cannot report
// (the sensor knows about 30 kinds).
const maxMissingKinds = 64

// kindRE is an event kind's name ("connect", "memfd_create").
var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func (r AgentReport) check() error {
	if !nodeNameRE.MatchString(r.Node) {
		return service.Invalid("node %q: 1 to 253 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(r.Node))
	}
	for _, f := range [][2]string{{"hostname", r.Hostname}, {"version", r.Version}, {"os", r.OS}, {"kernel", r.Kernel}, {"arch", r.Arch},
		{"sensor.hooks", r.Sensor.Hooks}} {
		if err := checkText(f[0], f[1]); err != nil {
			return err
		}
	}
	if !slices.Contains(sensorModes, r.Sensor.Mode) {
		return service.Invalid("sensor.mode %q: want ebpf or fallback", truncate(r.Sensor.Mode))
	}
	if r.Sensor.Mode == "" && (r.Sensor.Hooks != "" || len(r.Sensor.Missing) > 0) {
		return service.Invalid("sensor: hooks and missing kinds need the mode")
	}
	if len(r.Sensor.Missing) > maxMissingKinds {
		return service.Invalid("sensor.missing: %d kinds, at most %d", len(r.Sensor.Missing), maxMissingKinds)
	}
	for _, k := range r.Sensor.Missing {
		if !kindRE.MatchString(k) {
			return service.Invalid("sensor.missing: %q is not an event kind", truncate(k))
		}
	}
	return nil
}

// RegisterAgent registers the calling agent (its cluster is its token's)
// or updates what it reported.
func (s *Service) RegisterAgent(ctx context.Context, r AgentReport) (store.Agent, error) {
	p, err := machine(ctx, auth.RoleAgent)
	if err != nil {
		return store.Agent{}, err
	}
	if err := r.check(); err != nil {
		return store.Agent{}, err
	}
	a, err := s.st.RegisterAgent(ctx, store.Agent{Cluster: p.Cluster, Node: r.Node, Hostname: r.Hostname, Version: r.Version,
		OS: r.OS, Kernel: r.Kernel, Arch: r.Arch, TokenID: p.TokenID, LastContact: s.now().UTC(), Sensor: r.Sensor})
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent: %w", err)
	}
	s.log.Info("agent registered", "cluster", a.Cluster, "node", a.Node, "version", a.Version, "agentID", a.ID, "tokenID", p.TokenID)
	return a, nil
}

// AgentHeartbeat records the calling agent's contact; store.ErrNotFound
// when it is not registered (it registers again).
func (s *Service) AgentHeartbeat(ctx context.Context, r AgentReport) (store.Agent, error) {
	p, err := machine(ctx, auth.RoleAgent)
	if err != nil {
		return store.Agent{}, err
	}
	if err := r.check(); err != nil {
		return store.Agent{}, err
	}
	a, err := s.st.AgentHeartbeat(ctx, store.Agent{Cluster: p.Cluster, Node: r.Node, Version: r.Version, Sensor: r.Sensor}, s.now().UTC())
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent: %w", err)
	}
	return a, nil
}

// ListAgents lists the agents by cluster and node.
func (s *Service) ListAgents(ctx context.Context) ([]store.Agent, error) {
	return s.st.ListAgents(ctx)
}

// DeleteAgent forgets an agent (its token stays: revoke it to lock the agent out).
func (s *Service) DeleteAgent(ctx context.Context, id int64) error {
	a, err := s.st.GetAgent(ctx, id)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := s.st.DeleteAgent(ctx, id); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	s.log.Info("agent deleted", append([]any{"cluster", a.Cluster, "node", a.Node, "agentID", id}, service.Actor(ctx)...)...)
	return nil
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
