package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"mamori/internal/auth"
	"mamori/internal/console"
	"mamori/internal/server"
	"mamori/internal/service/events"
	"mamori/internal/sign"
)

// serverOptions are the flags of mamori server.
type serverOptions struct {
	listen        string
	dataDir       string
	db            string
	tlsCert       string
	tlsKey        string
	insecureHTTP  bool
	clamd         string
	failRate      float64
	failBurst     int
	eventMaxAge   time.Duration
	eventMaxCount int
	trustedRoot   string
	registryCAs   []string
}

func newServerCmd(g *globalOptions) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run mamori server: the JSON API, the web console, registry scans and re-matching",
		Long: `Run mamori server: one process serving the JSON API under /api/v1 and the web
console at /, storing scan results in embedded SQLite (default, in --data-dir)
or PostgreSQL (--db postgres://...).

On first start it creates an admin token and prints it once to stderr (or takes
MAMORI_BOOTSTRAP_TOKEN), and generates a self-signed TLS certificate in the data
dir unless --tls-cert/--tls-key are given. Registry passwords are encrypted with
the server key (<data-dir>/server.key, or MAMORI_SERVER_KEY). The vulnerability
database is read from --db-dir (see mamori db update); when it changes, every
stored inventory is re-matched without pulling any image.`,
		Example: `  mamori server
  mamori server --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  mamori server --insecure-http --listen 127.0.0.1:8080
  mamori server --db postgres://mamori@127.0.0.1/mamori`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", server.DefaultListen, "address to serve on (plain HTTP only with --insecure-http on a loopback address)")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory: SQLite database, server key, TLS certificate, layer cache (default: the user data dir, e.g. ~/.local/share/mamori)")
	f.StringVar(&o.db, "db", "", "PostgreSQL DSN (postgres://...) instead of the embedded SQLite database")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM); default: a self-signed certificate generated in the data dir")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	f.BoolVar(&o.insecureHTTP, "insecure-http", false, "serve plain HTTP (refused unless --listen is a loopback address)")
	f.StringVar(&o.clamd, "clamd", "", "clamd address for the malware scanning of registry images: unix:///run/clamav/clamd.ctl or tcp://127.0.0.1:3310 (default: the Debian socket, used when it answers; the built-in hash list runs always)")
	f.Float64Var(&o.failRate, "auth-failures-per-minute", auth.DefaultFailuresPerMinute, "failed token authentications allowed per client address per minute once the burst is spent (0 turns throttling off)")
	f.IntVar(&o.failBurst, "auth-failure-burst", auth.DefaultFailureBurst, "failed token authentications allowed in a row per client address before it gets 429 (0 turns throttling off)")
	f.DurationVar(&o.eventMaxAge, "event-max-age", events.DefaultMaxAge, "delete security events older than this (negative: keep them regardless of age)")
	f.IntVar(&o.eventMaxCount, "event-max-count", events.DefaultMaxCount, "keep at most this many security events, the newest (negative: no count limit)")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "sigstore trusted_root.json: verifies keyless signatures of the policies' signatures rules offline (default: keys only)")
	f.StringSliceVar(&o.registryCAs, "registry-ca", nil, "PEM file of CA certificates that registries' certificates chain to, added to the system roots, for compliance probes and signature verification (repeatable)")
	return cmd
}

// trust reads --trusted-root and --registry-ca (nil when not given).
func (o *serverOptions) trust() (*root.TrustedRoot, *x509.CertPool, error) {
	var tr *root.TrustedRoot
	if o.trustedRoot != "" {
		var err error
		if tr, err = sign.LoadTrustedRoot(o.trustedRoot); err != nil {
			return nil, nil, fmt.Errorf("--trusted-root: %w", err)
		}
	}
	if len(o.registryCAs) == 0 {
		return tr, nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range o.registryCAs {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("--registry-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, nil, fmt.Errorf("--registry-ca %s: no PEM certificate in it", f)
		}
	}
	return tr, pool, nil
}

func runServer(cmd *cobra.Command, g *globalOptions, o *serverOptions) error {
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	if g.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	dataDir := o.dataDir
	if dataDir == "" {
		d, err := defaultDataDir()
		if err != nil {
			return err
		}
		dataDir = d
	}
	trustedRoot, registryRoots, err := o.trust()
	if err != nil {
		return err
	}
	srv, err := server.New(cmd.Context(), server.Config{
		TrustedRoot:    trustedRoot,
		RegistryRoots:  registryRoots,
		Listen:         o.listen,
		DataDir:        dataDir,
		DB:             o.db,
		TLSCert:        o.tlsCert,
		TLSKey:         o.tlsKey,
		InsecureHTTP:   o.insecureHTTP,
		Clamd:          o.clamd,
		EventRetention: events.Retention{MaxAge: o.eventMaxAge, MaxCount: o.eventMaxCount},
		VulnDBDir:      dbDir(g),
		Logger:         log,
		Version:        version,
		Stderr:         cmd.ErrOrStderr(),
		AuthFailureLimit: auth.FailureLimit{PerMinute: o.failRate, Burst: o.failBurst,
			Disabled: o.failRate == 0 || o.failBurst == 0},
		ConsoleFactory: func(d server.ConsoleDeps) (http.Handler, error) {
			return console.New(d.Store, d.Auth,
				console.WithLogger(d.Logger),
				console.WithVersion(d.Version),
				console.WithRegistrySecrets(d.SealSecret),
				console.WithRegistrySync(d.StartSync),
				console.WithServices(console.Services{Tokens: d.Tokens, Events: d.Events, Policies: d.Policies, RuntimeRules: d.RuntimeRules,
					Assessments: d.Assessments, Hosts: d.Hosts}))
		},
	})
	if err != nil {
		return err
	}
	return srv.Run(cmd.Context())
}

// defaultDataDir is $XDG_DATA_HOME/mamori or ~/.local/share/mamori on Unix,
// the user config dir elsewhere.
func defaultDataDir() (string, error) {
	if runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			return filepath.Join(x, "mamori"), nil
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "share", "mamori"), nil
		}
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("server: no data dir (give --data-dir): %w", err)
	}
	return filepath.Join(d, "mamori"), nil
}
