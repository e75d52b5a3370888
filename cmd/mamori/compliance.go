package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"mamori/internal/compliance"
	"mamori/internal/compliance/kube"
	"mamori/internal/compliance/node"
)

func newComplianceCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compliance",
		Short: "Compliance reports (NIST SP 800-190, CIS Docker, CIS Kubernetes) and the postures they read",
		Long: `The server assesses what it holds — image scans, registries and their probes, signature
verifications, policies, the postures the cluster components and agents report — against a
standard (docs/compliance.md). These commands fetch its report and history, ask for a
re-assessment, and collect and send a node's or a cluster's posture.`,
	}
	cmd.AddCommand(newComplianceReportCmd(), newComplianceHistoryCmd(), newComplianceAssessCmd(),
		newComplianceCollectCmd(g))
	return cmd
}

func newComplianceReportCmd() *cobra.Command {
	var sc serverConn
	var standard, format, output string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Fetch a compliance report from the server (JSON, printable HTML, or PDF made in the server)",
		Example: `  mamori compliance report --standard nist-800-190 --format pdf -o nist.pdf
  mamori compliance report --standard cis-kubernetes --format json | jq '.controls[] | select(.status=="fail")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkReportFlags(standard, format); err != nil {
				return err
			}
			c, err := sc.client()
			if err != nil {
				return err
			}
			b, err := c.ComplianceReport(cmd.Context(), standard, format)
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), output, b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&standard, "standard", compliance.StandardNIST800190, "nist-800-190, cis-docker or cis-kubernetes")
	f.StringVarP(&format, "format", "f", compliance.FormatJSON, "json, html or pdf")
	f.StringVarP(&output, "output", "o", "", "write the report to this file instead of stdout")
	sc.addFlags(cmd)
	return cmd
}

func checkReportFlags(standard, format string) error {
	switch standard {
	case compliance.StandardNIST800190, compliance.StandardCISDocker, compliance.StandardCISKubernetes:
	default:
		return fmt.Errorf("--standard %q: want nist-800-190, cis-docker or cis-kubernetes", standard)
	}
	switch format {
	case compliance.FormatJSON, compliance.FormatHTML, compliance.FormatPDF:
	default:
		return fmt.Errorf("--format %q: want json, html or pdf", format)
	}
	return nil
}

// writeOut writes b to the file (0600) or stdout.
func writeOut(stdout io.Writer, path string, b []byte) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func newComplianceHistoryCmd() *cobra.Command {
	var sc serverConn
	var standard, format string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List a standard's assessment snapshots (the score per group over time)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sc.client()
			if err != nil {
				return err
			}
			h, err := c.ComplianceHistory(cmd.Context(), standard, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				return writeJSONOut(out, h)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprint(tw, "ID\tGENERATED\tCAUSE\tPASS\tFAIL\tN/A\tNOT ASSESSED\tSCORE")
			if len(h.Snapshots) > 0 {
				for _, g := range h.Snapshots[0].Groups {
					fmt.Fprint(tw, "\t"+strings.ToUpper(g.Group))
				}
			}
			fmt.Fprintln(tw)
			for _, s := range h.Snapshots {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s", s.ID, s.GeneratedAt.Local().Format(time.DateTime), dash(s.Cause),
					s.Summary.Pass, s.Summary.Fail, s.Summary.NotApplicable, s.Summary.NotAssessed, scoreCell(s.Summary.Score))
				for _, g := range s.Groups {
					fmt.Fprint(tw, "\t"+scoreCell(g.Score))
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&standard, "standard", compliance.StandardNIST800190, "nist-800-190, cis-docker or cis-kubernetes")
	f.IntVar(&limit, "limit", 20, "at most this many snapshots")
	f.StringVarP(&format, "format", "f", "table", "table or json")
	sc.addFlags(cmd)
	return cmd
}

func scoreCell(s float64) string {
	if s < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", s)
}

func newComplianceAssessCmd() *cobra.Command {
	var sc serverConn
	cmd := &cobra.Command{
		Use:   "assess",
		Short: "Probe the registries, verify signatures and re-assess every standard now (operator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sc.client()
			if err != nil {
				return err
			}
			a, err := c.ComplianceAssess(cmd.Context())
			if err != nil {
				return err
			}
			for _, s := range a.Snapshots {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d pass, %d fail, %d not applicable, %d not assessed (score %s, snapshot %d)\n",
					s.Standard, s.Summary.Pass, s.Summary.Fail, s.Summary.NotApplicable, s.Summary.NotAssessed, scoreCell(s.Summary.Score), s.ID)
			}
			return nil
		},
	}
	sc.addFlags(cmd)
	return cmd
}

func newComplianceCollectCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Collect a node's or a cluster's posture and send it to the server (what the agent and the cluster component do)",
	}
	cmd.AddCommand(newCollectNodeCmd(g), newCollectClusterCmd())
	return cmd
}

func newCollectNodeCmd(g *globalOptions) *cobra.Command {
	var sc serverConn
	var o node.Options
	var skip, extra []string
	var inventory, dryRun, inventoryOnly, lowPriority bool
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Collect this node's posture (kubelet, users, sudoers, sshd, listening services, host inventory) and send it (agent token)",
		Example: `  mamori compliance collect node --server https://mamori:8443 --token-file /etc/mamori/agent.token
  mamori compliance collect node --root /host --proc /host/proc --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if o.Node == "" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				o.Node = h
			}
			if lowPriority {
				if err := node.LowerPriority(); err != nil {
					return err
				}
			}
			if inventory || inventoryOnly {
				if skip == nil {
					skip = node.DefaultSkipDirs
				}
				inv, err := node.HostInventory(ctx, o.Root, skip, extra, os.TempDir(), g.logger)
				if err != nil {
					return err
				}
				if inventoryOnly {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(inv)
				}
				o.Inventory = inv
			}
			n, err := node.Collect(ctx, o, time.Now())
			if err != nil {
				return err
			}
			for _, w := range n.Warnings {
				g.logger.Warn(w)
			}
			if dryRun {
				return writeJSONOut(cmd.OutOrStdout(), n)
			}
			c, err := sc.client()
			if err != nil {
				return err
			}
			res, err := c.ReportNodePosture(ctx, n)
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "node posture of %s sent: %d host packages, %d vulnerabilities matched (matched: %v)\n",
					n.Node, res.HostPackages, res.HostVulnerabilities, res.Matched)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Root, "root", "/", "the node's root file system")
	f.StringVar(&o.Proc, "proc", "/proc", "the node's /proc (listening sockets, the kubelet's command line); \"\" skips them")
	f.StringVar(&o.Node, "node", "", "the node's name (default: the host name)")
	f.StringVar(&o.KubeletConfig, "kubelet-config", "", "the kubelet configuration file, inside --root (default: the kubelet's --config, else /var/lib/kubelet/config.yaml)")
	f.StringSliceVar(&o.AllowedSudoers, "allowed-sudoers", nil, "sudoers grants the baseline accepts (default root, %sudo, %admin, %wheel)")
	f.BoolVar(&inventory, "inventory", true, "take the host inventory (the catalogers of mamori rootfs) for the server to match")
	f.StringSliceVar(&skip, "skip-dirs", nil, "directories under --root the host inventory skips (default: containers' and volatile data)")
	f.StringSliceVar(&extra, "inventory-dirs", nil, "more directories whose binaries join the host inventory (runtime binaries outside the packaged locations)")
	f.BoolVar(&dryRun, "dry-run", false, "print the posture as JSON instead of sending it")
	f.BoolVar(&inventoryOnly, "inventory-only", false, "print only the host inventory as JSON (nothing sent; the agent runs this)")
	f.BoolVar(&lowPriority, "low-priority", false, "run at nice 19 with idle I/O priority")
	sc.addFlags(cmd)
	return cmd
}

