// Package server is mamori server: one process serving the JSON API under
// /api/v1 (docs/openapi.yaml) and the web console at "/", backed by the
// store (internal/store). It ingests scan results uploaded by the CLI
// (client.Upload), scans configured registries on a schedule with the
// scanner packages, and re-matches every stored inventory when the
// vulnerability database changes.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	compliancestd "mamori/internal/compliance"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"mamori/internal/auth"
	"mamori/internal/service/assessments"
	"mamori/internal/service/compliance"
	"mamori/internal/service/events"
	"mamori/internal/service/hosts"
	"mamori/internal/service/identities"
	"mamori/internal/service/images"
	"mamori/internal/service/images/vulnmatch"
	"mamori/internal/service/inventory"
	"mamori/internal/service/loads"
	"mamori/internal/service/mitigations"
	"mamori/internal/service/policies"
	"mamori/internal/service/registries"
	"mamori/internal/service/registries/regscan"
	"mamori/internal/service/runtimerules"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
)

// Defaults, each with its reason.
const (
	// DefaultListen is loopback: a server reachable from the network is a
	// decision the operator makes explicitly. 8443 is the usual unprivileged
	// HTTPS port.
	DefaultListen = "127.0.0.1:8443"
	// DefaultSchedulerTick is how often due registry syncs and DB changes
	// are looked for; schedules are minutes to days, a minute is precise enough.
	DefaultSchedulerTick = time.Minute
	// shutdownTimeout bounds the graceful shutdown: requests in flight (an
	// ingest of a large result) get this long to finish.
	shutdownTimeout = 30 * time.Second
	// http.Server timeouts: headers must come quickly (slowloris); a body
	// (a 256 MiB scan over a slow link) and a response may take minutes.
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 10 * time.Minute
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Environment variables the server reads.
const (
	// EnvBootstrapToken: the first admin token, when the store has none,
	// instead of a generated one (for automated deployments).
	EnvBootstrapToken = "MAMORI_BOOTSTRAP_TOKEN"
	// EnvServerKey: the key encrypting registry secrets (base64 or hex of
	// 32 bytes), instead of <data-dir>/server.key.
	EnvServerKey = "MAMORI_SERVER_KEY"
)

// Sentinel errors.
var (
	// ErrInsecureListen: --insecure-http with a listen address that is not loopback.
	ErrInsecureListen = errors.New("server: plain HTTP is only allowed on a loopback address")
	// ErrConfig: an invalid configuration.
	ErrConfig = errors.New("server: invalid configuration")
)

// Config configures a Server.
type Config struct {
	// Listen is the address to serve on (default DefaultListen).
	Listen string
	// DataDir holds the SQLite database, the server key, the generated TLS
	// certificate and the layer cache. Required.
	DataDir string
	// DB is the store DSN ("postgres://…"); "" uses SQLite in DataDir.
	DB string
	// TLSCert and TLSKey are PEM files; when both are empty a self-signed
	// certificate is generated in DataDir on first start.
	TLSCert, TLSKey string
	// InsecureHTTP serves plain HTTP; only with a loopback Listen.
	InsecureHTTP bool
	// VulnDBDir is the vulnerability database directory ("" = no matching).
	VulnDBDir string
	// CacheDir is the per-layer cache shared by registry scans (default DataDir/cache).
	CacheDir string
	// Console is mounted at "/" when non-nil (internal/console).
	Console http.Handler
	// ConsoleFactory, when set, builds the console from what the server
	// provides (used instead of Console).
	ConsoleFactory func(ConsoleDeps) (http.Handler, error)
	Logger         *slog.Logger
	// Version is mamori's version (for /healthz and registry scans).
	Version string
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Stderr is where a generated bootstrap token is printed (default os.Stderr).
	Stderr io.Writer
	// SchedulerTick overrides DefaultSchedulerTick (tests).
	SchedulerTick time.Duration
	// AuthFailureLimit throttles failed token authentication (API bearer
	// tokens and console logins) per client address; zero fields take
	// auth's defaults (10 failures in a row, then 10 a minute), Disabled
	// turns it off. The address is the connection's: X-Forwarded-For is
	// not trusted (there is no trusted-proxy setting).
	AuthFailureLimit auth.FailureLimit
	// EventRetention bounds the stored events (zero fields: the defaults
	// of package service/events).
	EventRetention events.Retention
	// Compliance sets how often continuous compliance looks at each
	// cluster (zero fields: the defaults of service/compliance).
	Compliance compliance.Config
	// ComplianceSettings are the thresholds of compliance assessments
	// (zero fields: internal/compliance's defaults); AssessSchedule and
	// AssessPoll how often every standard is re-assessed and how often the
	// evidence is looked at for changes (zero: service/assessments'
	// defaults, hourly and every ten seconds).
	ComplianceSettings         compliancestd.Settings
	AssessSchedule, AssessPoll time.Duration
	// RegistryRoots verify registries' certificates in compliance probes
	// and signature verification (nil: the system roots, which
	// SSL_CERT_FILE and SSL_CERT_DIR extend); TrustedRoot verifies
	// keyless signatures of the policies' signatures rules (nil: keys only).
	RegistryRoots *x509.CertPool
	TrustedRoot   *root.TrustedRoot
	// Clamd is the clamd address registry scans use for malware ("" =
	// malware.DefaultClamdAddress, used when reachable; the built-in hash
	// list runs always).
	Clamd string

	// maxScanBytes overrides MaxScanBytes (tests of the cap).
	maxScanBytes int64
	// clock replaces time.Now for the failure limiter (tests).
	clock func() time.Time
}

// ConsoleDeps is what the server gives the console it mounts.
type ConsoleDeps struct {
	Auth  *auth.Authenticator
	Store store.Store
	// SealSecret encrypts a registry password with the server key (AES-256-GCM).
	SealSecret func(plaintext []byte) ([]byte, error)
	// StartSync queues a sync of a registry and returns at once.
	StartSync func(ctx context.Context, registryID int64) error
	Logger    *slog.Logger
	Version   string
	// The domain services the console shares with the API.
	Tokens     *tokens.Service
	Events     *events.Service
	Registries *registries.Service
	Images     *images.Service
	Policies   *policies.Service
	// RuntimeRules: the rule catalogue, policies' rulesets, the ATT&CK matrix.
	RuntimeRules *runtimerules.Service
	Hosts        *hosts.Service
	// Assessments: compliance reports, history and re-assessment.
	Assessments *assessments.Service
}

// Server is a configured mamori server. Make one with New; Run serves it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      store.Store
	auth    *auth.Authenticator
	box     *secretBox
	tls     bool
	tlsConf *tls.Config
	certFP  string
	console http.Handler
	handler http.Handler
	// limiter throttles failed authentication (nil when disabled).
	limiter *auth.FailureLimiter

	// The domain services the API and the console call.
	tokens     *tokens.Service
	identities *identities.Service
	events     *events.Service
	registries *registries.Service
	policies   *policies.Service
	// runtimeRules: the rule catalogue, policies' rulesets, the ATT&CK matrix.
	runtimeRules *runtimerules.Service
	hosts        *hosts.Service

	images      *images.Service
	inventory   *inventory.Service
	nodes       *inventory.Nodes
	mitigations *mitigations.Service
	compliance  *compliance.Service
	assessments *assessments.Service
	matcher     *vulnmatch.Matcher
	loads       *loads.Service
	syncer      *regscan.Syncer
	bg          sync.WaitGroup
	bgCtx       context.Context
	bgCancel    context.CancelFunc
	closeMu     sync.Mutex
	closed      bool
}

