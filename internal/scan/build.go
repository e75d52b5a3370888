package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/analyzer"
	"mamori/internal/cache"
	"mamori/internal/catalog"
	"mamori/internal/malware"
	"mamori/internal/misconfig"
	"mamori/internal/model"
	"mamori/internal/secret"
)

// Scanner names accepted by BuildOptions.Scanners.
const (
	ScannerVuln      = "vuln"
	ScannerSecret    = "secret"
	ScannerMalware   = "malware"
	ScannerMisconfig = "misconfig"
)

// MatcherOpener opens the vulnerability matcher of a scan: the matcher,
// the database's description for the results (its BuiltAt may be filled in
// later, by a matcher that fetches its database on first use), a close
// function and warnings (an old database). Package scan/vulnmatch opens one
// over a vulnerability database. scan itself links no database, so that
// the components that only take inventory (the cluster component, the node
// agent: the server matches) build their scanners here too.
type MatcherOpener func(ctx context.Context) (m Matcher, db *model.DBInfo, closer func(), warnings []string, err error)

// BuildOptions say which scanners to assemble for which kind of target.
type BuildOptions struct {
	// Kind is TargetImage, TargetRootFS or TargetFS.
	Kind string
	// Scanners beyond the inventory, which always runs.
	Scanners    []string
	Cache       *cache.Cache
	ShowSecrets bool
	// ShowPackagedSecrets: see Config.
	ShowPackagedSecrets bool
	SecretConfig        string
	SkipDirs            []string
	Clamd               string
	YARARules           []string
	HashLists           []string
	Logger              *slog.Logger
	Version             string
	Quiet               bool
	// TempDir is where large files are spilled during analysis.
	TempDir string
	// Matcher opens the vulnerability matcher; required when Scanners
	// has vuln.
	Matcher MatcherOpener
}

// Build assembles a Scanner from opts: the explicit analyzer lists of each
// capability. It returns a cleanup function (closing the vulnerability DB,
// engine connections) and warnings about scanners that could only partly
// be set up (no clamd, an old DB).
func Build(ctx context.Context, opts BuildOptions) (*Scanner, func(), []string, error) {
	var (
		as       []analyzer.Analyzer
		warnings []string
		closers  []func()
	)
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	tmp := opts.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	switch opts.Kind {
	case model.TargetImage, model.TargetRootFS:
		inst, err := catalog.Installed(tmp)
		if err != nil {
			return nil, nil, nil, err
		}
		as = append(as, inst...)
	case model.TargetFS:
		as = append(as, catalog.Declared()...)
	default:
		return nil, nil, nil, fmt.Errorf("scan: unknown target kind %q", opts.Kind)
	}
	cfg := Config{Cache: opts.Cache, Logger: opts.Logger, Version: opts.Version, Quiet: opts.Quiet,
		ShowPackagedSecrets: opts.ShowPackagedSecrets}
	for _, s := range opts.Scanners {
		switch s {
		case ScannerVuln, ScannerSecret, ScannerMalware, ScannerMisconfig:
			cfg.Scanners = append(cfg.Scanners, s)
		default:
			return nil, nil, nil, fmt.Errorf("scan: unknown scanner %q (want vuln, secret, malware or misconfig)", s)
		}
	}
	var keyExtra []string
	var configAnalyzers []analyzer.ConfigAnalyzer
	if has(cfg.Scanners, ScannerSecret) {
		sopts := []secret.Option{secret.WithShowSecrets(opts.ShowSecrets)}
		if opts.SecretConfig != "" {
			sopts = append(sopts, secret.WithConfigFile(opts.SecretConfig))
		}
		sa, err := secret.New(sopts...)
		if err != nil {
			return nil, nil, nil, err
		}
		as = append(as, sa)
		configAnalyzers = append(configAnalyzers, sa)
		keyExtra = append(keyExtra, "secret:"+sa.OptionsDigest())
	}
	if has(cfg.Scanners, ScannerMalware) {
		builtin, err := malware.BuiltinHashList()
		if err != nil {
			return nil, nil, nil, err
		}
		// Engine notices come back through Notices (below) into the scan's
		// warnings; the engine's own logger would print them a second time.
		mopts := []malware.Option{malware.WithTempDir(tmp), malware.WithEngines(builtin),
			malware.WithLogger(slog.New(slog.DiscardHandler))}
		clamd := opts.Clamd
		if clamd == "" {
			clamd = malware.DefaultClamdAddress
		}
		mopts = append(mopts, malware.WithClamd(clamd))
		if len(opts.YARARules) > 0 {
			mopts = append(mopts, malware.WithYARARules(opts.YARARules...))
		}
		for _, h := range opts.HashLists {
			mopts = append(mopts, malware.WithHashList(h))
		}
		ma, err := malware.New(ctx, mopts...)
		if err != nil {
			return nil, nil, nil, err
		}
		warnings = append(warnings, ma.Notices()...)
		as = append(as, ma)
		keyExtra = append(keyExtra, "malware:"+ma.Fingerprint())
	}
	if has(cfg.Scanners, ScannerMisconfig) {
		as = append(as, misconfig.NewConfigFileAnalyzer())
		if opts.Kind != model.TargetFS {
			as = append(as, misconfig.NewFileModeAnalyzer(), misconfig.NewAccountsAnalyzer(), misconfig.NewLeftoversAnalyzer())
		}
		cfg.Checker = imageChecker{}
	}
	if has(cfg.Scanners, ScannerVuln) {
		if opts.Matcher == nil {
			cleanup()
			return nil, nil, nil, errors.New("scan: the vuln scanner needs a vulnerability matcher (BuildOptions.Matcher)")
		}
		m, info, closer, ws, err := opts.Matcher(ctx)
		if err != nil {
			cleanup()
			return nil, nil, nil, fmt.Errorf("%w\n(use --scanners without vuln to scan without vulnerability matching)", err)
		}
		if closer != nil {
			closers = append(closers, closer)
		}
		warnings = append(warnings, ws...)
		cfg.DB, cfg.Matcher = info, m
	}
	cfg.ConfigAnalyzers = configAnalyzers
	setOpts := []analyzer.Option{analyzer.WithTempDir(tmp), analyzer.WithCacheKeyExtra(keyExtra...)}
	if len(opts.SkipDirs) > 0 {
		setOpts = append(setOpts, analyzer.WithSkipDirs(opts.SkipDirs...))
	}
	set, err := analyzer.NewSet(as, setOpts...)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	cfg.Set = set
	s, err := New(cfg)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return s, cleanup, warnings, nil
}

// imageChecker runs the image-configuration checks of internal/misconfig
// (CIS Docker Benchmark §4) on an image's config and merged inventory.
type imageChecker struct{}

func (imageChecker) CheckImage(_ context.Context, cfg *v1.ConfigFile, inv *model.Inventory, _ []model.Finding) ([]model.Finding, error) {
	if cfg == nil {
		return nil, nil // a file tree has no image configuration
	}
	names := make([]string, 0, len(inv.Packages))
	for _, p := range inv.Packages {
		names = append(names, p.Name)
	}
	return misconfig.CheckImage(cfg, misconfig.ImageFacts{Packages: names}), nil
}

func has(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
