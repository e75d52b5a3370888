// Package console is mamori server's web console: server-rendered
// html/template pages over the store (images, vulnerabilities, registries,
// the artifact scanner guide, API tokens), with the assets of mamori/web
// embedded in the binary.
//
// The console reads the store directly; it does not call the JSON API. It
// authenticates with internal/auth: a token pasted on the login page starts a
// session (HttpOnly, SameSite=Strict cookie); every state-changing form
// carries the session's CSRF token, which auth's middleware checks together
// with the cross-origin check. Writes are refused server-side to roles that
// may not do them, whatever the page showed.
//
// Every response carries a strict Content-Security-Policy (default-src
// 'self', no inline script or style), so the pages use no inline script,
// no style attributes and no third-party origin.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"mamori/internal/auth"
	"mamori/internal/service/assessments"
	"mamori/internal/service/events"
	"mamori/internal/service/hosts"
	"mamori/internal/service/identities"
	"mamori/internal/service/images"
	"mamori/internal/service/inventory"
	"mamori/internal/service/mitigations"
	"mamori/internal/service/policies"
	"mamori/internal/service/registries"
	"mamori/internal/service/runtimerules"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
	"mamori/web"
)

// Sentinel errors.
var (
	// ErrNoSealer: a registry password was given but the console has no
	// WithRegistrySecrets function to encrypt it; nothing is stored in the clear.
	ErrNoSealer = errors.New("console: no registry secret encryption configured")
)

// Limits, each with its reason.
const (
	// maxFormBytes caps a form body: the largest form (a registry) is well
	// under 16 KiB; anything bigger is not from our pages.
	maxFormBytes = 64 << 10
	// maxQueryLen caps a search string: longer ones match nothing useful
	// and would only make LIKE scans slower.
	maxQueryLen = 200
	// defaultPerPage / maxPerPage: rows per page of the lists. The store
	// caps its pages at store.MaxLimit; the console never asks for more than
	// a screen needs.
	defaultPerPage = 50
	maxPerPage     = 200
	// maxPageNumber keeps OFFSET bounded (200 × 10,000 = 2M rows).
	maxPageNumber = 10000
	// affectedPerPage is the page size of a vulnerability's affected images.
	affectedPerPage = 50
)

// SyncFunc starts a sync of registry id (asynchronously: it should return
// once the sync is queued; the registry's LastSync shows its progress).
type SyncFunc func(ctx context.Context, registryID int64) error

// SealFunc encrypts a registry secret with the server key; the result is
// stored as store.Registry.Secret.
type SealFunc func(plaintext []byte) ([]byte, error)

// Option configures New.
type Option func(*options) error

type options struct {
	logger    *slog.Logger
	serverURL string
	version   string
	seal      SealFunc
	sync      SyncFunc
	now       func() time.Time
	services  Services
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("console: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithServerURL is the URL the Artifact Scanner page tells the CLI to use
// (default: the scheme and Host of the request).
func WithServerURL(u string) Option {
	return func(o *options) error {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("console: server URL %q must start with http:// or https://", u)
		}
		o.serverURL = strings.TrimRight(u, "/")
		return nil
	}
}

// WithVersion is the mamori version shown in the footer.
func WithVersion(v string) Option {
	return func(o *options) error {
		o.version = v
		return nil
	}
}

// WithRegistrySecrets sets the function that encrypts registry passwords
// before they are stored. Without it the registry form refuses passwords
// (ErrNoSealer) rather than store one in the clear.
func WithRegistrySecrets(seal SealFunc) Option {
	return func(o *options) error {
		o.seal = seal
		return nil
	}
}

// WithRegistrySync sets the function behind the "Sync now" button. Without
// it the button is not shown.
func WithRegistrySync(sync SyncFunc) Option {
	return func(o *options) error {
		o.sync = sync
		return nil
	}
}

// Services are the domain services the console calls for what the API
// does too, so that every rule and audit line exists once. A nil service is
// made by New over the console's store.
type Services struct {
	Tokens     *tokens.Service
	Events     *events.Service
	Registries *registries.Service
	Images     *images.Service
	Policies   *policies.Service
	// RuntimeRules: the rule catalogue, policies' rulesets, the ATT&CK matrix.
	RuntimeRules *runtimerules.Service
	// Identities, Inventory and Mitigations: the Clusters page.
	Identities  *identities.Service
	Inventory   *inventory.Service
	Mitigations *mitigations.Service
	// Assessments: the compliance reports, their history and re-assessment.
	Assessments *assessments.Service
	// Hosts: host groups, their settings and allow-lists, quarantine,
	// baselines and requests to agents.
	Hosts *hosts.Service
}

// WithServices sets the domain services (the server passes its own).
func WithServices(s Services) Option {
	return func(o *options) error {
		o.services = s
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("console: nil clock")
		}
		o.now = now
		return nil
	}
}