// New opens the store, the server key and the TLS material, creates the
// first admin token when there is none, and builds the handler. Close it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.SchedulerTick <= 0 {
		cfg.SchedulerTick = DefaultSchedulerTick
	}
	if cfg.maxScanBytes <= 0 {
		cfg.maxScanBytes = MaxScanBytes
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	if cfg.InsecureHTTP {
		if err := checkLoopback(cfg.Listen); err != nil {
			return nil, err
		}
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			return nil, fmt.Errorf("%w: --insecure-http and --tls-cert/--tls-key exclude each other", ErrConfig)
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, fmt.Errorf("%w: give both --tls-cert and --tls-key, or neither", ErrConfig)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data dir %s: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tls: !cfg.InsecureHTTP}
	dsn := cfg.DB
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "mamori.db")
	}
	st, err := store.Open(ctx, dsn, store.WithLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("server: open store: %w", err)
	}
	s.st = st
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	if s.box, err = loadServerKey(ctx, cfg.DataDir, cfg.Getenv(EnvServerKey), st); err != nil {
		return nil, err
	}
	if s.tls {
		if s.tlsConf, s.certFP, err = loadTLS(cfg); err != nil {
			return nil, err
		}
	}
	authOpts := []auth.Option{auth.WithLogger(cfg.Logger), auth.WithSecureCookies(s.tls)}
	if !cfg.AuthFailureLimit.Disabled {
		if s.limiter, err = auth.NewFailureLimiter(cfg.AuthFailureLimit, cfg.clock); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		authOpts = append(authOpts, auth.WithFailureLimiter(s.limiter))
	}
	if s.auth, err = auth.New(st, authOpts...); err != nil {
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	s.tokens = tokens.New(st, cfg.Logger, nil)
	s.identities = identities.New(st, s.tokens, cfg.Logger, nil)
	s.events = events.New(st, cfg.EventRetention, cfg.Logger, nil)
	s.registries = registries.New(st, s.box.seal, cfg.Logger)
	s.policies = policies.New(st, cfg.Logger, nil)
	s.hosts = hosts.New(st, cfg.Logger, nil)
	s.runtimeRules = runtimerules.New(s.events, s.policies, s.hosts)
	s.bgCtx, s.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.images = images.New(st, cfg.Logger, nil)
	s.matcher = vulnmatch.New(st, cfg.VulnDBDir, cfg.Logger)
	s.loads = loads.New(loads.Config{Store: st, Logger: cfg.Logger})
	s.images.SetUseMarker(s.loads)
	s.matcher.SetUseMarker(s.loads)
	s.inventory = inventory.New(st, cfg.Logger, nil)
	s.nodes = inventory.NewNodes(st, nil)
	s.mitigations = mitigations.New(st, cfg.Logger, nil)
	s.compliance = compliance.New(st, s.events, s.mitigations, s.images, cfg.Compliance, cfg.Logger, nil)
	s.assessments = assessments.New(assessments.Config{Store: st, Images: s.images, Registries: s.registries, Matcher: s.matcher,
		Settings: cfg.ComplianceSettings, Schedule: cfg.AssessSchedule, Poll: cfg.AssessPoll, Logger: cfg.Logger,
		RegistryRoots: cfg.RegistryRoots, TrustedRoot: cfg.TrustedRoot, OpenSecret: s.box.open})
	s.syncer = regscan.New(s.bgCtx, regscan.Config{Store: st, Match: s.matcher.MatchResult, Ingest: s.images.Ingest, OpenSecret: s.box.open,
		CacheDir: cfg.CacheDir, TempDir: filepath.Join(cfg.DataDir, "tmp"), Clamd: cfg.Clamd, Version: cfg.Version, Logger: cfg.Logger})
	s.console = cfg.Console
	if cfg.ConsoleFactory != nil {
		deps := ConsoleDeps{Auth: s.auth, Store: st, SealSecret: s.box.seal, Logger: cfg.Logger, Version: cfg.Version,
			Tokens: s.tokens, Events: s.events, Registries: s.registries, Images: s.images, Policies: s.policies,
			RuntimeRules: s.runtimeRules, Hosts: s.hosts, Assessments: s.assessments,
			StartSync: func(_ context.Context, id int64) error { s.syncer.Start(id); return nil }}
		if s.console, err = cfg.ConsoleFactory(deps); err != nil {
			s.bgCancel()
			return nil, fmt.Errorf("server: console: %w", err)
		}
	}
	s.handler = s.buildHandler()
	ok = true
	return s, nil
}

