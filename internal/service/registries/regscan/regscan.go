// Package regscan runs registry scans: it lists a registry's repositories
// and tags, applies the registry's filters, scans each selected image with
// the CLI's scanners and the shared layer cache, has the images service
// match and store each result, and records the sync's outcome. Syncs run
// in the background, at most two at a time and one per registry, when an
// admin asks (API, console) or when a registry's schedule is due.
package regscan

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mamori/internal/cache"
	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/scan"
	"mamori/internal/service/registries"
	"mamori/internal/service/registries/regfilter"
	"mamori/internal/store"
)

// Config configures a Syncer.
type Config struct {
	Store store.RegistryStore
	// Match matches a fresh result's inventory against the server's
	// vulnerability DB (vulnmatch.Matcher.MatchResult); Ingest stores it
	// (images.Service.Ingest).
	Match  func(ctx context.Context, res *model.Result) error
	Ingest func(ctx context.Context, res *model.Result) (store.IngestOutcome, error)
	// OpenSecret decrypts a registry's stored password.
	OpenSecret func(sealed []byte) ([]byte, error)
	// CacheDir is the per-layer cache shared by the syncs; TempDir their
	// scratch space.
	CacheDir, TempDir string
	// Clamd is the clamd address ("" = the default, used when it answers).
	Clamd   string
	Version string
	Logger  *slog.Logger
}

// Registry sync limits, each with its reason.
const (
	// MaxRepositories caps the repositories read from one registry's
	// catalog: large private registries hold thousands; a million entries
	// would be an attack on the server's memory.
	MaxRepositories = 10_000
	// MaxTagsPerRepository caps the tags considered in one repository.
	MaxTagsPerRepository = 10_000
	// MaxImagesPerSync caps the images scanned in one sync; the next sync
	// continues with the same selection (cached layers make it cheap).
	MaxImagesPerSync = 5_000
	// maxSyncErrors: how many per-image errors a sync's status keeps.
	maxSyncErrors = 5
	// syncTimeout bounds one registry sync.
	syncTimeout = 6 * time.Hour
	// maxParallelSyncs: registry scans are CPU and network heavy; two at a
	// time keeps the API responsive on a small server.
	maxParallelSyncs = 2
)

// Syncer runs registry syncs in the background, one at a time per registry.
type Syncer struct {
	cfg  Config
	log  *slog.Logger
	ctx  context.Context
	mu   sync.Mutex
	busy map[int64]bool
	sem  chan struct{}
	wg   sync.WaitGroup

	cacheOnce sync.Once
	cache     *cache.Cache
	cacheErr  error
}

// New returns a Syncer whose background syncs run under ctx (cancel it to
// stop them; Wait waits for them).
func New(ctx context.Context, cfg Config) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{cfg: cfg, log: cfg.Logger, ctx: ctx, busy: map[int64]bool{}, sem: make(chan struct{}, maxParallelSyncs)}
}

// Running reports whether a sync of registry id runs now.
func (y *Syncer) Running(id int64) bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.busy[id]
}

// Start runs a sync of registry id in the background unless one is
// running; it reports whether it started one.
func (y *Syncer) Start(id int64) bool {
	y.mu.Lock()
	if y.busy[id] {
		y.mu.Unlock()
		return false
	}
	y.busy[id] = true
	y.mu.Unlock()
	y.wg.Add(1)
	go func() {
		defer y.wg.Done()
		defer func() {
			y.mu.Lock()
			delete(y.busy, id)
			y.mu.Unlock()
		}()
		ctx := y.ctx
		select {
		case y.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-y.sem }()
		if _, err := y.Sync(ctx, id); err != nil && ctx.Err() == nil {
			y.log.Warn("registry sync failed", "registry", id, "err", err)
		}
	}()
	return true
}

// Wait waits for the background syncs (after their context ended).
func (y *Syncer) Wait() { y.wg.Wait() }

// RunDue starts the syncs whose schedule is due.
func (y *Syncer) RunDue(ctx context.Context) {
	regs, err := y.cfg.Store.ListRegistries(ctx)
	if err != nil {
		if ctx.Err() == nil {
			y.log.Warn("list registries", "err", err)
		}
		return
	}
	now := time.Now()
	for _, r := range regs {
		if r.Schedule > 0 && now.Sub(r.LastSync.At) >= r.Schedule {
			y.Start(r.ID)
		}
	}
}

