package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"mamori/internal/analyzer"
	"mamori/internal/cache"
	"mamori/internal/model"
	"mamori/internal/osrelease"
	"mamori/internal/progress"
)

// Matcher turns an inventory into vulnerabilities (and malware findings for
// known-malicious packages).
type Matcher interface {
	Match(ctx context.Context, inv *model.Inventory) ([]model.Vulnerability, []model.Finding, error)
}

// ImageChecker runs checks that need the whole image: its configuration and
// the merged inventory and findings (misconfiguration of the image).
type ImageChecker interface {
	CheckImage(ctx context.Context, cfg *v1.ConfigFile, inv *model.Inventory, findings []model.Finding) ([]model.Finding, error)
}

// Scanner runs one configured scan. It is safe for concurrent use.
type Scanner struct {
	set      *analyzer.Set
	config   []analyzer.ConfigAnalyzer
	cache    *cache.Cache
	matcher  Matcher
	checker  ImageChecker
	scanners []string
	log      *slog.Logger
	version  string
	quiet    bool
	layerPar int
	db       *model.DBInfo
	// showPackagedSecrets keeps secrets found in unmodified files of OS
	// packages (at the lowest severity); they are left out by default.
	showPackagedSecrets bool
}

// Config holds what a Scanner is built from. Set is required; everything
// else is optional.
type Config struct {
	Set *analyzer.Set
	// ConfigAnalyzers look at an image's configuration.
	ConfigAnalyzers []analyzer.ConfigAnalyzer
	// Cache stores per-layer results; nil disables caching.
	Cache *cache.Cache
	// Matcher matches vulnerabilities; nil skips matching.
	Matcher Matcher
	// Checker runs whole-image checks; nil skips them.
	Checker ImageChecker
	// Scanners names the scanners that run, for the result.
	Scanners []string
	Logger   *slog.Logger
	// Version is mamori's version, for the result's Tool.
	Version string
	// Quiet hides progress.
	Quiet bool
	// DB describes the vulnerability database, for the result.
	DB *model.DBInfo
	// LayerParallelism bounds how many layers are walked at once (default GOMAXPROCS).
	LayerParallelism int
	// ShowPackagedSecrets keeps secrets in unmodified files an OS package
	// installed (the distribution's documentation examples), at the lowest
	// severity naming the package; by default they are left out.
	ShowPackagedSecrets bool
}

// New returns a Scanner.
func New(c Config) (*Scanner, error) {
	if c.Set == nil {
		return nil, errors.New("scan: no analyzer set")
	}
	s := &Scanner{set: c.Set, config: c.ConfigAnalyzers, cache: c.Cache, matcher: c.Matcher,
		checker: c.Checker, scanners: c.Scanners, log: c.Logger, version: c.Version, quiet: c.Quiet,
		layerPar: c.LayerParallelism, db: c.DB, showPackagedSecrets: c.ShowPackagedSecrets}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.layerPar <= 0 {
		s.layerPar = runtime.GOMAXPROCS(0)
	}
	return s, nil
}

func (s *Scanner) newResult(t model.Target) *model.Result {
	return &model.Result{
		SchemaVersion:   model.SchemaVersion,
		Tool:            model.Tool{Name: "mamori", Version: s.version},
		ScanID:          newScanID(),
		CreatedAt:       time.Now().UTC().Truncate(time.Second),
		Target:          t,
		Scanners:        s.scanners,
		Vulnerabilities: []model.Vulnerability{},
		Findings:        []model.Finding{},
		Inventory:       model.Inventory{Packages: []model.Package{}},
		DB:              s.db,
	}
}

func newScanID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// ImageTarget describes an opened image for the result.
type ImageTarget struct {
	Name     string
	Digest   string
	RepoTags []string
	Platform string
}

// ScanImage scans img: walks every layer once (or takes it from the cache),
// merges the layers, then matches and checks.
func (s *Scanner) ScanImage(ctx context.Context, img v1.Image, it ImageTarget) (*model.Result, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("scan %s: read config: %w", it.Name, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("scan %s: list layers: %w", it.Name, err)
	}
	t := model.Target{Name: it.Name, Type: model.TargetImage, Digest: it.Digest, RepoTags: it.RepoTags, Platform: it.Platform}
	if t.Digest == "" {
		// Archives from `docker save` carry no registry manifest: the digest
		// of the manifest the image would be pushed with identifies it as
		// stably (same layers and config, same digest).
		if d, err := img.Digest(); err == nil {
			t.Digest = d.String()
		}
	}
	if id, err := img.ConfigName(); err == nil {
		t.ImageID = id.String()
	}
	if !cfg.Created.IsZero() {
		t.Created = cfg.Created.UTC()
	}
	history := nonEmptyHistory(cfg)
	for i, l := range layers {
		var li model.Layer
		d, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("scan %s: layer %d diff ID: %w", it.Name, i, err)
		}
		li.DiffID = d.String()
		if dg, err := l.Digest(); err == nil {
			li.Digest = dg.String()
		}
		if sz, err := l.Size(); err == nil {
			li.Size = sz
			t.Size += sz
		}
		if i < len(history) {
			li.CreatedBy = history[i]
		}
		t.Layers = append(t.Layers, li)
	}
	res := s.newResult(t)

	bar := progress.New("scanning "+it.Name, s.quiet)
	bar.SetLayers(len(layers))
	results := make([]*analyzer.LayerResult, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.layerPar)
	for i, l := range layers {
		g.Go(func() error {
			lr, cached, err := s.layer(gctx, l, t.Layers[i].DiffID, bar)
			if err != nil {
				return err
			}
			results[i] = lr
			bar.LayerDone(cached)
			return nil
		})
	}
	err = g.Wait()
	bar.Done()
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", it.Name, err)
	}
	for _, ca := range s.config {
		fs, err := ca.AnalyzeConfig(ctx, cfg)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %v", ca.Name(), err))
			continue
		}
		res.Findings = append(res.Findings, fs...)
	}
	if err := s.finish(ctx, res, analyzer.Merge(results), cfg); err != nil {
		return nil, err
	}
	return res, nil
}