// Console serves the console pages. It is safe for concurrent use.
type Console struct {
	st    store.Store
	authn *auth.Authenticator
	opt   options
	pages map[string]*pageTemplate
	mux   *http.ServeMux
	h     http.Handler
	ov    overviewCache
}

var _ http.Handler = (*Console)(nil)

// New returns the console over st, authenticating with authn. The handler
// wraps itself in authn.Middleware (sessions, CSRF and cross-origin checks),
// so mount it as is, NOT behind another auth.Middleware: mux.Handle("/", c).
// Its paths: /login, /logout, /images…, /vulnerabilities…, /events, /attack, /rulesets, /registries…,
// /scanner…, /settings/tokens…, /static/… ("/" redirects to /images).
func New(st store.Store, authn *auth.Authenticator, opts ...Option) (*Console, error) {
	if st == nil {
		return nil, errors.New("console: nil store")
	}
	if authn == nil {
		return nil, errors.New("console: nil authenticator")
	}
	o := options{
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		version: "dev",
		now:     time.Now,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	pages, err := parsePages(web.FS)
	if err != nil {
		return nil, err
	}
	if o.services.Tokens == nil {
		o.services.Tokens = tokens.New(st, o.logger, o.now)
	}
	if o.services.Registries == nil {
		var seal registries.SealFunc
		if o.seal != nil {
			seal = registries.SealFunc(o.seal)
		}
		o.services.Registries = registries.New(st, seal, o.logger)
	}
	if o.services.Images == nil {
		o.services.Images = images.New(st, o.logger, o.now)
	}
	if o.services.Policies == nil {
		o.services.Policies = policies.New(st, o.logger, o.now)
	}
	if o.services.Identities == nil {
		o.services.Identities = identities.New(st, o.services.Tokens, o.logger, o.now)
	}
	if o.services.Inventory == nil {
		o.services.Inventory = inventory.New(st, o.logger, o.now)
	}
	if o.services.Mitigations == nil {
		o.services.Mitigations = mitigations.New(st, o.logger, o.now)
	}
	if o.services.Events == nil {
		o.services.Events = events.New(st, events.Retention{}, o.logger, o.now)
	}
	if o.services.Hosts == nil {
		o.services.Hosts = hosts.New(st, o.logger, o.now)
	}
	if o.services.RuntimeRules == nil {
		o.services.RuntimeRules = runtimerules.New(o.services.Events, o.services.Policies, o.services.Hosts)
	}
	if o.services.Assessments == nil {
		o.services.Assessments = assessments.New(assessments.Config{Store: st, Images: o.services.Images,
			Registries: o.services.Registries, Logger: o.logger, Now: o.now})
	}
	c := &Console{st: st, authn: authn, opt: o, pages: pages, mux: http.NewServeMux()}
	if err := c.routes(); err != nil {
		return nil, err
	}
	c.h = securityHeaders(authn.Middleware(c.mux))
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.h.ServeHTTP(w, r) }

func (c *Console) routes() error {
	static, err := fs.Sub(web.FS, "static")
	if err != nil {
		return fmt.Errorf("console: static assets: %w", err)
	}
	viewer := auth.RequireSession(auth.RoleViewer, "/login")
	admin := auth.RequireSession(auth.RoleAdmin, "/login")
	h := func(f http.HandlerFunc) http.Handler { return f }

	m := c.mux
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	m.Handle("GET /favicon.ico", h(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/logo.svg", http.StatusMovedPermanently)
	}))
	m.Handle("GET /login", h(c.loginPage))
	m.Handle("POST /login", h(c.login))
	m.Handle("POST /logout", h(c.logout))

	m.Handle("GET /{$}", viewer(h(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/images", http.StatusSeeOther)
	})))
	m.Handle("GET /images", viewer(h(c.imagesPage)))
	m.Handle("GET /images/{id}", viewer(h(c.imagePage)))
	m.Handle("GET /vulnerabilities", viewer(h(c.vulnsPage)))
	m.Handle("GET /vulnerabilities/{id}", viewer(h(c.vulnPage)))
	m.Handle("GET /events", viewer(h(c.eventsPage)))
	m.Handle("GET /attack", viewer(h(c.attackPage)))
	m.Handle("GET /rulesets", viewer(h(c.rulesetsPage)))
	m.Handle("GET /runtime/vulnerabilities", viewer(h(c.runtimeVulnsPage)))
	m.Handle("GET /clusters", viewer(h(c.clustersPage)))
	m.Handle("POST /clusters", admin(h(c.clusterCreate)))
	m.Handle("GET /clusters/{id}", viewer(h(c.clusterPage)))
	m.Handle("GET /policies", viewer(h(c.policiesPage)))
	m.Handle("POST /policies", admin(h(c.policyApply)))
	m.Handle("GET /policies/{name}", viewer(h(c.policyPage)))
	m.Handle("POST /policies/{name}/delete", admin(h(c.policyDelete)))
	m.Handle("POST /policies/{name}/assign", admin(h(c.policyAssign)))
	m.Handle("GET /compliance", viewer(h(c.compliancePage)))
	m.Handle("GET /compliance/controls/{id}", viewer(h(c.controlPage)))
	m.Handle("POST /compliance/assess", auth.RequireSession(auth.RoleOperator, "/login")(h(c.complianceAssess)))
	m.Handle("GET /hosts", viewer(h(c.hostsPage)))
	m.Handle("POST /hosts/groups", admin(h(c.hostGroupCreate)))
	m.Handle("GET /hosts/groups/{id}", viewer(h(c.hostGroupPage)))
	m.Handle("POST /hosts/groups/{id}", admin(h(c.hostGroupUpdate)))
	m.Handle("POST /hosts/groups/{id}/delete", admin(h(c.hostGroupDelete)))
	m.Handle("GET /hosts/groups/{id}/allowlist", viewer(h(c.allowListPage)))
	m.Handle("POST /hosts/groups/{id}/allowlist", admin(h(c.allowListAdd)))
	m.Handle("POST /hosts/groups/{id}/allowlist/remove", admin(h(c.allowListRemove)))
	m.Handle("POST /hosts/agents/{id}/place", admin(h(c.placeAgent)))
	m.Handle("POST /hosts/agents/{id}/requests", admin(h(c.hostRequest)))
	m.Handle("GET /hosts/quarantine", viewer(h(c.quarantinePage)))
	m.Handle("GET /hosts/baselines", viewer(h(c.baselinesPage)))
	m.Handle("GET /registries", viewer(h(c.registriesPage)))
	m.Handle("GET /registries/new", admin(h(c.registryForm)))
	m.Handle("POST /registries", admin(h(c.registrySave)))
	m.Handle("GET /registries/{id}/edit", admin(h(c.registryForm)))
	m.Handle("POST /registries/{id}", admin(h(c.registrySave)))
	m.Handle("POST /registries/{id}/delete", admin(h(c.registryDelete)))
	m.Handle("POST /registries/{id}/sync", admin(h(c.registrySync)))
	m.Handle("GET /scanner", viewer(h(c.scannerPage)))
	m.Handle("POST /scanner/token", admin(h(c.scannerToken)))
	m.Handle("GET /settings/tokens", viewer(h(c.tokensPage)))
	m.Handle("POST /settings/tokens", admin(h(c.tokenCreate)))
	m.Handle("POST /settings/tokens/{id}/revoke", admin(h(c.tokenRevoke)))
	m.Handle("/", h(func(w http.ResponseWriter, r *http.Request) {
		c.notFound(w, r, "There is no page at this address.")
	}))
	return nil
}

// contentSecurityPolicy allows nothing but this origin: no inline script or
// style, no framing, forms only to this origin.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			// Pages show findings and one-time tokens: keep them out of caches.
			hd.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets are not fingerprinted: an hour keeps an upgrade visible soon.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
