// Package cluster is `mamori cluster`, the component that protects one
// Kubernetes cluster (docs/kubernetes.md). It runs in the cluster (a
// Deployment, deploy/helm/mamori) or outside it from a kubeconfig, and
// talks to mamori server with a cluster token through the typed client:
//
//   - a validating admission webhook for pods, every pod controller and
//     pods/exec|attach|portforward, deciding with the cluster's policy
//     (internal/policy) and the scan results of the images, which it asks
//     the server for, scans inline within the webhook's deadline when the
//     server never saw them (inventory here, matching on the server), and
//     caches (admission's decisions by policy version, pod template and
//     image digests);
//   - its TLS: a CA and serving certificate it makes, stores in a Secret
//     and rotates, and the webhook configuration it keeps (package
//     certs, webhookcfg);
//   - the inventory watcher (package inventory): nodes, namespaces,
//     workloads, pods and the image digests that run, sent to the server
//     as they change, with full resyncs;
//   - the executor of isolate and terminate requests (package executor):
//     the only part of mamori that changes Kubernetes objects.
//
// Continuous compliance runs on the server, over the inventory.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/cache"
	"mamori/internal/cluster/admission"
	"mamori/internal/cluster/certs"
	"mamori/internal/cluster/executor"
	"mamori/internal/cluster/inventory"
	"mamori/internal/cluster/webhookcfg"
	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/scan"
)

// Defaults, each with its reason.
const (
	// DefaultNamespace is the component's own namespace when it runs
	// outside a pod and none is given.
	DefaultNamespace = "mamori"
	// DefaultName names the webhook configuration, its Service, the TLS
	// Secret and the leader-election Lease.
	DefaultName = "mamori-cluster"
	// DefaultListen: in a pod the webhook listens on every address of the
	// pod's network; outside one, give a loopback address.
	DefaultListen = ":8443"
	// DefaultFailurePolicy: see docs/kubernetes.md, "Failure policy".
	DefaultFailurePolicy = FailurePolicyIgnore
	// DefaultConfigPoll: how often the server's configuration is read (a
	// new policy version takes effect within it).
	DefaultConfigPoll = 10 * time.Second
	// DefaultHeartbeat when the server says nothing.
	DefaultHeartbeat = time.Minute
	// serverCallTimeout bounds one call on the admission path.
	serverCallTimeout = 3 * time.Second
)

// Options configure the component.
type Options struct {
	// Kubeconfig is the cluster's kubeconfig ("" in a pod: in-cluster).
	Kubeconfig string
	// Server, Token and ServerCA (file) or ServerCertSHA256 reach mamori server.
	Server, Token, ServerCA, ServerCertSHA256 string
	// Namespace is the component's namespace (its Secret, Lease, Service;
	// excluded from admission). Default: the pod's, else DefaultNamespace.
	Namespace string
	// Name names the webhook configuration, Service, Secret and Lease.
	Name string
	// Listen is the webhook's address.
	Listen string
	// WebhookURL is how the API server reaches the webhook when the
	// component runs outside the cluster (https://127.0.0.1:PORT/validate);
	// empty: through the Service Name in Namespace on ServicePort.
	WebhookURL  string
	ServicePort int32
	// FailurePolicy (Ignore or Fail) is the webhook configuration's and the
	// component's own when it cannot decide.
	FailurePolicy  string
	TimeoutSeconds int32
	// Exclude are namespaces admission never sees (kube-system and the
	// component's own are always excluded).
	Exclude []string
	// DataDir keeps the last policy, the layer cache and scan spill files.
	DataDir string
	// InlineScan scans images the server never saw (default on; the
	// policy's unknownImages says when).
	NoInlineScan bool
	// InsecureRegistries may be pulled over plain HTTP (loopback registries always may).
	InsecureRegistries []string
	// Clamd is the clamd address of inline malware scans ("" = default).
	Clamd string
	// TrustedRoot verifies keyless signatures of the policy's signatures
	// rules (nil: keys only; a rule naming identities only then refuses).
	TrustedRoot *root.TrustedRoot
	// LeaderElect: only the leader watches and executes (several replicas
	// serve the webhook).
	LeaderElect bool
	// WebhookOnly serves the webhook and nothing else: no inventory sent, no
	// mitigation executed (a second instance in tests and benchmarks).
	WebhookOnly bool
	// WebhookNamespaceLabels, when set, limits the webhook to namespaces
	// with these labels (besides the exclusions).
	WebhookNamespaceLabels map[string]string
	// Version is mamori's version.
	Version string
	Logger  *slog.Logger

	// PostureInterval: how often the compliance posture is sent (0:
	// DefaultPostureInterval; negative: never).
	PostureInterval time.Duration
	// Tuning (zero: the defaults).
	ConfigPoll, Resync, ExecutorInterval, ImageTTL, DecisionTTL time.Duration
	Certs                                                       CertOptions
	// Ready, when set, is called once the webhook serves.
	Ready func(addr net.Addr)
}