// getCache opens the per-layer cache in the data dir once; every sync shares it.
func (y *Syncer) getCache() (*cache.Cache, error) {
	y.cacheOnce.Do(func() {
		y.cache, y.cacheErr = cache.Open(y.cfg.CacheDir)
	})
	return y.cache, y.cacheErr
}

// registryScanners are what a registry sync runs beside the inventory:
// the CLI's image scanners but vuln, which the server matches itself
// against its current DB (matchResult) and re-matches when the DB changes.
var registryScanners = []string{scan.ScannerSecret, scan.ScannerMalware, scan.ScannerMisconfig}

// buildScanner builds the scanner of one sync with scan.Build, the CLI's
// assembly and defaults: malware runs the built-in hash list always and
// clamd (Config.Clamd, default malware.DefaultClamdAddress) when it answers.
// It is built for each sync, not once, because clamd is probed at build:
// a clamd started after the server (its signature load takes a while at
// boot) or updated since is used by the next sync, and its signature
// version enters the layer cache key, so new signatures reach layers
// already cached — as with the CLI. warnings (clamd not reachable …) go
// into every result of the sync.
func (y *Syncer) buildScanner(ctx context.Context) (sc *scan.Scanner, cleanup func(), warnings []string, err error) {
	c, err := y.getCache()
	if err != nil {
		return nil, nil, nil, err
	}
	tmp := y.cfg.TempDir
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("regscan: create %s: %w", tmp, err)
	}
	sc, cleanup, warnings, err = scan.Build(ctx, scan.BuildOptions{
		Kind: model.TargetImage, Scanners: registryScanners, Cache: c, Clamd: y.cfg.Clamd,
		Logger: y.log, Version: y.cfg.Version, Quiet: true, TempDir: tmp,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("regscan: build scanner: %w", err)
	}
	return sc, cleanup, warnings, nil
}

// Report is the outcome of one registry sync.
type Report struct {
	Repositories int
	Images       int
	Ingested     int
	Failed       int
	Errors       []string
}

