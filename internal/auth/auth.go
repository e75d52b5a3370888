package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"mamori/internal/store"
)

// Store is what auth needs of the store: tokens and sessions.
type Store interface {
	store.TokenStore
	store.SessionStore
}

// Names of the cookie, form field and header, and defaults with reasons.
const (
	// CookieName is the session cookie over plain HTTP (loopback quick start).
	CookieName = "mamori_session"
	// SecureCookieName is the session cookie under TLS: the "__Host-" prefix
	// makes browsers refuse it unless Secure, Path=/ and host-only, so a
	// sibling subdomain or a plain-HTTP page cannot plant one (cookie tossing).
	SecureCookieName = "__Host-mamori_session"
	// CSRFField is the form field carrying the CSRF token.
	CSRFField = "csrf_token"
	// CSRFHeader is the header carrying the CSRF token (light JavaScript).
	CSRFHeader = "X-CSRF-Token"

	// DefaultSessionTTL is a console session's lifetime: a working day, so a
	// forgotten browser does not stay logged in for long.
	DefaultSessionTTL = 12 * time.Hour
	// touchInterval throttles TouchToken: "last used" to the minute is
	// enough, and one write per API request would dominate a busy SQLite.
	touchInterval = time.Minute
	// sessionIDBytes, csrfBytes: 256-bit random values.
	sessionIDBytes = 32
	csrfBytes      = 32
	// maxCookieLen bounds what is hashed from a cookie; a real ID is 43.
	maxCookieLen = 128
)

// Via says how a request was authenticated.
type Via string

const (
	ViaToken   Via = "token"
	ViaSession Via = "session"
)

// Principal is the authenticated caller.
type Principal struct {
	TokenID   int64
	TokenName string
	Role      Role
	// Cluster is the cluster a cluster or agent token is bound to ("" for
	// human roles and for agents of bare hosts).
	Cluster string
	Via     Via
	// csrf is the session's CSRF secret (ViaSession only).
	csrf []byte
}

// Allowed reports whether the principal may do a.
func (p *Principal) Allowed(a Action) bool { return p != nil && Allowed(p.Role, a) }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p (for tests and internal calls).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFromContext returns the principal Middleware attached, if any.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}

// PrincipalFromRequest returns the caller, authenticated by token or session.
func PrincipalFromRequest(r *http.Request) (*Principal, bool) {
	return PrincipalFromContext(r.Context())
}

// SessionFromRequest returns the caller when authenticated by a console
// session cookie.
func SessionFromRequest(r *http.Request) (*Principal, bool) {
	p, ok := PrincipalFromContext(r.Context())
	if !ok || p.Via != ViaSession {
		return nil, false
	}
	return p, true
}

// CSRFToken returns the CSRF token to embed in the console's forms (field
// CSRFField) or send in CSRFHeader; "" when the request has no session.
func CSRFToken(r *http.Request) string {
	p, ok := SessionFromRequest(r)
	if !ok || len(p.csrf) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(p.csrf)
}

// Option configures an Authenticator.
type Option func(*Authenticator) error

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(a *Authenticator) error {
		if l == nil {
			return errors.New("auth: nil logger")
		}
		a.log = l
		return nil
	}
}

// WithSessionTTL sets the console session lifetime (default DefaultSessionTTL).
func WithSessionTTL(d time.Duration) Option {
	return func(a *Authenticator) error {
		if d <= 0 {
			return fmt.Errorf("auth: session TTL %v must be positive", d)
		}
		a.ttl = d
		return nil
	}
}

