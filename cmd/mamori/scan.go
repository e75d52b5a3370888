package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mamori/internal/api/client"
	"mamori/internal/cache"
	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/report"
	"mamori/internal/scan"
	"mamori/internal/scan/vulnmatch"
	"mamori/internal/vulndb"
)

// scanOptions are the flags of image, rootfs, fs and sbom.
type scanOptions struct {
	format        string
	output        string
	scanners      []string
	platform      string
	input         string
	severities    []string
	ignoreUnfixed bool
	ignoreFile    string
	vexFiles      []string
	exitCode      int
	failOn        string
	policyFile    string
	failOnKEV     bool
	failOnEPSS    float64
	showSecrets   bool
	secretConfig  string
	skipDirs      []string
	noCache       bool
	clamd         string
	yaraRules     []string
	hashLists     []string
	insecure      bool
	sbom          bool
	serverURL     string
	token         string
	serverCA      string
	serverPin     string
	dbMaxAge      time.Duration
	offline       bool
	pkgSecrets    bool
	skipDBUpdate  bool
	dbURL         string
	sig           verifyOptions
}

func (o *scanOptions) addFlags(cmd *cobra.Command, defaultScanners []string) {
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "table", "output format: table, json, cyclonedx, spdx-json, sarif, junit")
	f.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringSliceVar(&o.scanners, "scanners", defaultScanners, "scanners to run: vuln, secret, malware, misconfig (inventory always runs)")
	f.StringSliceVar(&o.severities, "severity", nil, "report only these severities (critical,high,medium,low,negligible,unknown)")
	f.BoolVar(&o.ignoreUnfixed, "ignore-unfixed", false, "report only vulnerabilities with a known fix")
	f.StringVar(&o.ignoreFile, "ignorefile", "", "YAML file of vulnerability IDs to ignore, each with a reason and an optional expiry")
	f.StringSliceVar(&o.vexFiles, "vex", nil, "OpenVEX documents whose not_affected/fixed statements suppress vulnerabilities")
	f.IntVar(&o.exitCode, "exit-code", 0, "exit with this code when findings at or above --fail-on remain (default 1 when --fail-on is set)")
	f.StringVar(&o.failOn, "fail-on", "", "fail (see --exit-code) when a vulnerability or finding of this severity or worse is found")
	f.StringVar(&o.policyFile, "policy", "", "policy file (docs/policies.md): fail (see --exit-code) when its admission rules block the image")
	f.BoolVar(&o.failOnKEV, "fail-on-kev", false, "fail (see --exit-code) when a vulnerability is in CISA's Known Exploited Vulnerabilities catalogue")
	f.Float64Var(&o.failOnEPSS, "fail-on-epss", 0, "fail (see --exit-code) when a vulnerability's EPSS probability is at or above this (0-1)")
	f.BoolVar(&o.showSecrets, "show-secrets", false, "print secrets unredacted (never do this in shared CI logs)")
	f.StringVar(&o.secretConfig, "secret-config", "", "YAML file with custom secret rules and allow rules")
	f.BoolVar(&o.pkgSecrets, "show-packaged-secrets", false, "also report secrets in files an OS package installed unmodified (documentation examples), at the lowest severity")
	f.StringSliceVar(&o.skipDirs, "skip-dirs", nil, "directories (relative to the root) not to scan")
	f.BoolVar(&o.noCache, "no-cache", false, "do not read or write the layer cache")
	f.StringVar(&o.clamd, "clamd", "", "clamd address for malware scanning: unix:///run/clamav/clamd.ctl or tcp://127.0.0.1:3310 (default: the Debian socket when present)")
	f.StringSliceVar(&o.yaraRules, "yara-rules", nil, "YARA rule files or directories for malware scanning")
	f.StringSliceVar(&o.hashLists, "malware-hashes", nil, "files of known-bad SHA-256 hashes (\"<sha256>  <name>\" per line)")
	f.DurationVar(&o.dbMaxAge, "db-max-age", vulnmatch.DefaultDBMaxAge, "warn when the vulnerability database is older than this (0: never)")
	f.BoolVar(&o.skipDBUpdate, "skip-db-update", false, "never download the vulnerability database: with none, vulnerability matching fails with an error")
	f.BoolVar(&o.offline, "offline", false, "download nothing (implies --skip-db-update): for CI that must not reach out")
	f.StringVar(&o.dbURL, "db-url", "", "OSV mirror for the first-run database download (default "+vulndb.DefaultBaseURL+")")
	f.StringVar(&o.serverURL, "server", "", "upload the result to this mamori server (https://host:8443)")
	f.StringVar(&o.token, "token", "", "API token for --server (operator role; default $MAMORI_TOKEN, which keeps it out of shell history)")
	f.StringVar(&o.serverCA, "server-ca", "", "PEM CA certificate to verify --server with (a self-signed server's <data-dir>/tls-cert.pem)")
	f.StringVar(&o.serverPin, "server-cert-sha256", "", "accept only the --server certificate with this SHA-256 (what mamori server logs as certSHA256)")
}

