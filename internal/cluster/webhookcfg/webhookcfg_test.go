package webhookcfg

import (
	"context"
	"slices"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type bundles struct {
	b       []byte
	applied []byte
	ch      chan struct{}
}

func (b *bundles) CABundle() []byte                   { return b.b }
func (b *bundles) Changed() <-chan struct{}           { return b.ch }
func (b *bundles) Applied(bundle []byte, _ time.Time) { b.applied = bundle }

func TestValidate(t *testing.T) {
	ok := Config{Name: "m", URL: "https://127.0.0.1:1/validate", FailurePolicy: Ignore, TimeoutSeconds: 10}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Name = "" },
		func(c *Config) { c.URL = "" },
		func(c *Config) { c.FailurePolicy = "Maybe" },
		func(c *Config) { c.TimeoutSeconds = 31 },
	} {
		c := ok
		bad(&c)
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestKeeper: the configuration written matches what the webhook serves
// (pods, every pod controller, pods/exec|attach|portforward), excludes the
// namespaces, carries the bundle, and comes back when edited.
func TestKeeper(t *testing.T) {
	kube := fake.NewClientset()
	b := &bundles{b: []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), ch: make(chan struct{})}
	cfg := Config{Name: "mamori-cluster", ServiceNamespace: "mamori", ServiceName: "mamori-cluster", ServicePort: 443, Path: "/validate",
		Exclude: []string{"mamori", "kube-system", "mamori"}, FailurePolicy: Fail, TimeoutSeconds: 10}
	k, err := NewKeeper(kube, cfg, b, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := k.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "mamori-cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Webhooks) != 2 || string(b.applied) != string(b.b) {
		t.Fatalf("%+v", got)
	}
	var resources []string
	for _, w := range got.Webhooks {
		if string(w.ClientConfig.CABundle) != string(b.b) || w.ClientConfig.Service == nil || w.ClientConfig.Service.Name != "mamori-cluster" ||
			*w.FailurePolicy != admissionregistrationv1.Fail || *w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
			t.Fatalf("webhook %+v", w)
		}
		expr := w.NamespaceSelector.MatchExpressions[0]
		if expr.Operator != metav1.LabelSelectorOpNotIn || !slices.Equal(expr.Values, []string{"kube-system", "mamori"}) {
			t.Fatalf("namespace selector %+v", w.NamespaceSelector)
		}
		for _, r := range w.Rules {
			resources = append(resources, r.Resources...)
		}
	}
	for _, want := range []string{"pods", "pods/ephemeralcontainers", "replicationcontrollers", "deployments", "replicasets", "statefulsets",
		"daemonsets", "jobs", "cronjobs", "pods/exec", "pods/attach", "pods/portforward"} {
		if !slices.Contains(resources, want) {
			t.Errorf("%s not sent to the webhook", want)
		}
	}
}