// CertOptions tune the TLS material's lifetimes (tests shorten them).
type CertOptions struct {
	CAValidity, CertValidity, Overlap, Interval time.Duration
	RotateAt                                    float64
}

func (o *Options) defaults() error {
	if o.Server == "" || o.Token == "" {
		return errors.New("cluster: the server URL and a cluster token are required")
	}
	if o.Namespace == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && o.Kubeconfig == "" {
			o.Namespace = strings.TrimSpace(string(b))
		} else {
			o.Namespace = DefaultNamespace
		}
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.ServicePort == 0 {
		o.ServicePort = 443
	}
	if o.FailurePolicy == "" {
		o.FailurePolicy = DefaultFailurePolicy
	}
	if o.FailurePolicy != FailurePolicyIgnore && o.FailurePolicy != FailurePolicyFail {
		return fmt.Errorf("cluster: failure policy %q: want Ignore or Fail", o.FailurePolicy)
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = webhookcfg.DefaultTimeoutSeconds
	}
	if o.ConfigPoll <= 0 {
		o.ConfigPoll = DefaultConfigPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DataDir == "" {
		return errors.New("cluster: a data directory is required")
	}
	return nil
}

// Component is a configured cluster component.
type Component struct {
	o       Options
	log     *slog.Logger
	kube    kubernetes.Interface
	srv     *client.Client // retried calls
	fast    *client.Client // the admission path: one attempt
	pol     *policies
	img     *images
	scan    *scanner
	sig     *signatures
	events  *eventSender
	watch   *inventory.Watcher
	certs   *certs.Manager
	keeper  *webhookcfg.Keeper
	decider *decider
	exec    *executor.Executor
	Stats   *Stats
	cluster string
	rest    *rest.Config // the API server's address and CA (anonymous probes)
}

// RESTConfig loads the kubeconfig, or the in-cluster configuration when empty.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster: not in a pod (give --kubeconfig): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("cluster: kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// New builds the component (nothing runs until Run).
func New(ctx context.Context, o Options) (*Component, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rc, err := RESTConfig(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "mamori-cluster/" + o.Version
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c, err := newWith(ctx, o, kube)
	if err != nil {
		return nil, err
	}
	c.rest = rc
	return c, nil
}

func newWith(ctx context.Context, o Options, kube kubernetes.Interface) (*Component, error) {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	copts := []client.Option{client.WithUserAgent("mamori-cluster/" + o.Version), client.WithLogger(o.Logger)}
	if o.ServerCA != "" {
		copts = append(copts, client.WithCAFile(o.ServerCA))
	}
	if o.ServerCertSHA256 != "" {
		copts = append(copts, client.WithPinnedCertificate(o.ServerCertSHA256))
	}
	srv, err := client.New(o.Server, o.Token, copts...)
	if err != nil {
		return nil, err
	}
	fast, err := client.New(o.Server, o.Token, append(copts, client.WithRetries(1, 0), client.WithTimeout(serverCallTimeout))...)
	if err != nil {
		return nil, err
	}
	c := &Component{o: o, log: o.Logger, kube: kube, srv: srv, fast: fast, Stats: &Stats{}}
	c.pol = newPolicies(o.DataDir, srv.ClusterPolicy, o.Logger)
	c.img = newImages(fast.LookupImages, o.ImageTTL, 0, time.Now)
	c.events = newEventSender(srv.IngestEvents, 0, o.Logger)
	c.watch = inventory.New(kube, srv.SendInventory, inventory.Options{Resync: o.Resync, Logger: o.Logger})
	if !o.NoInlineScan {
		if c.scan, err = c.newScanner(ctx); err != nil {
			return nil, err
		}
	}
	exclude := map[string]bool{"kube-system": true, o.Namespace: true}
	for _, n := range o.Exclude {
		exclude[n] = true
	}
	c.sig = newSignatures(o.TrustedRoot, o.InsecureRegistries, func(ctx context.Context, ns string, names []string) (*pullKeychain, error) {
		return readPullKeychain(ctx, kube, o.Logger, ns, names)
	}, o.Logger, c.Stats, time.Now)
	c.decider = &decider{pol: c.pol, img: c.img, scan: c.scan, sig: c.sig, view: c.watch, cache: newDecisionCache(o.DecisionTTL, 0, time.Now),
		events: c.events, failure: o.FailurePolicy, exclude: exclude, log: o.Logger, now: time.Now, stats: c.Stats}
	names, ips := c.serviceNames()
	c.certs, err = certs.New(kube, certs.Options{Namespace: o.Namespace, SecretName: o.Name + "-webhook-tls", DNSNames: names, IPs: ips,
		CAValidity: o.Certs.CAValidity, CertValidity: o.Certs.CertValidity, Overlap: o.Certs.Overlap, Interval: o.Certs.Interval,
		RotateAt: o.Certs.RotateAt, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	excl := make([]string, 0, len(exclude))
	for n := range exclude {
		excl = append(excl, n)
	}
	wc := webhookcfg.Config{Name: o.Name, ServiceNamespace: o.Namespace, ServiceName: o.Name, ServicePort: o.ServicePort,
		URL: o.WebhookURL, Path: admission.Path, Exclude: excl, NamespaceLabels: o.WebhookNamespaceLabels,
		FailurePolicy: o.FailurePolicy, TimeoutSeconds: o.TimeoutSeconds,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "mamori-cluster"}}
	if c.keeper, err = webhookcfg.NewKeeper(kube, wc, c.certs, 0, o.Logger); err != nil {
		return nil, err
	}
	c.exec = executor.New(kube, srv, c.events.add, o.ExecutorInterval, o.Logger)
	return c, nil
}

// serviceNames are the serving certificate's names: the Service's DNS
// names in the cluster, or the webhook URL's host outside it.
func (c *Component) serviceNames() ([]string, []net.IP) {
	if c.o.WebhookURL != "" {
		host := c.o.WebhookURL
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[i+3:]
		}
		host, _, _ = strings.Cut(host, "/")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil {
			return nil, []net.IP{ip}
		}
		return []string{host}, nil
	}
	svc := c.o.Name + "." + c.o.Namespace + ".svc"
	return []string{svc, c.o.Name, c.o.Name + "." + c.o.Namespace, svc + ".cluster.local"}, nil
}

func (c *Component) newScanner(ctx context.Context) (*scanner, error) {
	lc, err := cache.Open(filepath.Join(c.o.DataDir, "cache"))
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(c.o.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	sc, _, warnings, err := scan.Build(ctx, scan.BuildOptions{Kind: model.TargetImage,
		Scanners: []string{scan.ScannerSecret, scan.ScannerMalware, scan.ScannerMisconfig}, Cache: lc, Clamd: c.o.Clamd,
		Logger: c.o.Logger, Version: c.o.Version, Quiet: true, TempDir: tmp})
	if err != nil {
		return nil, fmt.Errorf("cluster: inline scanner: %w", err)
	}
	for _, w := range warnings {
		c.log.Info("inline scanner", "notice", w)
	}
	var opts []image.Option
	if len(c.o.InsecureRegistries) > 0 {
		opts = append(opts, image.WithInsecureRegistries(c.o.InsecureRegistries...))
	}
	s := &scanner{kube: c.kube, sc: sc, upload: c.srv.UploadClusterScan, opts: opts, tmp: tmp, timeout: DefaultScanTimeout,
		sem: make(chan struct{}, DefaultScanParallel), log: c.log, inflight: map[string]*flight{}}
	s.done = func(ref string, d *api.ImageScanData, err error) { c.img.scanned(ref, d, err) }
	return s, nil
}

// Run runs the component until ctx ends.
func (c *Component) Run(ctx context.Context) error {
	if err := c.pol.loadSaved(); err != nil {
		c.log.Warn("saved policy not loaded", "err", err)
	}
	if c.scan != nil {
		c.scan.bg = ctx
	}
	c.sig.bg = ctx
	// The TLS material comes first: nothing can be served without it.
	if err := c.certs.Sync(ctx); err != nil {
		return err
	}
	if err := c.watch.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.o.Listen)
	if err != nil {
		return fmt.Errorf("cluster: listen %s: %w", c.o.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle(admission.Path, admission.NewHandler(c.decider, c.log))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.pol.current().known && c.o.FailurePolicy == FailurePolicyFail {
			http.Error(w, "no policy loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog:  slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.certs.GetCertificate}}
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.ServeTLS(ln, "", "") }()
	c.log.Info("mamori cluster webhook listening", "addr", ln.Addr().String(), "namespace", c.o.Namespace,
		"failurePolicy", c.o.FailurePolicy)
	run(c.certs.Run)
	run(c.keeper.Run)
	run(c.events.run)
	run(c.contact)
	switch {
	case c.o.WebhookOnly:
	case c.o.LeaderElect:
		run(c.leader)
	default:
		run(c.watch.Run)
		run(c.exec.Run)
		run(c.postures)
	}
	if c.o.Ready != nil {
		c.o.Ready(ln.Addr())
	}
	var err2 error
	select {
	case <-ctx.Done():
	case err2 = <-serveErr:
		err2 = fmt.Errorf("cluster: webhook server: %w", err2)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	wg.Wait()
	c.watch.Shutdown()
	if c.scan != nil {
		c.scan.wait()
	}
	c.sig.wait()
	return err2
}

// contact registers with the server, keeps the policy current and sends
// heartbeats, until ctx ends; a server that is away is retried.
func (c *Component) contact(ctx context.Context) {
	registered := false
	var lastBeat time.Time
	beat := DefaultHeartbeat
	for {
		report := c.report()
		if !registered {
			if cl, err := c.srv.RegisterCluster(ctx, report); err != nil {
				c.log.Warn("register with the server", "err", err)
			} else {
				registered, lastBeat = true, time.Now()
				c.cluster = cl.Name
				c.log.Info("registered with the server", "cluster", cl.Name)
			}
		} else if time.Since(lastBeat) >= beat {
			if _, err := c.srv.ClusterHeartbeat(ctx, report); err != nil {
				c.log.Warn("heartbeat", "err", err)
			} else {
				lastBeat = time.Now()
			}
		}
		if cfg, err := c.srv.ClusterConfig(ctx); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("server configuration", "err", err)
			}
		} else {
			if d, err := time.ParseDuration(cfg.HeartbeatInterval); err == nil && d > 0 {
				beat = d
			}
			if err := c.pol.refresh(ctx, cfg.Policy, cfg.PolicyVersion); err != nil {
				c.log.Error("policy", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.o.ConfigPoll):
		}
	}
}

func (c *Component) report() api.ClusterReport {
	r := api.ClusterReport{Version: c.o.Version, Nodes: c.watch.Counts()["Node"]}
	if v, err := c.kube.Discovery().ServerVersion(); err == nil {
		r.KubernetesVersion = v.GitVersion
	}
	return r
}

// leader runs the watcher and the executor while this replica leads.
func (c *Component) leader(ctx context.Context) {
	id, _ := os.Hostname()
	lock := &resourcelock.LeaseLock{LeaseMeta: metaFor(c.o.Name, c.o.Namespace), Client: c.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id + "-" + newID()[:8]}}
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{Lock: lock, ReleaseOnCancel: true,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				c.log.Info("leading: watching the inventory and executing mitigations")
				var wg sync.WaitGroup
				wg.Add(3)
				go func() { defer wg.Done(); c.watch.Run(lctx) }()
				go func() { defer wg.Done(); c.exec.Run(lctx) }()
				go func() { defer wg.Done(); c.postures(lctx) }()
				wg.Wait()
			},
			OnStoppedLeading: func() { c.log.Info("no longer leading") },
		}})
}

// Decide exposes the decider (bench and tests).
func (c *Component) Decider() admission.Decider { return c.decider }

// Watcher exposes the inventory watcher (tests).
func (c *Component) Watcher() *inventory.Watcher { return c.watch }

// CertManager exposes the TLS material (tests).
func (c *Component) CertManager() *certs.Manager { return c.certs }

func metaFor(name, ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }
