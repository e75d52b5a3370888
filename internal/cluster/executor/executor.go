// Package executor carries out the isolate and terminate requests the
// server queues for the cluster (continuous compliance, node agents'
// runtime rules). It is the only part of mamori that changes Kubernetes
// objects:
//
//   - isolate labels the pod mamori.dev/quarantine=<pod UID> and creates a
//     NetworkPolicy selecting exactly that label, with no ingress or egress
//     rule (all traffic denied where the CNI enforces NetworkPolicies), owned
//     by the pod so that it goes with it;
//   - terminate deletes the pod (its controller decides what replaces it).
//
// Both check the pod's UID: a pod of the same name made since the request
// is never acted on.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"mamori/internal/api"
	"mamori/internal/model"
)

// Names and defaults, each with its reason.
const (
	// QuarantineLabel selects a quarantined pod; its value is the pod's UID.
	QuarantineLabel = "mamori.dev/quarantine"
	// PolicyPrefix begins the quarantine NetworkPolicy's name.
	PolicyPrefix = "mamori-quarantine-"
	// FieldManager manages what the executor writes.
	FieldManager = "mamori-cluster"
	// DefaultInterval: how often the server is asked for requests; an
	// isolate takes effect within it (plus the API calls).
	DefaultInterval = 2 * time.Second
)

// Server is what the executor needs of the server (the typed client).
type Server interface {
	PendingMitigations(ctx context.Context) ([]api.Mitigation, error)
	ReportMitigation(ctx context.Context, id int64, o api.MitigationOutcome) (api.Mitigation, error)
}

// Executor polls for requests and executes them.
type Executor struct {
	kube     kubernetes.Interface
	srv      Server
	event    func(model.Event)
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// New returns an executor; event receives the event of each action (nil: none).
func New(kube kubernetes.Interface, srv Server, event func(model.Event), interval time.Duration, log *slog.Logger) *Executor {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if event == nil {
		event = func(model.Event) {}
	}
	return &Executor{kube: kube, srv: srv, event: event, interval: interval, log: log, now: time.Now}
}

// Run executes pending requests every interval until ctx ends.
func (e *Executor) Run(ctx context.Context) {
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		if err := e.Once(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("mitigations", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once executes what is pending now.
func (e *Executor) Once(ctx context.Context) error {
	ms, err := e.srv.PendingMitigations(ctx)
	if err != nil {
		return fmt.Errorf("executor: pending requests: %w", err)
	}
	var errs []error
	for _, m := range ms {
		out := e.Execute(ctx, m)
		if _, err := e.srv.ReportMitigation(ctx, m.ID, out); err != nil {
			errs = append(errs, fmt.Errorf("executor: report request %d: %w", m.ID, err))
			continue
		}
		e.event(e.eventOf(m, out))
	}
	return errors.Join(errs...)
}

// Execute carries out one request.
func (e *Executor) Execute(ctx context.Context, m api.Mitigation) api.MitigationOutcome {
	var (
		detail string
		err    error
	)
	switch m.Action {
	case model.ActionIsolate:
		detail, err = e.Isolate(ctx, m.Namespace, m.Pod, m.PodUID)
	case model.ActionTerminate:
		detail, err = e.Terminate(ctx, m.Namespace, m.Pod, m.PodUID)
	default:
		err = fmt.Errorf("unknown action %q", m.Action)
	}
	if err != nil {
		e.log.Warn("mitigation failed", "id", m.ID, "action", m.Action, "pod", m.Namespace+"/"+m.Pod, "err", err)
		return api.MitigationOutcome{Done: false, Error: err.Error()}
	}
	e.log.Info("mitigation done", "id", m.ID, "action", m.Action, "pod", m.Namespace+"/"+m.Pod, "detail", detail)
	return api.MitigationOutcome{Done: true, Detail: detail}
}

// PolicyName is the quarantine NetworkPolicy's name for a pod: the prefix,
// the pod's name (cut to fit) and the start of its UID.
func PolicyName(pod, uid string) string {
	u := strings.ReplaceAll(uid, "-", "")
	if len(u) > 8 {
		u = u[:8]
	}
	name := pod
	if max := 253 - len(PolicyPrefix) - len(u) - 1; len(name) > max {
		name = name[:max]
	}
	return PolicyPrefix + strings.TrimRight(name, "-.") + "-" + u
}

// Isolate quarantines a pod (see the package documentation).
func (e *Executor) Isolate(ctx context.Context, ns, name, uid string) (string, error) {
	pod, err := e.pod(ctx, ns, name, uid)
	if err != nil {
		return "", err
	}
	uid = string(pod.UID)
	// The UID in the patch is a precondition: another pod of this name is
	// refused (409), not labelled.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid, "labels": map[string]string{QuarantineLabel: uid}}})
	if err != nil {
		return "", err
	}
	if _, err := e.kube.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return "", fmt.Errorf("label pod %s/%s: %w", ns, name, err)
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName(name, uid), Namespace: ns,
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "mamori-cluster", QuarantineLabel: uid},
			Annotations:     map[string]string{"mamori.dev/quarantined-pod": name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: name, UID: pod.UID}}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{QuarantineLabel: uid}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	_, err = e.kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		err = nil // isolated before (a request executed twice)
	}
	if err != nil {
		return "", fmt.Errorf("create NetworkPolicy %s/%s: %w", ns, np.Name, err)
	}
	return fmt.Sprintf("NetworkPolicy %s/%s denies all ingress and egress of pod %s (label %s=%s)", ns, np.Name, name, QuarantineLabel, uid), nil
}

// Terminate deletes a pod; a pod already gone is done.
func (e *Executor) Terminate(ctx context.Context, ns, name, uid string) (string, error) {
	pod, err := e.pod(ctx, ns, name, uid)
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("pod %s/%s is already gone", ns, name), nil
	}
	if err != nil {
		return "", err
	}
	puid := pod.UID
	err = e.kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &puid}})
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("pod %s/%s is already gone", ns, name), nil
	}
	if err != nil {
		return "", fmt.Errorf("delete pod %s/%s: %w", ns, name, err)
	}
	return fmt.Sprintf("pod %s/%s deleted", ns, name), nil
}

// pod reads the pod and checks it is the one the request is for.
func (e *Executor) pod(ctx context.Context, ns, name, uid string) (*corev1.Pod, error) {
	pod, err := e.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if uid != "" && string(pod.UID) != uid {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, apierrors.NewNotFound(corev1.Resource("pods"), name))
	}
	return pod, nil
}

// eventOf is the event recording what was done.
func (e *Executor) eventOf(m api.Mitigation, out api.MitigationOutcome) model.Event {
	src := m.Source
	if src != model.SourceCompliance && src != model.SourceRuntime {
		src = model.SourceCompliance
	}
	ev := model.Event{Time: e.now().UTC(), Source: src, Module: "executor", Cluster: m.Cluster, Node: m.Node,
		Namespace: m.Namespace, Pod: m.Pod, Rule: model.RuleRef{ID: m.Rule}, Severity: model.SeverityHigh, Action: m.Action,
		Details: map[string]string{"mitigation": fmt.Sprint(m.ID), "requestedBy": m.RequestedBy}}
	if m.EventID != "" {
		ev.Details["requestEvent"] = m.EventID
	}
	if out.Done {
		ev.Message = "mamori: " + string(m.Action) + ": " + out.Detail
	} else {
		ev.ActionError = out.Error
		ev.Message = "mamori: " + string(m.Action) + " of pod " + m.Namespace + "/" + m.Pod + " failed: " + out.Error
	}
	return ev
}