// Handler is the server's whole HTTP handler (API, console, security headers).
func (s *Server) Handler() http.Handler { return s.handler }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.st }

// Authenticator is the server's authenticator (for the console).
func (s *Server) Authenticator() *auth.Authenticator { return s.auth }

// CertFingerprint is the SHA-256 fingerprint of the served certificate ("" without TLS).
func (s *Server) CertFingerprint() string { return s.certFP }

// Start starts the background work: the registry scheduler, the
// vulnerability DB watcher (which re-matches on change) and session
// clean-up. Run calls it.
func (s *Server) Start() {
	s.bg.Add(4)
	go func() {
		defer s.bg.Done()
		s.loads.Run(s.bgCtx)
	}()
	go func() {
		defer s.bg.Done()
		s.backgroundLoop(s.bgCtx)
	}()
	go func() {
		defer s.bg.Done()
		s.assessments.Run(s.bgCtx)
	}()
	go func() {
		defer s.bg.Done()
		s.compliance.Run(s.bgCtx)
	}()
}

// Run serves until ctx is cancelled (SIGTERM, SIGINT), then shuts down
// gracefully: stops accepting, lets requests in flight finish (at most
// shutdownTimeout), stops the background work and closes the store.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if s.tls {
		hs.TLSConfig = s.tlsConf
		ln = tls.NewListener(ln, s.tlsConf)
		scheme = "https"
	}
	s.Start()
	s.log.Info("mamori server listening", "url", scheme+"://"+ln.Addr().String(), "store", s.st.Engine(), "certSHA256", s.certFP)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