// WithSecureCookies marks session cookies Secure with the "__Host-" name;
// set it when the server serves TLS. (A request that arrives over TLS gets
// Secure cookies even without it.)
func WithSecureCookies(secure bool) Option {
	return func(a *Authenticator) error {
		a.secure = secure
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(a *Authenticator) error {
		if now == nil {
			return errors.New("auth: nil clock")
		}
		a.now = now
		return nil
	}
}

// WithTrustedOrigins lets state-changing requests come from these extra
// origins ("https://console.example.com"), e.g. behind a reverse proxy that
// rewrites Host.
func WithTrustedOrigins(origins ...string) Option {
	return func(a *Authenticator) error {
		for _, o := range origins {
			if err := a.cop.AddTrustedOrigin(o); err != nil {
				return fmt.Errorf("auth: trusted origin %q: %w", o, err)
			}
		}
		return nil
	}
}

// WithFailureLimiter throttles failed token authentication (bearer tokens
// and Login) per client address with l; nil (the default) does not throttle.
// Session cookies are neither counted nor refused: a cookie is a 256-bit
// random ID, and a browser keeps sending an expired one with every page and
// asset until the user logs in again.
func WithFailureLimiter(l *FailureLimiter) Option {
	return func(a *Authenticator) error {
		a.lim = l
		return nil
	}
}

// Authenticator checks tokens and sessions against the store. It is safe
// for concurrent use.
type Authenticator struct {
	st     Store
	log    *slog.Logger
	ttl    time.Duration
	secure bool
	now    func() time.Time
	cop    *http.CrossOriginProtection
	lim    *FailureLimiter
}

// New returns an Authenticator over st.
func New(st Store, opts ...Option) (*Authenticator, error) {
	if st == nil {
		return nil, errors.New("auth: nil store")
	}
	a := &Authenticator{
		st:  st,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ttl: DefaultSessionTTL,
		now: time.Now,
		cop: http.NewCrossOriginProtection(),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// AuthenticateToken checks a token (not a header) and returns its
// principal. Unknown, revoked, expired and malformed tokens all give
// ErrUnauthenticated; a store failure is returned wrapped.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*Principal, error) {
	if CheckToken(token) != nil {
		return nil, ErrUnauthenticated
	}
	t, err := a.st.GetTokenByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up token: %w", err)
	}
	now := a.now()
	role := Role(t.Role)
	if !t.Active(now) || !role.Valid() {
		return nil, ErrUnauthenticated
	}
	if now.Sub(t.LastUsedAt) >= touchInterval {
		if err := a.st.TouchToken(ctx, t.ID, now); err != nil {
			a.log.Warn("record token use", "tokenID", t.ID, "err", err)
		}
	}
	return &Principal{TokenID: t.ID, TokenName: t.Name, Role: role, Cluster: t.Cluster, Via: ViaToken}, nil
}

// cookieName is the session cookie's name for this request.
func (a *Authenticator) cookieName(r *http.Request) string {
	if a.secure || r.TLS != nil {
		return SecureCookieName
	}
	return CookieName
}

// sessionFromCookie returns the session principal of r's cookie; nil, nil
// when there is no cookie.
func (a *Authenticator) sessionFromCookie(r *http.Request) (*Principal, error) {
	c, err := r.Cookie(a.cookieName(r))
	if err != nil || c.Value == "" {
		return nil, nil
	}
	if len(c.Value) > maxCookieLen {
		return nil, ErrUnauthenticated
	}
	ctx := r.Context()
	now := a.now()
	s, err := a.st.GetSession(ctx, HashToken(c.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up session: %w", err)
	}
	t, err := a.st.GetToken(ctx, s.TokenID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up session token: %w", err)
	}
	// Sessions are for people: a machine token never had one (Login refuses it).
	if role := Role(t.Role); !t.Active(now) || !role.Human() {
		return nil, ErrUnauthenticated
	}
	return &Principal{TokenID: t.ID, TokenName: t.Name, Role: Role(t.Role), Via: ViaSession, csrf: s.CSRFSecret}, nil
}

// authenticate finds r's principal: the bearer token when an Authorization
// header is present (a bad one is not retried as a cookie), else the
// session cookie. nil, nil means anonymous. A token attempt from a
// throttled address is refused with a *ThrottledError before the token is
// looked at, and a failed one is counted.
func (a *Authenticator) authenticate(r *http.Request) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.tokenAttempt(r, "bearer", func() (*Principal, error) {
			tok, ok := bearer(h)
			if !ok {
				return nil, ErrUnauthenticated
			}
			return a.AuthenticateToken(r.Context(), tok)
		})
	}
	return a.sessionFromCookie(r)
}

