package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/policy"
)

// serverConn are the flags of the commands that talk to a mamori server.
type serverConn struct {
	url, token, tokenFile, ca, pin string
}

func (s *serverConn) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.url, "server", "", "mamori server URL (default $MAMORI_SERVER)")
	f.StringVar(&s.token, "token", "", "API token (default $MAMORI_TOKEN, which keeps it out of shell history)")
	f.StringVar(&s.tokenFile, "token-file", "", "file holding the API token (default $MAMORI_TOKEN_FILE)")
	f.StringVar(&s.ca, "server-ca", "", "PEM CA certificate to verify the server with (a self-signed server's <data-dir>/tls-cert.pem)")
	f.StringVar(&s.pin, "server-cert-sha256", "", "accept the server's certificate by its SHA-256 (as mamori server prints it)")
}

// credentials resolves the server URL and the token from the flags and
// the environment.
func (s *serverConn) credentials() (url, token string, err error) {
	u := s.url
	if u == "" {
		u = os.Getenv("MAMORI_SERVER")
	}
	if u == "" {
		return "", "", errors.New("no server: --server or MAMORI_SERVER")
	}
	// Flags first (--token, --token-file), then the environment.
	tok := s.token
	file := s.tokenFile
	if tok == "" && file == "" {
		tok, file = os.Getenv("MAMORI_TOKEN"), os.Getenv("MAMORI_TOKEN_FILE")
	}
	if tok == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", fmt.Errorf("token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return "", "", errors.New("no token: --token, MAMORI_TOKEN, --token-file or MAMORI_TOKEN_FILE")
	}
	return u, tok, nil
}

func (s *serverConn) client() (*client.Client, error) {
	u, tok, err := s.credentials()
	if err != nil {
		return nil, err
	}
	var opts []client.Option
	if s.ca != "" {
		opts = append(opts, client.WithCAFile(s.ca))
	}
	if s.pin != "" {
		opts = append(opts, client.WithPinnedCertificate(s.pin))
	}
	return client.New(u, tok, opts...)
}

func newPolicyCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, evaluate and manage policies (docs/policies.md)",
		Long: `A policy decides admission, continuous compliance, runtime actions and the CI gate
(docs/policies.md). check and eval work offline on files; apply, get, versions,
delete and assign manage the policies stored on a mamori server.`,
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyEvalCmd(), newPolicyApplyCmd(g), newPolicyGetCmd(), newPolicyVersionsCmd(),
		newPolicyDeleteCmd(g), newPolicyAssignCmd(g))
	return cmd
}

// readPolicyFile reads a policy file, "-" for stdin, at most MaxPolicySize
// (one byte more lets Parse say it is too large).
func readPolicyFile(path string) ([]byte, string, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, policy.MaxPolicySize+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	return b, name, nil
}

func newPolicyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Parse and compile policy files offline; errors name the file and line",
		Example: `  mamori policy check prod.yaml
  mamori policy check docs/examples/policies/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				data, name, err := readPolicyFile(path)
				if err == nil {
					var p *policy.Policy
					if p, err = policy.Parse(name, data); err == nil {
						var ev *policy.Evaluator
						if ev, err = policy.Compile(p); err == nil {
							fmt.Fprintf(cmd.OutOrStdout(), "%s: policy %q: %d admission, %d compliance rules, %d runtime rulesets, %d exceptions\n",
								name, p.Name, len(p.Admission), len(p.Compliance), len(p.Runtime), len(p.Exceptions))
							for _, w := range ev.Warnings() {
								fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", name, w)
							}
							continue
						}
					}
				}
				failed++
				fmt.Fprintln(cmd.ErrOrStderr(), err)
			}
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func newPolicyEvalCmd() *cobra.Command {
	var file, format string
	var running bool
	cmd := &cobra.Command{
		Use:   "eval -f POLICY MANIFEST...",
		Short: "Evaluate Kubernetes manifests against a policy offline (admission rules; compliance with --running)",
		Long: `Evaluates every Pod and pod controller of the manifests (YAML, several documents per
file; other kinds are skipped) with the policy's admission rules, as the admission
webhook would: the images are taken as never scanned, so scan-result rules do not
fire and the policy's unknown-image handling applies. Exits 1 when a workload is
blocked.`,
		Example: `  mamori policy eval -f docs/examples/policies/default.yaml deploy/*.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, name, err := readPolicyFile(file)
			if err != nil {
				return err
			}
			p, err := policy.Parse(name, data)
			if err != nil {
				return err
			}
			ev, err := policy.Compile(p)
			if err != nil {
				return err
			}
			now := time.Now()
			blocked := 0
			var results []evalResult
			for _, path := range args {
				docs, err := manifestDocuments(path)
				if err != nil {
					return err
				}
				for _, d := range docs {
					w, err := policy.DecodeWorkload(d.json)
					if errors.Is(err, policy.ErrNotWorkload) {
						continue
					}
					if err != nil {
						return fmt.Errorf("%s:%d: %w", path, d.line, err)
					}
					w.Running = running
					dec := ev.Evaluate(w, now)
					if dec.Action == "block" {
						blocked++
					}
					results = append(results, evalResult{File: path, Line: d.line, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Decision: dec})
				}
			}
			if err := writeEval(cmd.OutOrStdout(), format, results); err != nil {
				return err
			}
			if blocked > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy file (- for stdin)")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output: table or json")
	cmd.Flags().BoolVar(&running, "running", false, "judge the workloads as running (compliance rules) instead of being admitted")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

type evalResult struct {
	File      string          `json:"file"`
	Line      int             `json:"line"`
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace,omitempty"`
	Name      string          `json:"name"`
	Decision  policy.Decision `json:"decision"`
}

func writeEval(w io.Writer, format string, results []evalResult) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if results == nil {
			results = []evalResult{}
		}
		return enc.Encode(results)
	case "table", "":
	default:
		return fmt.Errorf("--output %q: want table or json", format)
	}
	for _, r := range results {
		fmt.Fprintf(w, "%s:%d %s %s: %s\n", r.File, r.Line, r.Kind, r.Name, strings.ToUpper(string(r.Decision.Action)))
		for _, v := range r.Decision.Violations {
			fmt.Fprintf(w, "  %-5s %s\n", v.Action, v)
		}
		for _, v := range r.Decision.Exempted {
			fmt.Fprintf(w, "  %-5s %s\n", "waive", v)
		}
		for _, img := range r.Decision.NeedScan {
			fmt.Fprintf(w, "  %-5s image %q is scanned before admission decides (unknownImages: scan)\n", "scan", img)
		}
	}
	return nil
}

type manifestDoc struct {
	line int
	json []byte
}

// manifestDocuments splits a YAML file into its documents, as JSON.
func manifestDocuments(path string) ([]manifestDoc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxObjectSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > policy.MaxObjectSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, policy.MaxObjectSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []manifestDoc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		y, err := yaml.Marshal(&n)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n.Line, err)
		}
		js, err := sigsyaml.YAMLToJSON(y)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n.Line, err)
		}
		out = append(out, manifestDoc{line: n.Content[0].Line, json: js})
	}
}

func newPolicyApplyCmd(g *globalOptions) *cobra.Command {
	var conn serverConn
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Store a policy on the server (a new version when it changed)",
		Example: `  mamori policy apply -f prod.yaml --server https://mamori:8443
  MAMORI_SERVER=https://127.0.0.1:8443 MAMORI_TOKEN_FILE=admin.token mamori policy apply -f prod.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, name, err := readPolicyFile(file)
			if err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			a, err := c.ApplyPolicy(cmd.Context(), filepath.Base(name), data)
			if err != nil {
				return err
			}
			switch {
			case a.Created:
				fmt.Fprintf(cmd.OutOrStdout(), "policy %q created (version 1)\n", a.Policy.Name)
			case a.Changed:
				fmt.Fprintf(cmd.OutOrStdout(), "policy %q updated to version %d\n", a.Policy.Name, a.Policy.Version)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "policy %q unchanged (version %d)\n", a.Policy.Name, a.Policy.Version)
			}
			if !g.quiet {
				for _, w := range a.Policy.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy file (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	conn.addFlags(cmd)
	return cmd
}

func newPolicyGetCmd() *cobra.Command {
	var conn serverConn
	var format string
	var version int
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List the policies, or show one (its rules, exceptions, clusters; -o yaml prints the document)",
		Example: `  mamori policy get
  mamori policy get prod
  mamori policy get prod --version 3 -o yaml > prod.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				l, err := c.ListPolicies(cmd.Context())
				if err != nil {
					return err
				}
				if format == "json" {
					return writeJSONOut(out, l)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tRULES\tEXCEPTIONS\tCLUSTERS\tUPDATED")
				for _, p := range l.Policies {
					ex := fmt.Sprint(p.Exceptions)
					if p.ExpiredExceptions > 0 {
						ex += fmt.Sprintf(" (%d expired)", p.ExpiredExceptions)
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.Version, p.Rules, ex, dash(strings.Join(p.Clusters, ",")), p.UpdatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			}
			p, err := c.GetPolicy(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			switch format {
			case "yaml":
				_, err := io.WriteString(out, p.Document)
				return err
			case "json":
				return writeJSONOut(out, p)
			case "table", "":
			default:
				return fmt.Errorf("--output %q: want table, yaml or json", format)
			}
			writePolicyTable(out, p)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output: table, yaml (the document as applied) or json")
	cmd.Flags().IntVar(&version, "version", 0, "show this version (default: the latest)")
	conn.addFlags(cmd)
	return cmd
}

func writePolicyTable(out io.Writer, p api.Policy) {
	fmt.Fprintf(out, "Policy %s, version %d of %d (applied %s", p.Name, p.Version, p.LatestVersion, p.VersionCreatedAt.Format(time.RFC3339))
	if p.CreatedBy != "" {
		fmt.Fprintf(out, " by %s", p.CreatedBy)
	}
	fmt.Fprintln(out, ")")
	if p.Description != "" {
		fmt.Fprintln(out, p.Description)
	}
	fmt.Fprintf(out, "Enforced by: %s\n", dash(strings.Join(p.Clusters, ", ")))
	if p.ParseError != "" {
		fmt.Fprintf(out, "The stored document does not parse with this mamori: %s\n", p.ParseError)
		return
	}
	unknown := p.UnknownImages
	if p.OnScanFailure != "" {
		unknown += " (on scan failure: " + p.OnScanFailure + ")"
	}
	fmt.Fprintf(out, "Images never scanned: %s\n\n", unknown)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tRULE\tACTION\tCRITERION\tSCOPE")
	for _, r := range p.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Section, r.Name, r.Action, r.Criterion, dash(r.Scope))
	}
	_ = tw.Flush()
	if len(p.Runtime) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUNTIME RULESET\tACTION\tRULE ACTIONS\tSCOPE")
		for _, r := range p.Runtime {
			var ra []string
			for k, v := range r.Rules {
				ra = append(ra, k+"="+v)
			}
			sort.Strings(ra)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Ruleset, dash(r.Action), dash(strings.Join(ra, ", ")), dash(r.Scope))
		}
		_ = tw.Flush()
	}
	if len(p.Exceptions) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EXCEPTION\tEXPIRES\tSCOPE\tREASON")
		for _, x := range p.Exceptions {
			exp := dash(x.Expires)
			if x.Expired {
				exp += " (expired)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Name, exp, dash(x.Scope), x.Reason)
		}
		_ = tw.Flush()
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}

func newPolicyVersionsCmd() *cobra.Command {
	var conn serverConn
	cmd := &cobra.Command{
		Use:   "versions NAME",
		Short: "List a policy's versions, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			l, err := c.PolicyVersions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tAPPLIED\tBY\tDIGEST")
			for _, v := range l.Versions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", v.Version, v.CreatedAt.Format(time.RFC3339), dash(v.CreatedBy), v.Digest)
			}
			return tw.Flush()
		},
	}
	conn.addFlags(cmd)
	return cmd
}

func newPolicyDeleteCmd(g *globalOptions) *cobra.Command {
	var conn serverConn
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy and its versions (refused while a cluster enforces it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			if err := c.DeletePolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "policy %q deleted\n", args[0])
			}
			return nil
		},
	}
	conn.addFlags(cmd)
	return cmd
}

func newPolicyAssignCmd(g *globalOptions) *cobra.Command {
	var conn serverConn
	var cluster string
	var none bool
	cmd := &cobra.Command{
		Use:   "assign NAME --cluster CLUSTER",
		Short: "Make a cluster enforce a policy (one policy per cluster; --none to remove it)",
		Example: `  mamori policy assign prod --cluster eu-1
  mamori policy assign --none --cluster eu-1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			switch {
			case none && len(args) == 0:
			case !none && len(args) == 1:
				name = args[0]
			default:
				return errors.New("give a policy NAME, or --none")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			id, err := clusterID(cmd.Context(), c, cluster)
			if err != nil {
				return err
			}
			cl, err := c.AssignClusterPolicy(cmd.Context(), id, name)
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "cluster %q enforces %s\n", cl.Name, dash(cl.Policy))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster's name")
	cmd.Flags().BoolVar(&none, "none", false, "the cluster enforces no policy")
	_ = cmd.MarkFlagRequired("cluster")
	conn.addFlags(cmd)
	return cmd
}

func clusterID(ctx context.Context, c *client.Client, name string) (int64, error) {
	l, err := c.ListClusters(ctx)
	if err != nil {
		return 0, err
	}
	for _, cl := range l.Clusters {
		if cl.Name == name {
			return cl.ID, nil
		}
	}
	return 0, fmt.Errorf("no cluster %q on the server", name)
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
