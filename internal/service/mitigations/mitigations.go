// Package mitigations is the queue of isolate and terminate requests on
// Kubernetes pods. Only the cluster component changes Kubernetes objects:
// continuous compliance (on the server) and the node agents (a runtime
// rule matched in a pod; an agent holds no Kubernetes write permission)
// queue requests here, the cluster component of the pod's cluster polls
// its pending ones, executes them (isolate: a quarantine NetworkPolicy
// selecting exactly the pod; terminate: the pod deleted, its controller
// deciding what replaces it) and reports each outcome.
package mitigations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Store is what the service needs of the store.
type Store interface {
	store.MitigationStore
	GetClusterObject(ctx context.Context, cluster, kind, namespace, name string) (store.ClusterObject, error)
}

// Service queues, hands out and records mitigations.
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

// Requester names the server's own requests (continuous compliance).
const Requester = "server"

func checkAction(a model.Action) error {
	if a != model.ActionIsolate && a != model.ActionTerminate {
		return service.Invalid("action %q: want isolate or terminate", truncate(string(a)))
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max || !utf8.ValidString(v) {
		return service.Invalid("%s: at most %d bytes of UTF-8", field, max)
	}
	return nil
}

// Request queues a node agent's request for a pod on its node. The pod
// must be in the cluster's inventory, on the agent's node: an agent acts
// only where it runs. A request repeated with the same event ID and
// action is the same request.
func (s *Service) Request(ctx context.Context, r api.MitigationRequest) (store.Mitigation, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleAgent {
		return store.Mitigation{}, fmt.Errorf("%w: only an agent token requests mitigations", auth.ErrForbidden)
	}
	if p.Cluster == "" {
		return store.Mitigation{}, service.Invalid("this agent's token belongs to no cluster: it acts on its host itself")
	}
	if err := checkAction(r.Action); err != nil {
		return store.Mitigation{}, err
	}
	for _, f := range [][2]string{{"eventId", r.EventID}, {"node", r.Node}, {"namespace", r.Namespace}, {"pod", r.Pod},
		{"container", r.Container}, {"rule", r.Rule}} {
		if err := checkText(f[0], f[1], 256); err != nil {
			return store.Mitigation{}, err
		}
	}
	if r.Node == "" || r.Namespace == "" || r.Pod == "" {
		return store.Mitigation{}, service.Invalid("node, namespace and pod are required")
	}
	pod, err := s.st.GetClusterObject(ctx, p.Cluster, store.KindPod, r.Namespace, r.Pod)
	if errors.Is(err, store.ErrNotFound) {
		return store.Mitigation{}, service.Invalid("pod %s/%s is not in cluster %q's inventory", r.Namespace, r.Pod, p.Cluster)
	}
	if err != nil {
		return store.Mitigation{}, fmt.Errorf("mitigation: %w", err)
	}
	if pod.Node != r.Node {
		return store.Mitigation{}, fmt.Errorf("%w: pod %s/%s runs on node %q, not on %q", auth.ErrForbidden, r.Namespace, r.Pod, pod.Node, r.Node)
	}
	return s.enqueue(ctx, store.Mitigation{Cluster: p.Cluster, Action: string(r.Action), Namespace: r.Namespace, Pod: r.Pod,
		PodUID: pod.UID, Node: r.Node, Container: r.Container, Source: string(model.SourceRuntime), Rule: r.Rule,
		EventID: r.EventID, RequestedBy: p.TokenName})
}

// Enqueue queues the server's own request (continuous compliance).
func (s *Service) Enqueue(ctx context.Context, m store.Mitigation) (store.Mitigation, error) {
	if err := checkAction(model.Action(m.Action)); err != nil {
		return store.Mitigation{}, err
	}
	m.RequestedBy = Requester
	return s.enqueue(ctx, m)
}

func (s *Service) enqueue(ctx context.Context, m store.Mitigation) (store.Mitigation, error) {
	m.CreatedAt = s.now().UTC()
	out, created, err := s.st.CreateMitigation(ctx, m)
	if err != nil {
		return store.Mitigation{}, fmt.Errorf("mitigation: %w", err)
	}
	if created {
		s.log.Info("mitigation queued", "id", out.ID, "cluster", out.Cluster, "action", out.Action, "pod", out.Namespace+"/"+out.Pod,
			"source", out.Source, "rule", out.Rule, "by", out.RequestedBy)
	}
	return out, nil
}

func clusterCaller(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleCluster || p.Cluster == "" {
		return nil, fmt.Errorf("%w: only a cluster token executes mitigations", auth.ErrForbidden)
	}
	return p, nil
}

// Pending returns the calling cluster component's pending requests, oldest first.
func (s *Service) Pending(ctx context.Context) ([]store.Mitigation, error) {
	p, err := clusterCaller(ctx)
	if err != nil {
		return nil, err
	}
	return s.st.PendingMitigations(ctx, p.Cluster, api.MaxMitigationsPending)
}

// Complete records what the calling cluster component did about request id.
func (s *Service) Complete(ctx context.Context, id int64, o api.MitigationOutcome) (store.Mitigation, error) {
	p, err := clusterCaller(ctx)
	if err != nil {
		return store.Mitigation{}, err
	}
	if err := checkText("error", o.Error, 4096); err != nil {
		return store.Mitigation{}, err
	}
	if err := checkText("detail", o.Detail, 4096); err != nil {
		return store.Mitigation{}, err
	}
	state := store.MitigationDone
	if !o.Done {
		state = store.MitigationFailed
		if o.Error == "" {
			return store.Mitigation{}, service.Invalid("a failed mitigation says why (error)")
		}
	}
	m, err := s.st.CompleteMitigation(ctx, p.Cluster, id, state, o.Error, o.Detail, s.now().UTC())
	if err != nil {
		return store.Mitigation{}, fmt.Errorf("mitigation: %w", err)
	}
	s.log.Info("mitigation executed", "id", id, "cluster", p.Cluster, "action", m.Action, "pod", m.Namespace+"/"+m.Pod,
		"state", m.State, "error", m.Error)
	return m, nil
}

// List lists requests, newest first.
func (s *Service) List(ctx context.Context, f store.MitigationFilter) ([]store.Mitigation, error) {
	switch f.State {
	case "", store.MitigationPending, store.MitigationDone, store.MitigationFailed:
	default:
		return nil, service.Invalid("state %q: want pending, done or failed", truncate(f.State))
	}
	if len(f.Cluster) > 100 {
		return nil, service.Invalid("cluster: at most 100 bytes")
	}
	return s.st.ListMitigations(ctx, f)
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