// layer returns the analysis of one layer, from the cache when present.
func (s *Scanner) layer(ctx context.Context, l v1.Layer, diffID string, bar *progress.Bar) (*analyzer.LayerResult, bool, error) {
	key := s.set.CacheKey(diffID)
	if lr, err := s.cache.Get(key); err == nil {
		s.log.Debug("layer from cache", "diffID", diffID)
		return lr, true, nil
	} else if !errors.Is(err, cache.ErrMiss) {
		s.log.Warn("layer cache", "err", err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, fmt.Errorf("open layer %s: %w", diffID, err)
	}
	defer rc.Close()
	lr, err := s.set.WalkLayer(ctx, diffID, rc, bar.Add)
	if err != nil {
		return nil, false, fmt.Errorf("layer %s: %w", diffID, err)
	}
	// Read to the end: the image sources verify the diff ID when the stream
	// ends, and a layer whose content does not match its diff ID must never
	// be cached under it (it would poison every image sharing that layer).
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, false, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if len(lr.HardLinks) > 0 {
		// A wanted file stored as a hard link to an earlier entry: read the
		// layer a second time for those bytes (rare: never for most layers).
		rc2, err := l.Uncompressed()
		if err != nil {
			return nil, false, fmt.Errorf("open layer %s: %w", diffID, err)
		}
		err = s.set.WalkHardLinks(ctx, lr, rc2, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, rc2)
		}
		rc2.Close()
		if err != nil {
			return nil, false, fmt.Errorf("layer %s: %w", diffID, err)
		}
	}
	if err := s.cache.Put(key, lr); err != nil {
		s.log.Warn("layer cache", "err", err)
	}
	return lr, false, nil
}

// ScanDir scans a file tree: a root file system (kind TargetRootFS) or a
// source directory (TargetFS). File trees are not cached: they have no
// content address.
func (s *Scanner) ScanDir(ctx context.Context, dir, kind string) (*model.Result, error) {
	res := s.newResult(model.Target{Name: dir, Type: kind})
	bar := progress.New("scanning "+dir, s.quiet)
	lr, err := s.set.WalkDir(ctx, dir, bar.Add)
	bar.Done()
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	if err := s.finish(ctx, res, analyzer.Merge([]*analyzer.LayerResult{lr}), nil); err != nil {
		return nil, err
	}
	return res, nil
}

// finish turns the merged view into the inventory, runs whole-target checks
// and matching, and sorts everything.
func (s *Scanner) finish(ctx context.Context, res *model.Result, m *analyzer.Merged, cfg *v1.ConfigFile) error {
	res.Warnings = append(res.Warnings, m.Warnings...)
	oses := map[string]*model.OS{}
	seen := map[string]bool{}
	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		r := m.Files[p]
		if r.OS != nil {
			oses[p] = r.OS
		}
		for _, pkg := range r.Packages {
			k := pkg.Key()
			if seen[k] {
				continue
			}
			seen[k] = true
			res.Inventory.Packages = append(res.Inventory.Packages, pkg)
		}
		res.Findings = append(res.Findings, r.Findings...)
	}
	res.Inventory.OS = osrelease.Resolve(oses)
	osrelease.Apply(&res.Inventory)
	model.SortPackages(res.Inventory.Packages)
	applyOwnership(res, m, s.showPackagedSecrets)
	attachFiles(res, m)

	if s.checker != nil {
		fs, err := s.checker.CheckImage(ctx, cfg, &res.Inventory, res.Findings)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("image checks: %v", err))
		}
		res.Findings = append(res.Findings, fs...)
	}
	if s.matcher != nil {
		vulns, mal, err := s.matcher.Match(ctx, &res.Inventory)
		if err != nil {
			return fmt.Errorf("match vulnerabilities: %w", err)
		}
		res.Vulnerabilities = append(res.Vulnerabilities, vulns...)
		res.Findings = append(res.Findings, mal...)
	}
	if res.DB != nil && res.DB.BuiltAt.IsZero() {
		res.DB = nil // a first run with nothing to match fetched no database
	}
	model.SortFindings(res.Findings)
	model.SortVulnerabilities(res.Vulnerabilities)
	return nil
}

// nonEmptyHistory returns the created_by of history entries that made a
// layer, aligned with the layers.
func nonEmptyHistory(cfg *v1.ConfigFile) []string {
	var out []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			out = append(out, h.CreatedBy)
		}
	}
	if len(out) != len(cfg.RootFS.DiffIDs) {
		return nil // history does not describe the layers; say nothing rather than misattribute
	}
	return out
}
