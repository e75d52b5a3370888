// Package compliance is continuous compliance on the server: the pods
// running in each cluster (its component's inventory) are evaluated with
// the compliance rules of the cluster's policy, with the scan results of
// the image digests that actually run, whenever something that decides
// changes — the policy (a new version or another policy), the vulnerability
// database (a re-match changed findings), the inventory (a pod started or
// changed) — and periodically (exception expiry, scan age and publication
// age move with time). A violation is reported once, when it appears, as a
// compliance event; a rule whose action is isolate or terminate queues the
// request the cluster component executes (service/mitigations).
package compliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/service/images"
	"mamori/internal/service/inventory"
	"mamori/internal/store"
)

// Defaults, each with its reason.
const (
	// DefaultTick is how often each cluster is checked for a change that
	// calls for an evaluation: a few seconds between a policy apply or a
	// re-match and its effect on running pods; the check is three small reads.
	DefaultTick = 5 * time.Second
	// DefaultPeriod re-evaluates a cluster with no change: time-bound
	// criteria (exception expiry, scan age) move on their own.
	DefaultPeriod = 10 * time.Minute
	// maxEventMessage bounds an event's message (the model's limit is 16 KiB).
	maxEventMessage = 8 << 10
	// maxCompiled bounds the compiled policies kept (one per version seen).
	maxCompiled = 64
)

// Store is what the service needs of the store.
type Store interface {
	ListClusters(ctx context.Context) ([]store.Cluster, error)
	ClusterPolicy(ctx context.Context, cluster string) (store.PolicyVersion, error)
	store.InventoryStore
	store.ComplianceStore
	GetMeta(ctx context.Context, key string) (string, error)
}

// Events records the events the service produces (service/events).
type Events interface {
	Record(ctx context.Context, evs []model.Event) error
}

// Mitigations queues isolate/terminate requests (service/mitigations).
type Mitigations interface {
	Enqueue(ctx context.Context, m store.Mitigation) (store.Mitigation, error)
}

// Images returns what is known of an image digest (service/images).
type Images interface {
	ScanDataByDigest(ctx context.Context, digest string) (images.ScanData, error)
}

// Config configures the service; zero fields take the defaults.
type Config struct {
	Tick, Period time.Duration
}

// Service evaluates running pods.
type Service struct {
	st     Store
	events Events
	mit    Mitigations
	images Images
	log    *slog.Logger
	now    func() time.Time
	cfg    Config

	mu       sync.Mutex
	compiled map[string]*policy.Evaluator // by policy digest
}

// New returns the service.
func New(st Store, ev Events, mit Mitigations, im Images, cfg Config, log *slog.Logger, now func() time.Time) *Service {
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, events: ev, mit: mit, images: im, log: log, now: now, cfg: cfg,
		compiled: map[string]*policy.Evaluator{}}
}

// Run checks every cluster each tick until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		s.CheckAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckAll evaluates every cluster whose inputs changed or whose last
// evaluation is older than the period.
func (s *Service) CheckAll(ctx context.Context) {
	cs, err := s.st.ListClusters(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("compliance: list clusters", "err", err)
		}
		return
	}
	for _, c := range cs {
		if _, err := s.Check(ctx, c.Name, false); err != nil && ctx.Err() == nil {
			s.log.Warn("compliance", "cluster", c.Name, "err", err)
		}
	}
}

// Outcome is what one evaluation found.
type Outcome struct {
	Evaluated bool // false: nothing changed since the last run
	Run       store.ComplianceRun
	// Added are the violations new in this run (reported as events).
	Added []store.ComplianceViolation
}

