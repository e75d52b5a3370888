// Package inventory is the service of what cluster components report of
// their clusters: nodes, namespaces, pod controllers and pods, with the
// containers that run and the image digest of each (the runtime
// vulnerability view joins them with the scanned images), kept current by
// incremental batches and full resyncs (docs/kubernetes.md). A component
// writes only its own cluster's inventory: the cluster is its token's.
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
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
	store.InventoryStore
	GetCluster(ctx context.Context, id int64) (store.Cluster, error)
}

// Service ingests and lists cluster inventories.
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

// Kinds are the object kinds an inventory holds.
var Kinds = []string{store.KindNode, store.KindNamespace, "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
	"CronJob", "ReplicationController", store.KindPod}

func knownKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// clusterScoped are the kinds without a namespace.
func clusterScoped(k string) bool { return k == store.KindNode || k == store.KindNamespace }

// nameRE: Kubernetes object names are DNS subdomains (nodes, most
// objects) or labels; both fit.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

func checkRef(r api.InventoryRef) error {
	if !knownKind(r.Kind) {
		return service.Invalid("kind %q: want one of %s", truncate(r.Kind), strings.Join(Kinds, ", "))
	}
	if !nameRE.MatchString(r.Name) {
		return service.Invalid("%s name %q: not a Kubernetes name", r.Kind, truncate(r.Name))
	}
	if clusterScoped(r.Kind) != (r.Namespace == "") {
		return service.Invalid("%s %q: a namespace is given for exactly the namespaced kinds", r.Kind, truncate(r.Name))
	}
	if r.Namespace != "" && !nameRE.MatchString(r.Namespace) {
		return service.Invalid("namespace %q: not a Kubernetes name", truncate(r.Namespace))
	}
	if len(r.UID) > 128 || !utf8.ValidString(r.UID) {
		return service.Invalid("uid of %s %q: at most 128 bytes", r.Kind, r.Name)
	}
	return nil
}

// Ingest applies one batch from the calling cluster component.
func (s *Service) Ingest(ctx context.Context, b api.InventoryBatch) (store.InventoryOutcome, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleCluster || p.Cluster == "" {
		return store.InventoryOutcome{}, fmt.Errorf("%w: only a cluster token reports a cluster's inventory", auth.ErrForbidden)
	}
	if n := len(b.Objects) + len(b.Deleted); n > api.MaxInventoryObjects {
		return store.InventoryOutcome{}, service.Invalid("%d objects in one batch: at most %d", n, api.MaxInventoryObjects)
	}
	if b.Generation <= 0 {
		return store.InventoryOutcome{}, service.Invalid("generation %d: a positive number", b.Generation)
	}
	sb := store.InventoryBatch{Generation: b.Generation, Begin: b.Begin, End: b.End}
	for i := range b.Objects {
		o := &b.Objects[i]
		if err := checkRef(o.InventoryRef); err != nil {
			return store.InventoryOutcome{}, service.Invalid("object %d: %v", i, err)
		}
		if len(o.Object) > api.MaxInventoryObjectBytes {
			return store.InventoryOutcome{}, service.Invalid("object %d (%s %s/%s): %d bytes exceed %d", i, o.Kind, o.Namespace, o.Name,
				len(o.Object), api.MaxInventoryObjectBytes)
		}
		if len(o.Object) > 0 && !json.Valid(o.Object) {
			return store.InventoryOutcome{}, service.Invalid("object %d (%s %s/%s): invalid JSON", i, o.Kind, o.Namespace, o.Name)
		}
		so := store.ClusterObject{ObjectRef: store.ObjectRef{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: o.UID},
			ResourceVersion: o.ResourceVersion, Node: o.Node, Phase: o.Phase, Labels: o.Labels, Body: o.Object}
		if o.Owner != nil {
			so.OwnerKind, so.OwnerName = o.Owner.Kind, o.Owner.Name
		}
		for _, c := range o.Containers {
			if c.ImageDigest != "" && !validDigest(c.ImageDigest) {
				return store.InventoryOutcome{}, service.Invalid("object %d: container %q: image digest %q is not sha256:<64 hex>",
					i, truncate(c.Name), truncate(c.ImageDigest))
			}
			so.Containers = append(so.Containers, store.RunningContainer{Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest,
				ContainerID: c.ContainerID, Kind: c.Kind, Running: c.Running})
		}
		sb.Objects = append(sb.Objects, so)
	}
	for i, d := range b.Deleted {
		if err := checkRef(d); err != nil {
			return store.InventoryOutcome{}, service.Invalid("deleted %d: %v", i, err)
		}
		sb.Deleted = append(sb.Deleted, store.ObjectRef{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, UID: d.UID})
	}
	out, err := s.st.ApplyInventory(ctx, p.Cluster, sb, s.now().UTC())
	if err != nil {
		return store.InventoryOutcome{}, fmt.Errorf("inventory: %w", err)
	}
	if b.End {
		s.log.Info("cluster inventory resynced", "cluster", p.Cluster, "generation", b.Generation, "removed", out.Removed)
	}
	return out, nil
}

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// View is one page of a cluster's objects with its counts and sync state.
type View struct {
	Cluster store.Cluster
	Counts  map[string]int
	Page    store.ObjectPage
	Sync    store.InventorySync
}

// Objects lists a page of a cluster's objects.
func (s *Service) Objects(ctx context.Context, clusterID int64, f store.ObjectFilter) (View, error) {
	c, err := s.st.GetCluster(ctx, clusterID)
	if err != nil {
		return View{}, fmt.Errorf("cluster: %w", err)
	}
	if f.Kind != "" && !knownKind(f.Kind) {
		return View{}, service.Invalid("kind %q: want one of %s", truncate(f.Kind), strings.Join(Kinds, ", "))
	}
	if len(f.Query) > 200 || len(f.Namespace) > 253 {
		return View{}, service.Invalid("q and namespace: at most 200 and 253 bytes")
	}
	f.Cluster = c.Name
	v := View{Cluster: c}
	if v.Page, err = s.st.ListClusterObjects(ctx, f); err != nil {
		return View{}, err
	}
	if v.Counts, err = s.st.ClusterObjectCounts(ctx, c.Name); err != nil {
		return View{}, err
	}
	if v.Sync, err = s.st.InventorySync(ctx, c.Name); err != nil {
		return View{}, err
	}
	return v, nil
}

// Summary is what the clusters page shows of a cluster's inventory.
type Summary struct {
	Counts map[string]int
	Sync   store.InventorySync
}

// Summary returns a cluster's object counts and sync state.
func (s *Service) Summary(ctx context.Context, cluster string) (Summary, error) {
	counts, err := s.st.ClusterObjectCounts(ctx, cluster)
	if err != nil {
		return Summary{}, err
	}
	sy, err := s.st.InventorySync(ctx, cluster)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Counts: counts, Sync: sy}, nil
}

// WorkloadOf is the workload a pod belongs to: its top controller, or the pod.
func WorkloadOf(o store.ClusterObject) *model.WorkloadRef {
	if o.OwnerKind != "" {
		return &model.WorkloadRef{Kind: o.OwnerKind, Name: o.OwnerName}
	}
	return &model.WorkloadRef{Kind: o.Kind, Name: o.Name}
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