// Close stops the background work and closes the store.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.bgCancel()
	s.bg.Wait()
	s.matcher.Close()
	return s.st.Close()
}

// checkLoopback refuses a listen address whose host is not a loopback IP
// or "localhost" (an empty host listens on every interface).
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %v", ErrConfig, listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w (listen %q): serve TLS (the default, with a generated certificate or --tls-cert/--tls-key) or listen on 127.0.0.1", ErrInsecureListen, listen)
}

// backgroundLoop runs the periodic work until ctx ends.
func (s *Server) backgroundLoop(ctx context.Context) {
	s.checkVulnDB(ctx)
	s.pruneEvents(ctx)
	lastPrune := time.Now()
	t := time.NewTicker(s.cfg.SchedulerTick)
	defer t.Stop()
	for {
		s.syncer.RunDue(ctx)
		select {
		case <-ctx.Done():
			s.syncer.Wait()
			return
		case <-t.C:
		}
		s.checkVulnDB(ctx)
		if _, err := s.auth.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("session clean-up", "err", err)
		}
		if s.limiter != nil {
			s.limiter.Sweep()
		}
		if time.Since(lastPrune) >= events.DefaultPruneInterval {
			s.pruneEvents(ctx)
			lastPrune = time.Now()
		}
	}
}

// SyncRegistry scans registry id now and waits for the result (the API
// starts the same work in the background).
func (s *Server) SyncRegistry(ctx context.Context, id int64) (regscan.Report, error) {
	return s.syncer.Sync(ctx, id)
}

// checkVulnDB reloads a changed vulnerability DB and re-matches.
func (s *Server) checkVulnDB(ctx context.Context) { s.matcher.CheckVulnDB(ctx) }

// startRematch runs a re-match in the background unless one is running;
// it reports whether it started one.
func (s *Server) startRematch() bool {
	if s.matcher.RematchRunning() {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.matcher.Rematch(s.bgCtx); err != nil && s.bgCtx.Err() == nil {
			s.log.Error("re-match", "err", err)
		}
	}()
	return true
}

// pruneEvents applies the events retention.
func (s *Server) pruneEvents(ctx context.Context) {
	if _, err := s.events.Prune(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("events retention", "err", err)
	}
}
