// Package webhookcfg keeps the component's ValidatingWebhookConfiguration:
// what is sent to the webhook (pods, every pod controller, pods/exec,
// attach and portforward), where (the component's Service, or a URL when
// it runs outside the cluster), with which CA bundle, failure policy,
// timeout and excluded namespaces. The component writes it with
// server-side apply at start, whenever its CA bundle changes and
// periodically, so a deleted or edited configuration comes back.
package webhookcfg

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	applymetav1 "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Names and defaults, each with its reason.
const (
	// FieldManager is the server-side apply manager of the configuration.
	FieldManager = "mamori-cluster"
	// WorkloadsWebhook and AccessWebhook name the two webhooks.
	WorkloadsWebhook = "workloads.cluster.mamori.dev"
	AccessWebhook    = "podaccess.cluster.mamori.dev"
	// DefaultTimeoutSeconds: the API server's default; an inline scan of an
	// image never seen must fit in it (less a margin), and a longer wait
	// holds up every kubectl apply behind it. At most 30.
	DefaultTimeoutSeconds = 10
	// DefaultInterval re-applies the configuration (a deleted or edited one
	// comes back within it).
	DefaultInterval = 30 * time.Second
)

// Failure policies (admissionregistration/v1).
const (
	Ignore = string(admissionregistrationv1.Ignore)
	Fail   = string(admissionregistrationv1.Fail)
)

// Config is what the configuration says.
type Config struct {
	// Name of the ValidatingWebhookConfiguration.
	Name string
	// Service is where the API server reaches the webhook in the cluster;
	// URL (https://host:port/validate) is used instead when set.
	ServiceNamespace, ServiceName string
	ServicePort                   int32
	URL                           string
	Path                          string
	// Exclude are namespaces never sent to the webhook.
	Exclude []string
	// NamespaceLabels, when set, limits the webhook to namespaces with
	// these labels.
	NamespaceLabels map[string]string
	// FailurePolicy is Ignore or Fail.
	FailurePolicy  string
	TimeoutSeconds int32
	// Labels are put on the configuration.
	Labels map[string]string
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("webhookcfg: no configuration name")
	}
	if c.URL == "" && (c.ServiceNamespace == "" || c.ServiceName == "") {
		return fmt.Errorf("webhookcfg: a service (namespace and name) or a URL is needed")
	}
	if c.FailurePolicy != Ignore && c.FailurePolicy != Fail {
		return fmt.Errorf("webhookcfg: failure policy %q: want Ignore or Fail", c.FailurePolicy)
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 30 {
		return fmt.Errorf("webhookcfg: timeout %ds: want 1 to 30", c.TimeoutSeconds)
	}
	return nil
}

// Apply builds the configuration's apply configuration with caBundle.
func (c *Config) Apply(caBundle []byte) *admissionregistrationv1ac.ValidatingWebhookConfigurationApplyConfiguration {
	cc := admissionregistrationv1ac.WebhookClientConfig().WithCABundle(caBundle...)
	if c.URL != "" {
		cc.WithURL(c.URL)
	} else {
		svc := admissionregistrationv1ac.ServiceReference().WithNamespace(c.ServiceNamespace).WithName(c.ServiceName).WithPath(c.Path)
		if c.ServicePort != 0 {
			svc.WithPort(c.ServicePort)
		}
		cc.WithService(svc)
	}
	exclude := slices.Clone(c.Exclude)
	slices.Sort(exclude)
	exclude = slices.Compact(exclude)
	nsSel := applymetav1.LabelSelector().WithMatchExpressions(applymetav1.LabelSelectorRequirement().
		WithKey("kubernetes.io/metadata.name").WithOperator(metav1.LabelSelectorOpNotIn).WithValues(exclude...))
	if len(c.NamespaceLabels) > 0 {
		nsSel.WithMatchLabels(c.NamespaceLabels)
	}
	rule := func(ops []admissionregistrationv1.OperationType, group string, resources ...string) *admissionregistrationv1ac.RuleWithOperationsApplyConfiguration {
		return admissionregistrationv1ac.RuleWithOperations().WithOperations(ops...).WithAPIGroups(group).WithAPIVersions("v1").
			WithResources(resources...).WithScope(admissionregistrationv1.NamespacedScope)
	}
	write := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	webhook := func(name string) *admissionregistrationv1ac.ValidatingWebhookApplyConfiguration {
		return admissionregistrationv1ac.ValidatingWebhook().WithName(name).WithClientConfig(cc).
			WithAdmissionReviewVersions("v1").WithSideEffects(admissionregistrationv1.SideEffectClassNoneOnDryRun).
			WithFailurePolicy(admissionregistrationv1.FailurePolicyType(c.FailurePolicy)).WithTimeoutSeconds(c.TimeoutSeconds).
			WithMatchPolicy(admissionregistrationv1.Equivalent).WithNamespaceSelector(nsSel)
	}
	out := admissionregistrationv1ac.ValidatingWebhookConfiguration(c.Name).WithWebhooks(
		webhook(WorkloadsWebhook).WithRules(
			rule(write, "", "pods", "pods/ephemeralcontainers", "replicationcontrollers"),
			rule(write, "apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
			rule(write, "batch", "jobs", "cronjobs")),
		webhook(AccessWebhook).WithRules(
			rule([]admissionregistrationv1.OperationType{admissionregistrationv1.Connect}, "", "pods/exec", "pods/attach", "pods/portforward")),
	)
	if len(c.Labels) > 0 {
		out.WithLabels(c.Labels)
	}
	return out
}

// Bundles gives the current CA bundle, its changes, and hears that it was
// applied (certs.Manager).
type Bundles interface {
	CABundle() []byte
	Changed() <-chan struct{}
	Applied(bundle []byte, at time.Time)
}

// Keeper writes the configuration.
type Keeper struct {
	kube     kubernetes.Interface
	cfg      Config
	b        Bundles
	interval time.Duration
	log      *slog.Logger
}

// NewKeeper returns a keeper of cfg with the bundles of b.
func NewKeeper(kube kubernetes.Interface, cfg Config, b Bundles, interval time.Duration, log *slog.Logger) (*Keeper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{kube: kube, cfg: cfg, b: b, interval: interval, log: log}, nil
}

// Sync applies the configuration once.
func (k *Keeper) Sync(ctx context.Context) error {
	bundle := k.b.CABundle()
	if len(bundle) == 0 {
		return fmt.Errorf("webhookcfg: no CA bundle yet")
	}
	_, err := k.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Apply(ctx, k.cfg.Apply(bundle),
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("webhookcfg: apply %s: %w", k.cfg.Name, err)
	}
	k.b.Applied(bundle, time.Now())
	return nil
}

// Run applies at once, on every bundle change and every interval until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		changed := k.b.Changed()
		if err := k.Sync(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("webhook configuration", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}
