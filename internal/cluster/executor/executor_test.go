package executor

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"mamori/internal/api"
	"mamori/internal/model"
)

type fakeServer struct {
	pending  []api.Mitigation
	reported map[int64]api.MitigationOutcome
}

func (f *fakeServer) PendingMitigations(context.Context) ([]api.Mitigation, error) {
	return f.pending, nil
}
func (f *fakeServer) ReportMitigation(_ context.Context, id int64, o api.MitigationOutcome) (api.Mitigation, error) {
	f.reported[id] = o
	return api.Mitigation{ID: id}, nil
}

func TestExecute(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "uid-1", Labels: map[string]string{"app": "web"}}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-2", Namespace: "shop", UID: "uid-2", Labels: map[string]string{"app": "web"}}}
	kube := fake.NewClientset(pod, other)
	srv := &fakeServer{reported: map[int64]api.MitigationOutcome{}, pending: []api.Mitigation{
		{ID: 1, Action: model.ActionIsolate, Namespace: "shop", Pod: "web-1", PodUID: "uid-1", Source: model.SourceRuntime, Rule: "shell"},
		{ID: 2, Action: model.ActionIsolate, Namespace: "shop", Pod: "web-2", PodUID: "uid-old", Source: model.SourceCompliance},
		{ID: 3, Action: model.ActionTerminate, Namespace: "shop", Pod: "web-2", PodUID: "uid-2", Source: model.SourceCompliance},
		{ID: 4, Action: model.ActionTerminate, Namespace: "shop", Pod: "gone", Source: model.SourceCompliance},
		{ID: 5, Action: model.ActionBlock, Namespace: "shop", Pod: "web-1"},
	}}
	var events []model.Event
	e := New(kube, srv, func(ev model.Event) { events = append(events, ev) }, 0, nil)
	if err := e.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// 1: the pod labelled with its UID, a NetworkPolicy selecting exactly that label, owned by the pod.
	if o := srv.reported[1]; !o.Done || !strings.Contains(o.Detail, "NetworkPolicy shop/mamori-quarantine-web-1-uid1") {
		t.Fatalf("isolate: %+v", o)
	}
	p, _ := kube.CoreV1().Pods("shop").Get(ctx, "web-1", metav1.GetOptions{})
	if p.Labels[QuarantineLabel] != "uid-1" || p.Labels["app"] != "web" {
		t.Fatalf("labels %v", p.Labels)
	}
	np, err := kube.NetworkingV1().NetworkPolicies("shop").Get(ctx, PolicyName("web-1", "uid-1"), metav1.GetOptions{})
	if err != nil || np.Spec.PodSelector.MatchLabels[QuarantineLabel] != "uid-1" || len(np.Spec.PodSelector.MatchLabels) != 1 ||
		len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Ingress)+len(np.Spec.Egress) != 0 || np.OwnerReferences[0].UID != "uid-1" {
		t.Fatalf("NetworkPolicy %+v %v", np, err)
	}
	// 2: a request for an older pod of the same name is refused.
	if o := srv.reported[2]; o.Done || !strings.Contains(o.Error, "not found") {
		t.Fatalf("isolate of a replaced pod: %+v", o)
	}
	// 3: terminate deletes; 4: an absent pod is done already; 5: an unknown action fails.
	if o := srv.reported[3]; !o.Done {
		t.Fatalf("terminate: %+v", o)
	}
	if _, err := kube.CoreV1().Pods("shop").Get(ctx, "web-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("web-2 still there: %v", err)
	}
	if o := srv.reported[4]; !o.Done || !strings.Contains(o.Detail, "already gone") {
		t.Fatalf("terminate of a gone pod: %+v", o)
	}
	if o := srv.reported[5]; o.Done {
		t.Fatalf("action block executed: %+v", o)
	}
	// Every outcome is an event of the request's source.
	if len(events) != 5 || events[0].Source != model.SourceRuntime || events[0].Module != "executor" || events[0].Action != model.ActionIsolate ||
		events[1].ActionError == "" || events[0].Details["mitigation"] != "1" {
		t.Fatalf("events %+v", events)
	}
	for _, ev := range events {
		if err := ev.Validate(); err == nil {
			continue // IDs are given by the event sender; the rest must be valid
		} else if !strings.Contains(err.Error(), "id") {
			t.Fatalf("event %+v: %v", ev, err)
		}
	}
	// Executing again is idempotent: the quarantine exists, the pod is gone.
	if o := e.Execute(ctx, srv.pending[0]); !o.Done {
		t.Fatalf("isolate twice: %+v", o)
	}
}

func TestPolicyName(t *testing.T) {
	long := strings.Repeat("a", 300)
	if n := PolicyName(long, "0123456789ab-cdef"); len(n) > 253 || !strings.HasSuffix(n, "-01234567") {
		t.Fatalf("%d %q", len(n), n)
	}
}
