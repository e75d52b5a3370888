package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"mamori/internal/auth"
)

// The login form has no session yet, so auth's synchronizer token cannot
// protect it. It is protected twice: auth.Middleware's cross-origin check
// (Sec-Fetch-Site / Origin), and a double-submit cookie: the form carries a
// random value that must equal a SameSite=Strict cookie set with the form.
// This stops login CSRF (logging a victim into an attacker's token).
const (
	loginCSRFCookie       = "mamori_login"
	loginCSRFCookieSecure = "__Host-mamori_login"
	loginCSRFBytes        = 32
	// loginCSRFMaxAge: a login form older than this must be reloaded.
	loginCSRFMaxAge = 3600
)

type loginData struct {
	LoginCSRF string
	Next      string
}

func loginCookieName(r *http.Request) string {
	if r.TLS != nil {
		return loginCSRFCookieSecure
	}
	return loginCSRFCookie
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, nil)
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, fl *flash) {
	b := make([]byte, loginCSRFBytes)
	if _, err := rand.Read(b); err != nil {
		c.opt.logger.Error("console: random", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: loginCookieName(r), Value: v, Path: "/", MaxAge: loginCSRFMaxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	p := c.newPage(r, "", "Log in")
	p.Flash = fl
	p.Data = loginData{LoginCSRF: v, Next: safeNext(r.FormValue("next"))}
	c.render(w, r, status, "login", p)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, r, http.StatusBadRequest, &flash{Kind: "error", Text: "The form could not be read. Please try again."})
		return
	}
	ck, err := r.Cookie(loginCookieName(r))
	got := r.PostFormValue("login_csrf")
	if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(got)) != 1 {
		c.renderLogin(w, r, http.StatusForbidden, &flash{Kind: "error", Text: "The login form expired or came from another site. Please try again."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		c.renderLogin(w, r, http.StatusUnauthorized, &flash{Kind: "error", Text: "Paste an API token to log in."})
		return
	}
	if _, err := c.authn.Login(w, r, token); err != nil {
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			// auth has logged the throttled address.
			w.Header().Set("Retry-After", te.RetryAfterSeconds())
			c.renderLogin(w, r, http.StatusTooManyRequests, &flash{Kind: "error",
				Text: "Too many failed logins from your address. Try again in " + te.RetryAfterSeconds() + " seconds."})
			return
		}
		if errors.Is(err, auth.ErrUnauthenticated) {
			c.opt.logger.Info("console: login refused")
			c.renderLogin(w, r, http.StatusUnauthorized, &flash{Kind: "error", Text: "That token is not valid: it is unknown, revoked or expired."})
			return
		}
		c.opt.logger.Error("console: login", "err", err)
		c.renderLogin(w, r, http.StatusServiceUnavailable, &flash{Kind: "error", Text: "Logging in is not possible right now; the server log has the details."})
		return
	}
	// The double-submit cookie has done its job.
	http.SetCookie(w, &http.Cookie{Name: loginCookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = "/images"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	// auth.Middleware has already refused a logout without the session's
	// CSRF token (a forced logout is a nuisance, not harmless).
	if err := c.authn.Logout(w, r); err != nil {
		c.opt.logger.Warn("console: logout", "err", err)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path starting with
// one "/" (not "//" nor "/\", which browsers read as another host), without
// control characters.
func safeNext(s string) string {
	if len(s) > 2048 || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' {
			return ""
		}
	}
	if strings.HasPrefix(s, "/login") || strings.HasPrefix(s, "/logout") {
		return ""
	}
	return s
}