// tokenAttempt runs check, one authentication by token of r (how says
// which kind, for the log), under the failure limiter: refused at once
// when r's address is throttled, counted when it fails.
func (a *Authenticator) tokenAttempt(r *http.Request, how string, check func() (*Principal, error)) (*Principal, error) {
	if a.lim == nil {
		return check()
	}
	key := a.lim.Key(r)
	if ref := a.lim.Check(key); ref != nil {
		if ref.Log {
			a.log.Warn("authentication refused: too many failures from this address", "client", key, "via", how,
				"method", r.Method, "path", r.URL.Path, "refused", ref.Refused, "retryAfter", ref.RetryAfter.Round(time.Second))
		}
		return nil, &ThrottledError{RetryAfter: ref.RetryAfter}
	}
	p, err := check()
	if errors.Is(err, ErrUnauthenticated) {
		if refused, wait := a.lim.Fail(key); refused {
			a.log.Warn("too many failed authentications: refusing the address", "client", key, "via", how,
				"method", r.Method, "path", r.URL.Path, "retryAfter", wait.Round(time.Second))
		}
	}
	return p, err
}

type authErrKey struct{}

// Middleware authenticates every request: it attaches the principal (see
// PrincipalFromRequest) and never refuses an anonymous request by itself —
// RequireRole/RequireAction do — but it refuses, with 429 and Retry-After,
// a bearer token from an address the failure limiter throttles, and, with
// 403, a state-changing request (not GET, HEAD, OPTIONS) that is
// cross-origin (no bearer token and a failing Sec-Fetch-Site/Origin check)
// or that is authenticated by a session cookie without the session's CSRF
// token. A store failure answers 503.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		ctx := r.Context()
		var te *ThrottledError
		switch {
		case err == nil:
		case errors.As(err, &te):
			w.Header().Set("Retry-After", te.RetryAfterSeconds())
			WriteError(w, http.StatusTooManyRequests, "too many failed authentication attempts from this address: retry after "+te.RetryAfterSeconds()+" s")
			return
		case errors.Is(err, ErrUnauthenticated):
			ctx = context.WithValue(ctx, authErrKey{}, err)
			p = nil
		default:
			a.log.Error("authentication unavailable", "err", err)
			WriteError(w, http.StatusServiceUnavailable, "authentication is temporarily unavailable")
			return
		}
		if !safeMethod(r.Method) && r.Header.Get("Authorization") == "" {
			if err := a.cop.Check(r); err != nil {
				a.log.Info("refused cross-origin request", "method", r.Method, "path", r.URL.Path)
				WriteError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
			if p != nil && p.Via == ViaSession && !validCSRF(r, p.csrf) {
				a.log.Info("refused request without a valid CSRF token", "method", r.Method, "path", r.URL.Path)
				WriteError(w, http.StatusForbidden, "missing or invalid CSRF token")
				return
			}
		}
		if p != nil {
			ctx = WithPrincipal(ctx, p)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// validCSRF checks the synchronizer token of r against the session secret.
func validCSRF(r *http.Request, secret []byte) bool {
	if len(secret) == 0 {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
			got = r.PostFormValue(CSRFField)
		}
	}
	if got == "" || len(got) > maxCookieLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(got)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(b, secret) == 1
}

// Login checks token and, when it is valid, starts a console session:
// stores it (hashed ID, CSRF secret) and sets the session cookie on w. Any
// previous session of the request is ended. Invalid tokens give
// ErrUnauthenticated; an attempt from an address the failure limiter
// throttles gives a *ThrottledError (ErrThrottled) without checking the token.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request, token string) (*Principal, error) {
	p, err := a.tokenAttempt(r, "login", func() (*Principal, error) { return a.AuthenticateToken(r.Context(), token) })
	if err != nil {
		return nil, err
	}
	if !p.Role.Human() {
		// The console is for people; a component's token has no business there.
		a.log.Info("console login refused: machine token", "tokenID", p.TokenID, "role", p.Role)
		return nil, fmt.Errorf("%w: a %s token cannot log in to the console", ErrForbidden, p.Role)
	}
	if err := a.endSession(r); err != nil {
		a.log.Warn("end previous session", "err", err)
	}
	id, err := randomString(sessionIDBytes)
	if err != nil {
		return nil, err
	}
	csrf, err := randomString(csrfBytes)
	if err != nil {
		return nil, err
	}
	secret, _ := base64.RawURLEncoding.DecodeString(csrf) // just encoded: cannot fail
	now := a.now().UTC()
	s := store.Session{IDHash: HashToken(id), TokenID: p.TokenID, Role: string(p.Role), CSRFSecret: secret,
		CreatedAt: now, ExpiresAt: now.Add(a.ttl)}
	if err := a.st.CreateSession(r.Context(), s); err != nil {
		return nil, fmt.Errorf("auth: create session: %w", err)
	}
	http.SetCookie(w, a.cookie(r, id, s.ExpiresAt))
	a.log.Info("console login", "tokenID", p.TokenID, "role", p.Role)
	p.Via = ViaSession
	p.csrf = secret
	return p, nil
}