// Check evaluates a cluster when its policy, the matched vulnerability
// database or its inventory changed since the last evaluation, when the
// period has passed, or always with force.
func (s *Service) Check(ctx context.Context, cluster string, force bool) (Outcome, error) {
	now := s.now().UTC()
	run := store.ComplianceRun{Cluster: cluster, EvaluatedAt: now}
	pv, err := s.st.ClusterPolicy(ctx, cluster)
	switch {
	case errors.Is(err, store.ErrNotFound):
		pv = store.PolicyVersion{}
	case err != nil:
		return Outcome{}, fmt.Errorf("policy of cluster %q: %w", cluster, err)
	}
	run.Policy, run.PolicyVersion = pv.Policy, pv.Version
	if v, err := s.st.GetMeta(ctx, store.MetaVulnDBBuiltAt); err == nil {
		run.DBBuiltAt = v
	} else if !errors.Is(err, store.ErrNotFound) {
		return Outcome{}, fmt.Errorf("matched database: %w", err)
	}
	sy, err := s.st.InventorySync(ctx, cluster)
	if err != nil {
		return Outcome{}, err
	}
	run.InventoryAt = sy.ChangedAt
	last, err := s.st.ComplianceRun(ctx, cluster)
	if err != nil {
		return Outcome{}, err
	}
	same := !last.EvaluatedAt.IsZero() && last.Policy == run.Policy && last.PolicyVersion == run.PolicyVersion &&
		last.DBBuiltAt == run.DBBuiltAt && last.InventoryAt.Equal(run.InventoryAt) && now.Sub(last.EvaluatedAt) < s.cfg.Period
	if same && !force {
		return Outcome{Run: last}, nil
	}
	if pv.Policy == "" {
		// No policy: nothing is violated; violations in force end.
		added, err := s.st.RecordCompliance(ctx, run, nil)
		return Outcome{Evaluated: true, Run: run, Added: added}, err
	}
	ev, err := s.evaluator(pv)
	if err != nil {
		run.Error = err.Error()
		_, rerr := s.st.RecordCompliance(ctx, run, nil)
		return Outcome{Evaluated: true, Run: run}, errors.Join(err, rerr)
	}
	found, drafts, pods, err := s.evaluate(ctx, cluster, pv, ev, now)
	if err != nil {
		return Outcome{}, err
	}
	run.Pods = pods
	added, err := s.st.RecordCompliance(ctx, run, found)
	if err != nil {
		return Outcome{}, err
	}
	run.Violations = len(found)
	if err := s.report(ctx, cluster, added, drafts); err != nil {
		return Outcome{Evaluated: true, Run: run, Added: added}, err
	}
	if len(added) > 0 {
		s.log.Info("compliance: new violations", "cluster", cluster, "policy", pv.Policy, "version", pv.Version, "new", len(added),
			"inForce", len(found), "pods", pods)
	}
	return Outcome{Evaluated: true, Run: run, Added: added}, nil
}

// evaluator compiles a policy version once (by its digest).
func (s *Service) evaluator(pv store.PolicyVersion) (*policy.Evaluator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev, ok := s.compiled[pv.Digest]; ok {
		return ev, nil
	}
	p, err := policy.Parse(pv.Policy+".yaml", []byte(pv.Document))
	if err != nil {
		return nil, fmt.Errorf("policy %s version %d: %w", pv.Policy, pv.Version, err)
	}
	ev, err := policy.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s version %d: %w", pv.Policy, pv.Version, err)
	}
	if len(s.compiled) >= maxCompiled {
		clear(s.compiled)
	}
	s.compiled[pv.Digest] = ev
	return ev, nil
}

// draft is what an event of a new violation says.
type draft struct {
	pod        store.ClusterObject
	violations []policy.Violation
	action     model.Action
}

type violationKey struct{ uid, rule string }

// evaluate evaluates every running pod of the cluster.
func (s *Service) evaluate(ctx context.Context, cluster string, pv store.PolicyVersion, ev *policy.Evaluator, now time.Time) (
	[]store.ComplianceViolation, map[violationKey]*draft, int, error) {
	nsLabels := map[string]map[string]string{}
	if err := s.st.EachClusterObject(ctx, cluster, store.KindNamespace, func(o store.ClusterObject) error {
		nsLabels[o.Name] = o.Labels
		return nil
	}); err != nil {
		return nil, nil, 0, err
	}
	scans := map[string]*model.Result{} // by digest; nil = never scanned
	var found []store.ComplianceViolation
	drafts := map[violationKey]*draft{}
	pods := 0
	err := s.st.EachClusterObject(ctx, cluster, store.KindPod, func(o store.ClusterObject) error {
		if o.Phase == "Succeeded" || o.Phase == "Failed" || len(o.Body) == 0 || o.UID == "" {
			return nil
		}
		w, err := policy.DecodeWorkload(o.Body)
		if err != nil {
			s.log.Warn("compliance: undecodable pod", "cluster", cluster, "pod", o.Namespace+"/"+o.Name, "err", err)
			return nil
		}
		pods++
		w.Running = true
		if w.Namespace == "" {
			w.Namespace = o.Namespace
		}
		w.NamespaceLabels = nsLabels[o.Namespace]
		w.Images = map[string]policy.ImageScan{}
		for _, c := range o.Containers {
			if c.ImageDigest == "" {
				continue
			}
			res, ok := scans[c.ImageDigest]
			if !ok {
				d, err := s.images.ScanDataByDigest(ctx, c.ImageDigest)
				if err != nil {
					return err
				}
				res = d.Result
				scans[c.ImageDigest] = res
			}
			if res != nil {
				w.Images[c.Image] = policy.ImageScan{Result: res}
			}
		}
		d := ev.Evaluate(w, now)
		for _, v := range d.Violations {
			k := violationKey{o.UID, v.Rule}
			dr := drafts[k]
			if dr == nil {
				dr = &draft{pod: o}
				drafts[k] = dr
			}
			dr.violations = append(dr.violations, v)
			if rank(v.Action) > rank(dr.action) {
				dr.action = v.Action
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	keys := make([]violationKey, 0, len(drafts))
	for k := range drafts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].uid != keys[j].uid {
			return keys[i].uid < keys[j].uid
		}
		return keys[i].rule < keys[j].rule
	})
	for _, k := range keys {
		dr := drafts[k]
		found = append(found, store.ComplianceViolation{PodUID: k.uid, Rule: k.rule, Namespace: dr.pod.Namespace, Pod: dr.pod.Name,
			Action: string(dr.action), EventID: newEventID()})
	}
	return found, drafts, pods, nil
}

func rank(a model.Action) int {
	switch a {
	case model.ActionLog:
		return 1
	case model.ActionIsolate:
		return 2
	case model.ActionTerminate:
		return 3
	}
	return 0
}

// report records an event for each new violation and queues the actions.
func (s *Service) report(ctx context.Context, cluster string, added []store.ComplianceViolation, drafts map[violationKey]*draft) error {
	if len(added) == 0 {
		return nil
	}
	evs := make([]model.Event, 0, len(added))
	for _, v := range added {
		dr := drafts[violationKey{v.PodUID, v.Rule}]
		if dr == nil {
			continue
		}
		evs = append(evs, s.event(cluster, v, dr))
	}
	if err := s.events.Record(ctx, evs); err != nil {
		return err
	}
	var errs []error
	for _, v := range added {
		dr := drafts[violationKey{v.PodUID, v.Rule}]
		if dr == nil || (dr.action != model.ActionIsolate && dr.action != model.ActionTerminate) {
			continue
		}
		_, err := s.mit.Enqueue(ctx, store.Mitigation{Cluster: cluster, Action: string(dr.action), Namespace: v.Namespace, Pod: v.Pod,
			PodUID: v.PodUID, Node: dr.pod.Node, Source: string(model.SourceCompliance), Rule: v.Rule, EventID: v.EventID,
			Message: truncate(dr.violations[0].String(), 1024)})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// event is the compliance event of one new violation of one rule by one pod.
func (s *Service) event(cluster string, v store.ComplianceViolation, dr *draft) model.Event {
	first := dr.violations[0]
	lines := make([]string, 0, len(dr.violations))
	details := map[string]string{"podUID": v.PodUID}
	for i, x := range dr.violations {
		lines = append(lines, x.String())
		if i < 32 {
			key := "violation." + strconv.Itoa(i+1)
			details[key] = truncate(x.Control+" "+x.Field+" "+strings.Join(x.Findings, ","), 1024)
		}
	}
	sev := model.SeverityMedium
	switch {
	case first.Control == policy.CtlMalware:
		sev = model.SeverityCritical
	case dr.action == model.ActionIsolate || dr.action == model.ActionTerminate:
		sev = model.SeverityHigh
	}
	e := model.Event{ID: v.EventID, Time: v.FirstSeen, Source: model.SourceCompliance, Module: "server", Cluster: cluster,
		Node: dr.pod.Node, Namespace: v.Namespace, Pod: v.Pod, Workload: inventory.WorkloadOf(dr.pod),
		Rule:     model.RuleRef{ID: v.Rule, Policy: first.Policy},
		Severity: sev, Action: dr.action, Message: truncate(strings.Join(lines, "\n"), maxEventMessage), Details: details}
	if first.Container != "" || first.Image != "" {
		e.Container = &model.ContainerRef{Name: first.Container, Image: first.Image}
		for _, c := range dr.pod.Containers {
			if c.Name == first.Container {
				e.Container.ID, e.Container.ImageDigest = c.ContainerID, c.ImageDigest
			}
		}
	}
	if dr.action == model.ActionIsolate || dr.action == model.ActionTerminate {
		details["mitigation"] = "requested from the cluster component"
	}
	return e
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// StatusStore is what Status reads.
type StatusStore interface {
	ComplianceRun(ctx context.Context, cluster string) (store.ComplianceRun, error)
	ComplianceViolations(ctx context.Context, cluster string) ([]store.ComplianceViolation, error)
}

// Status is a cluster's latest evaluation and the violations in force
// (the console's Clusters page).
func Status(ctx context.Context, st StatusStore, cluster string) (store.ComplianceRun, []store.ComplianceViolation, error) {
	run, err := st.ComplianceRun(ctx, cluster)
	if err != nil {
		return store.ComplianceRun{}, nil, err
	}
	vs, err := st.ComplianceViolations(ctx, cluster)
	if err != nil {
		return store.ComplianceRun{}, nil, err
	}
	return run, vs, nil
}