// staticKeychain gives one registry's credentials to that registry only.
type staticKeychain struct {
	host string
	auth authn.Authenticator
}

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// Sync lists registry id's repositories and tags, filters them, and
// scans and ingests each selected image, recording the outcome; it waits
// for the result (Start runs the same in the background).
func (y *Syncer) Sync(ctx context.Context, id int64) (rep Report, err error) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	reg, err := y.cfg.Store.GetRegistry(ctx, id)
	if err != nil {
		return rep, fmt.Errorf("registry %d: %w", id, err)
	}
	started := time.Now().UTC()
	if err := y.cfg.Store.RecordRegistrySync(ctx, id, store.RegistrySync{At: started, Status: store.SyncRunning}); err != nil {
		return rep, fmt.Errorf("registry %s: record sync: %w", reg.Name, err)
	}
	defer func() {
		rs := store.RegistrySync{At: started, Status: store.SyncOK}
		if err != nil {
			rs.Status, rs.Error = store.SyncFailed, err.Error()
		} else if rep.Failed > 0 {
			rs.Status = store.SyncFailed
			rs.Error = fmt.Sprintf("%d of %d images failed: %s", rep.Failed, rep.Images, strings.Join(rep.Errors, "; "))
		}
		// Record even when ctx ended (shutdown): a fresh short context.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		if rerr := y.cfg.Store.RecordRegistrySync(rctx, id, rs); rerr != nil {
			y.log.Warn("record registry sync", "registry", id, "err", rerr)
		}
		y.log.Info("registry sync done", "registry", id, "name", reg.Name, "status", rs.Status,
			"repositories", rep.Repositories, "images", rep.Images, "ingested", rep.Ingested, "failed", rep.Failed)
	}()

	host, plain, err := registries.Host(reg.URL)
	if err != nil {
		return rep, err
	}
	repos, err := regfilter.ParseRepositories(reg.RepositoryFilter)
	if err != nil {
		return rep, err
	}
	tagFilter, err := regfilter.ParseTags(reg.TagFilter)
	if err != nil {
		return rep, err
	}
	password, err := y.credentials(reg)
	if err != nil {
		return rep, err
	}
	var au authn.Authenticator = authn.Anonymous
	if reg.Username != "" || password != "" {
		au = authn.FromConfig(authn.AuthConfig{Username: reg.Username, Password: password})
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var nameOpts []name.Option
	imgOpts := []image.Option{image.WithKeychain(staticKeychain{host: host, auth: au})}
	if reg.Insecure || plain {
		// Insecure: plain HTTP and unverified certificates (test and
		// air-gapped registries), as the operator asked.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicit per-registry opt-in
		nameOpts = append(nameOpts, name.Insecure)
		imgOpts = append(imgOpts, image.WithInsecureRegistries(host))
	}
	imgOpts = append(imgOpts, image.WithTransport(tr))
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(au), remote.WithTransport(tr)}

	r, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return rep, fmt.Errorf("registry %s: %w", reg.Name, err)
	}
	all, err := remote.Catalog(ctx, r, ropts...)
	if err != nil {
		return rep, fmt.Errorf("registry %s: list repositories: %w", reg.Name, err)
	}
	if len(all) > MaxRepositories {
		y.log.Warn("registry catalog truncated", "registry", reg.Name, "repositories", len(all), "cap", MaxRepositories)
		all = all[:MaxRepositories]
	}
	sc, cleanup, warnings, err := y.buildScanner(ctx)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	for _, w := range warnings {
		y.log.Warn("registry scan", "registry", reg.Name, "warning", w)
	}
	for _, repo := range all {
		if !regfilter.MatchAny(repos, repo) {
			continue
		}
		rep.Repositories++
		rr, err := name.NewRepository(host+"/"+repo, nameOpts...)
		if err != nil {
			rep.fail(fmt.Errorf("repository %s: %w", repo, err))
			continue
		}
		tags, err := remote.List(rr, ropts...)
		if err != nil {
			rep.fail(fmt.Errorf("repository %s: list tags: %w", repo, err))
			continue
		}
		if len(tags) > MaxTagsPerRepository {
			tags = tags[:MaxTagsPerRepository]
		}
		tags = tagFilter.Apply(tags)
		for _, tag := range tags {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if rep.Images >= MaxImagesPerSync {
				y.log.Warn("registry sync stopped at the image cap", "registry", reg.Name, "cap", MaxImagesPerSync)
				return rep, nil
			}
			rep.Images++
			ref := host + "/" + repo + ":" + tag
			if err := y.scanAndIngest(ctx, sc, ref, imgOpts, warnings); err != nil {
				rep.fail(err)
				continue
			}
			rep.Ingested++
		}
	}
	return rep, nil
}

func (r *Report) fail(err error) {
	r.Failed++
	if len(r.Errors) < maxSyncErrors {
		r.Errors = append(r.Errors, err.Error())
	}
}

// scanAndIngest opens one image by reference, scans it (layers from the
// shared cache when seen before), matches it and stores the result with
// the scanner's warnings.
func (y *Syncer) scanAndIngest(ctx context.Context, sc *scan.Scanner, ref string, opts []image.Option, warnings []string) error {
	img, err := image.Open(ctx, string(image.SourceRegistry)+":"+ref, opts...)
	if err != nil {
		return fmt.Errorf("open %s: %w", ref, err)
	}
	defer img.Close()
	res, err := sc.ScanImage(ctx, img.Image(), scan.ImageTarget{Name: ref, Digest: img.Digest(), RepoTags: img.RepoTags(), Platform: img.Platform()})
	if err != nil {
		return fmt.Errorf("scan %s: %w", ref, err)
	}
	res.Warnings = append(res.Warnings, warnings...)
	if err := y.cfg.Match(ctx, res); err != nil {
		return err
	}
	out, err := y.cfg.Ingest(ctx, res)
	if err != nil {
		return fmt.Errorf("store %s: %w", ref, err)
	}
	y.log.Info("registry image scanned", "ref", ref, "digest", res.Target.Digest, "imageID", out.ImageID,
		"packages", out.Packages, "vulnerabilities", out.Vulnerabilities, "findings", out.Findings)
	return nil
}

// credentials decrypts a registry's password.
func (y *Syncer) credentials(r store.Registry) (string, error) {
	if len(r.Secret) == 0 {
		return "", nil
	}
	if y.cfg.OpenSecret == nil {
		return "", fmt.Errorf("registry %s: no key to decrypt its password", r.Name)
	}
	p, err := y.cfg.OpenSecret(r.Secret)
	if err != nil {
		return "", fmt.Errorf("registry %s: %w", r.Name, err)
	}
	return string(p), nil
}
