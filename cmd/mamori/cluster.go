package main

import (
	"log/slog"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"mamori/internal/cache"
	"mamori/internal/cluster"
	"mamori/internal/sign"
)

// clusterOptions are the flags of mamori cluster.
type clusterOptions struct {
	conn               serverConn
	kubeconfig         string
	namespace          string
	name               string
	listen             string
	webhookURL         string
	servicePort        int32
	failurePolicy      string
	timeout            int32
	exclude            []string
	dataDir            string
	noInlineScan       bool
	insecureRegistries []string
	clamd              string
	leaderElect        bool
	trustedRoot        string
}

func newClusterCmd(g *globalOptions) *cobra.Command {
	o := &clusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run mamori cluster: the admission webhook, inventory watcher and mitigation executor of one Kubernetes cluster",
		Long: `Run the cluster component of one Kubernetes cluster (docs/kubernetes.md), in a pod
(deploy/helm/mamori) or outside the cluster with --kubeconfig. It authenticates to
mamori server with the cluster's token (made by POST /api/v1/clusters or the
console's Clusters page) and:

  - serves the validating admission webhook for pods, every pod controller and
    pods/exec|attach|portforward, deciding with the cluster's policy and the scan
    results of the images (scanning images the server never saw inline), with a CA
    and certificate it makes, keeps in a Secret and rotates, and the webhook
    configuration it keeps;
  - reports the cluster's inventory (nodes, namespaces, workloads, pods and the
    image digests that run) for continuous compliance and the runtime
    vulnerability view;
  - executes the isolate and terminate requests of continuous compliance and of
    the node agents.`,
		Example: `  # in a pod (the Helm chart): the token from a mounted Secret
  mamori cluster --server https://mamori.example.com --token-file /var/run/mamori/token
  # outside the cluster: the API server reaches the webhook at the given URL
  mamori cluster --kubeconfig ~/.kube/config --server https://127.0.0.1:8443 --server-ca ca.pem \
    --token-file cluster.token --listen 127.0.0.1:9443 --webhook-url https://127.0.0.1:9443/validate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCluster(cmd, g, o)
		},
	}
	o.conn.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: the pod's service account)")
	f.StringVar(&o.namespace, "namespace", "", "the component's namespace: its TLS Secret and Lease, excluded from admission (default: the pod's, else mamori)")
	f.StringVar(&o.name, "name", cluster.DefaultName, "name of the webhook configuration, Service, TLS Secret and Lease")
	f.StringVar(&o.listen, "listen", cluster.DefaultListen, "address the webhook serves on (HTTPS)")
	f.StringVar(&o.webhookURL, "webhook-url", "", "URL the API server calls the webhook at, when the component runs outside the cluster (default: the Service --name in --namespace)")
	f.Int32Var(&o.servicePort, "service-port", 443, "port of the webhook's Service")
	f.StringVar(&o.failurePolicy, "failure-policy", cluster.DefaultFailurePolicy, "what admission does when it cannot decide (webhook down, server away with nothing cached): Ignore or Fail (docs/kubernetes.md)")
	f.Int32Var(&o.timeout, "webhook-timeout", 10, "seconds the API server waits for the webhook (1-30); an inline scan must fit in it")
	f.StringSliceVar(&o.exclude, "exclude-namespace", nil, "namespaces admission never sees (kube-system and the component's own always are)")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory: the last policy, the layer cache, scan spill files (default: <cache-dir>/cluster)")
	f.BoolVar(&o.noInlineScan, "no-inline-scan", false, "never scan an image inline (the policy's unknownImages scan then counts as a failed scan)")
	f.StringSliceVar(&o.insecureRegistries, "insecure-registry", nil, "registries (host:port) inline scans may pull over plain HTTP (loopback ones always may)")
	f.StringVar(&o.clamd, "clamd", "", "clamd address for inline malware scans (default: the Debian socket, used when it answers)")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "sigstore trusted_root.json: verifies keyless signatures of the policy's signatures rules offline (default: keys only)")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "several replicas: only the leader (a Lease) watches and executes; all serve the webhook")
	return cmd
}

func runCluster(cmd *cobra.Command, g *globalOptions, o *clusterOptions) error {
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	if g.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	url, token, err := o.conn.credentials()
	if err != nil {
		return err
	}
	dataDir := o.dataDir
	if dataDir == "" {
		d := g.cacheDir
		if d == "" {
			if d, err = cache.DefaultDir(); err != nil {
				return err
			}
		}
		dataDir = filepath.Join(d, "cluster")
	}
	var tr *root.TrustedRoot
	if o.trustedRoot != "" {
		if tr, err = sign.LoadTrustedRoot(o.trustedRoot); err != nil {
			return err
		}
	}
	c, err := cluster.New(cmd.Context(), cluster.Options{TrustedRoot: tr, Kubeconfig: o.kubeconfig, Server: url, Token: token, ServerCA: o.conn.ca,
		ServerCertSHA256: o.conn.pin, Namespace: o.namespace, Name: o.name, Listen: o.listen, WebhookURL: o.webhookURL,
		ServicePort: o.servicePort, FailurePolicy: o.failurePolicy, TimeoutSeconds: o.timeout, Exclude: o.exclude, DataDir: dataDir,
		NoInlineScan: o.noInlineScan, InsecureRegistries: o.insecureRegistries, Clamd: o.clamd, LeaderElect: o.leaderElect,
		Version: version, Logger: log})
	if err != nil {
		return err
	}
	return c.Run(cmd.Context())
}