func (o *scanOptions) addImageFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.platform, "platform", "linux/amd64", "platform to pick from a multi-platform image")
	f.StringVar(&o.input, "input", "", "read the image from a docker-archive or OCI layout tar/directory instead of a reference")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain-HTTP registries (for loopback test registries)")
}

func newImageCmd(g *globalOptions) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "image [REF]",
		Short: "Scan a container image (registry reference, docker/containerd daemon, docker-archive or OCI layout)",
		Example: `  mamori image alpine:3.20
  mamori image --input image.tar --format json --output result.json
  mamori image registry.example.com/app:1.2 --fail-on high`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImage(cmd.Context(), g, o, args, cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd, []string{"vuln", "secret"})
	o.addImageFlags(cmd)
	o.sig.addFlags(cmd)
	return cmd
}

func newSBOMCmd(g *globalOptions) *cobra.Command {
	o := &scanOptions{sbom: true}
	cmd := &cobra.Command{
		Use:   "sbom [REF|DIR]",
		Short: "Write the software bill of materials of an image or directory (inventory only)",
		Example: `  mamori sbom --input image.tar --format cyclonedx
  mamori sbom ./rootfs --format spdx-json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.scanners = nil
			if o.input == "" && len(args) == 1 {
				if st, err := os.Stat(args[0]); err == nil && st.IsDir() && !isOCILayout(args[0]) {
					return runDir(cmd.Context(), g, o, args[0], model.TargetRootFS, cmd.OutOrStdout())
				}
			}
			return runImage(cmd.Context(), g, o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "cyclonedx", "output format: cyclonedx, spdx-json, json, table")
	f.StringVarP(&o.output, "output", "o", "", "write the SBOM to this file instead of stdout")
	f.BoolVar(&o.noCache, "no-cache", false, "do not read or write the layer cache")
	o.addImageFlags(cmd)
	return cmd
}

func newRootFSCmd(g *globalOptions) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "rootfs DIR",
		Short: "Scan an unpacked root file system (installed packages, as in an image)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDir(cmd.Context(), g, o, args[0], model.TargetRootFS, cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd, []string{"vuln", "secret"})
	return cmd
}

func newFSCmd(g *globalOptions) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "fs DIR",
		Short: "Scan a source tree (lock files, secrets, manifests)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDir(cmd.Context(), g, o, args[0], model.TargetFS, cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd, []string{"vuln", "secret"})
	return cmd
}

func isOCILayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil
}

// setup validates the flags and builds the scanner.
func setup(ctx context.Context, g *globalOptions, o *scanOptions, kind string) (*scan.Scanner, func(), report.Format, error) {
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return nil, nil, "", err
	}
	if err := checkEPSSFlag(o.failOnEPSS); err != nil {
		return nil, nil, "", err
	}
	var c *cache.Cache
	if !o.noCache && kind == model.TargetImage {
		dir := g.cacheDir
		if dir == "" {
			if dir, err = cache.DefaultDir(); err != nil {
				return nil, nil, "", err
			}
		}
		if c, err = cache.Open(dir); err != nil {
			return nil, nil, "", err
		}
	}
	s, cleanup, warnings, err := scan.Build(ctx, scan.BuildOptions{
		Kind:                kind,
		Scanners:            o.scanners,
		Cache:               c,
		ShowSecrets:         o.showSecrets,
		ShowPackagedSecrets: o.pkgSecrets,
		SecretConfig:        o.secretConfig,
		SkipDirs:            o.skipDirs,
		Clamd:               o.clamd,
		YARARules:           o.yaraRules,
		HashLists:           o.hashLists,
		Logger:              g.logger,
		Version:             version,
		Quiet:               g.quiet,
		Matcher:             vulnmatch.Opener(vulnmatch.Options{Dir: dbDir(g), MaxAge: dbMaxAge(o.dbMaxAge), Fetch: firstRunFetch(g, o)}),
	})
	if err != nil {
		return nil, nil, "", err
	}
	for _, w := range warnings {
		g.logger.Warn(w)
	}
	return s, cleanup, format, nil
}

// dbMaxAge maps the flag's 0 ("never warn") to Build's negative.
func dbMaxAge(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func dbDir(g *globalOptions) string {
	if g.dbDir != "" {
		return g.dbDir
	}
	dir := g.cacheDir
	if dir == "" {
		d, err := cache.DefaultDir()
		if err != nil {
			return ""
		}
		dir = d
	}
	return filepath.Join(dir, "db")
}

func runImage(ctx context.Context, g *globalOptions, o *scanOptions, args []string, stdout io.Writer) error {
	if (o.input == "") == (len(args) == 0) {
		return fmt.Errorf("give an image reference or --input FILE (one of them)")
	}
	s, cleanup, format, err := setup(ctx, g, o, model.TargetImage)
	if err != nil {
		return err
	}
	defer cleanup()
	if o.sig.verify || o.policyFile != "" {
		var ev *policy.Evaluator
		if o.policyFile != "" {
			if ev, err = loadPolicy(o.policyFile); err != nil {
				return err
			}
		}
		ref := ""
		if len(args) == 1 {
			ref = args[0]
		}
		if err := o.sig.run(ctx, ref, o.insecure, ev, os.Stderr, g.quiet); err != nil {
			return err
		}
	}
	opts := []image.Option{image.WithPlatform(o.platform)}
	if o.insecure {
		opts = append(opts, image.WithPlainHTTP())
	}
	var img *image.Image
	if o.input != "" {
		img, err = image.OpenFile(ctx, o.input, opts...)
	} else {
		img, err = image.Open(ctx, args[0], opts...)
	}
	if err != nil {
		return err
	}
	defer img.Close()
	res, err := s.ScanImage(ctx, img.Image(), scan.ImageTarget{Name: img.Name(), Digest: img.Digest(), RepoTags: img.RepoTags(), Platform: img.Platform()})
	if err != nil {
		return err
	}
	return finish(ctx, g, o, format, res, stdout)
}

func runDir(ctx context.Context, g *globalOptions, o *scanOptions, dir, kind string, stdout io.Writer) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if kind == model.TargetRootFS && isRoot(dir) {
		o.skipDirs = append(o.skipDirs, "proc", "sys", "dev", "run")
	}
	s, cleanup, format, err := setup(ctx, g, o, kind)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := s.ScanDir(ctx, dir, kind)
	if err != nil {
		return err
	}
	return finish(ctx, g, o, format, res, stdout)
}

func isRoot(dir string) bool {
	abs, err := filepath.Abs(dir)
	return err == nil && abs == "/"
}

// finish uploads (with ctx: Ctrl-C cancels the upload), filters, reports
// and applies the CI gate.
func finish(ctx context.Context, g *globalOptions, o *scanOptions, format report.Format, res *model.Result, stdout io.Writer) error {
	if res.Target.Type != model.TargetConfig {
		recordEcosystems(dbDir(g), res)
	}
	// The server gets the whole result: its views filter for themselves.
	if o.serverURL != "" {
		token := o.token
		if token == "" {
			token = os.Getenv("MAMORI_TOKEN")
		}
		if token == "" {
			return fmt.Errorf("--server needs a token: --token or MAMORI_TOKEN")
		}
		copts := []client.Option{client.WithUserAgent("mamori/" + version)}
		if o.serverCA != "" {
			copts = append(copts, client.WithCAFile(o.serverCA))
		}
		if o.serverPin != "" {
			copts = append(copts, client.WithPinnedCertificate(o.serverPin))
		}
		c, err := client.New(o.serverURL, token, copts...)
		if err != nil {
			return fmt.Errorf("upload to %s: %w", o.serverURL, err)
		}
		rc, err := c.UploadScan(ctx, res)
		if err != nil {
			return fmt.Errorf("upload to %s: %w", o.serverURL, err)
		}
		if !g.quiet {
			fmt.Fprintf(os.Stderr, "uploaded to %s: %s (image %d, scan %d)\n", o.serverURL, rc.Status, rc.ImageID, rc.ScanID)
		}
	}
	for _, w := range res.Warnings {
		g.logger.Warn(w)
	}
	gopts, err := gateOptions(o)
	if err != nil {
		return err
	}
	gate, err := policy.NewGate(gopts)
	if err != nil {
		return err
	}
	now := time.Now()
	verdict := gate.Check(res, now)
	exploit, err := exploitReasons(verdict.Result, o.failOnKEV, o.failOnEPSS)
	if err != nil {
		return err
	}
	if len(exploit) > 0 {
		verdict.Failed = true
		verdict.Reasons = append(verdict.Reasons, exploit...)
	}
	for _, w := range verdict.Warnings {
		g.logger.Warn(w)
	}
	res = verdict.Result
	var pdec *policy.Decision
	if o.policyFile != "" {
		ev, err := loadPolicy(o.policyFile)
		if err != nil {
			return err
		}
		for _, w := range ev.Warnings() {
			g.logger.Warn(w)
		}
		d := ev.Evaluate(&policy.Image{Result: res, Signatures: o.sig.checks}, now)
		for _, w := range d.Warnings() {
			g.logger.Warn(w)
		}
		pdec = &d
	}
	out := stdout
	if o.output != "" {
		f, err := os.OpenFile(o.output, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("open output: %w", err)
		}
		defer f.Close()
		out = f
	}
	if err := report.Write(out, format, []*model.Result{res}, report.Options{SBOM: o.sbom}); err != nil {
		return err
	}
	if verdict.Failed {
		code := o.exitCode
		if code == 0 {
			code = 1
		}
		if !g.quiet {
			fmt.Fprintf(os.Stderr, "mamori: gate failed: %s\n", strings.Join(verdict.Reasons, "; "))
		}
		return &exitError{code: code}
	}
	if o.sig.verify && (o.sig.result == nil || !o.sig.result.Verified) {
		code := o.exitCode
		if code == 0 {
			code = 1
		}
		return &exitError{code: code}
	}
	if pdec != nil && pdec.Action == model.ActionBlock {
		code := o.exitCode
		if code == 0 {
			code = 1
		}
		if !g.quiet {
			fmt.Fprintf(os.Stderr, "mamori: policy %q blocks the image:\n  %s\n", pdec.Policy, strings.ReplaceAll(pdec.Message(), "\n", "\n  "))
		}
		return &exitError{code: code}
	}
	return nil
}