// Logout ends r's console session (if any) and clears the cookie.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) error {
	err := a.endSession(r)
	c := a.cookie(r, "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
	return err
}

func (a *Authenticator) endSession(r *http.Request) error {
	c, err := r.Cookie(a.cookieName(r))
	if err != nil || c.Value == "" || len(c.Value) > maxCookieLen {
		return nil
	}
	if err := a.st.DeleteSession(r.Context(), HashToken(c.Value)); err != nil {
		return fmt.Errorf("auth: delete session: %w", err)
	}
	return nil
}

func (a *Authenticator) cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     a.cookieName(r),
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   a.secure || r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}

// RequireAction refuses requests whose principal may not do act: 401 when
// anonymous (or the credentials were bad), 403 when the role is too low.
// ActionPublic lets everything through.
func RequireAction(act Action) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if act == ActionPublic {
				next.ServeHTTP(w, r)
				return
			}
			p, ok := PrincipalFromRequest(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori"`)
				WriteError(w, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token>")
				return
			}
			if !p.Allowed(act) {
				WriteError(w, http.StatusForbidden, fmt.Sprintf("role %s may not do this (needs %s)", p.Role, Who(act)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireRole refuses requests whose principal is not at least role (401
// anonymous, 403 lower role), answering JSON errors.
func RequireRole(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFromRequest(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori"`)
				WriteError(w, http.StatusUnauthorized, "authentication required")
				return
			}
			if !AtLeast(p.Role, role) {
				WriteError(w, http.StatusForbidden, fmt.Sprintf("role %s may not do this (needs %s)", p.Role, role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireSession is RequireRole for console pages: an anonymous GET or HEAD
// is redirected (303) to loginPath with the page in the "next" parameter;
// other anonymous requests get 401 and a too-low role gets 403, as plain text.
func RequireSession(role Role, loginPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFromRequest(r)
			if !ok {
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					http.Redirect(w, r, loginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			if !AtLeast(p.Role, role) {
				http.Error(w, fmt.Sprintf("role %s may not do this (needs %s)", p.Role, role), http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WriteError writes {"error": msg} with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg}) // the client may be gone; nothing to do
}

// DeleteExpiredSessions removes expired sessions (the server calls it periodically).
func (a *Authenticator) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	n, err := a.st.DeleteExpiredSessions(ctx, a.now())
	if err != nil {
		return 0, fmt.Errorf("auth: delete expired sessions: %w", err)
	}
	return n, nil
}

// NewToken generates a token and the store record for it (hash and display
// prefix; ID and CreatedAt left for the store). cluster binds a cluster
// token (required) or an agent token (optional) to a cluster; human roles
// take none. The token string is the only copy of the secret: show it once.
func NewToken(name string, role Role, cluster string, expires time.Time) (token string, rec store.Token, err error) {
	if !role.Valid() {
		return "", store.Token{}, fmt.Errorf("auth: unknown role %q (want admin, operator, viewer, cluster or agent)", truncate(string(role)))
	}
	switch {
	case role == RoleCluster && cluster == "":
		return "", store.Token{}, errors.New("auth: a cluster token needs its cluster")
	case role.Human() && cluster != "":
		return "", store.Token{}, fmt.Errorf("auth: a %s token is not bound to a cluster", role)
	}
	token, err = GenerateToken()
	if err != nil {
		return "", store.Token{}, err
	}
	return token, store.Token{Name: name, Role: string(role), Cluster: cluster, Hash: HashToken(token), Prefix: DisplayPrefix(token), ExpiresAt: expires}, nil
}