func newCollectClusterCmd() *cobra.Command {
	var sc serverConn
	var o kube.Options
	var kubeconfig string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Collect the cluster's posture from its API (bindings, anonymous access, NetworkPolicies, sensitivity, running pods) and send it (cluster token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			o.Anonymous = rc
			p, err := kube.Collect(ctx, cs, o, time.Now())
			if err != nil {
				return err
			}
			if dryRun {
				return writeJSONOut(cmd.OutOrStdout(), p)
			}
			c, err := sc.client()
			if err != nil {
				return err
			}
			if err := c.ReportClusterPosture(ctx, p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "cluster posture sent: %d bindings reviewed, %d namespaces, %d pods, %d warnings\n",
				p.BindingsReviewed, len(p.Namespaces), len(p.Pods), len(p.Warnings))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
	f.StringVar(&o.Cluster, "cluster-name", "", "the cluster's name in the posture (the server uses the token's)")
	f.StringVar(&o.NamespaceSelector, "namespace-selector", "", "only the namespaces with these labels (a label selector)")
	f.StringSliceVar(&o.AllowedSubjects, "allowed-subjects", nil, "subjects the baseline allows broad rights (ServiceAccount:ns/name, User:name, Group:name)")
	f.StringVar(&o.SensitivityLabel, "sensitivity-label", kube.DefaultSensitivityLabel, "the pod label naming a workload's sensitivity")
	f.BoolVar(&dryRun, "dry-run", false, "print the posture as JSON instead of sending it")
	sc.addFlags(cmd)
	return cmd
}
