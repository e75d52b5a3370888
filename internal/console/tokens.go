package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mamori/internal/auth"
	"mamori/internal/service"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
)

const (
	// maxTokenDays: a year; longer-lived credentials should be re-issued.
	maxTokenDays = 366
)

type tokensData struct {
	Tokens []store.Token
	Now    time.Time
	// NewToken is the token just created, shown once; "" otherwise.
	NewToken     string
	NewTokenName string
	Errors       []string
	Form         tokenForm
	Roles        []auth.Role
}

type tokenForm struct {
	Name string
	Role string
	Days string
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request) {
	c.renderTokens(w, r, http.StatusOK, tokensData{Form: tokenForm{Role: string(auth.RoleViewer)}}, flashFromQuery(r))
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, status int, d tokensData, fl *flash) {
	toks, err := c.opt.services.Tokens.List(r.Context())
	if err != nil {
		c.storeError(w, r, "token list", err)
		return
	}
	// Newest first: the one just created is on top.
	for i, j := 0, len(toks)-1; i < j; i, j = i+1, j-1 {
		toks[i], toks[j] = toks[j], toks[i]
	}
	d.Tokens = toks
	d.Now = c.opt.now()
	d.Roles = []auth.Role{auth.RoleViewer, auth.RoleOperator, auth.RoleAdmin}
	p := c.newPage(r, "tokens", "API tokens", crumb{Label: "Settings"}, crumb{Label: "API tokens"})
	p.Data = d
	p.Flash = fl
	c.render(w, r, status, "tokens", p)
}

// mintToken creates a token through the token service (the API's rules
// and audit line); the returned string is the only copy.
func (c *Console) mintToken(r *http.Request, name string, role auth.Role, days int) (string, error) {
	created, err := c.opt.services.Tokens.Create(r.Context(), tokens.Request{Name: name, Role: role,
		ExpiresIn: time.Duration(days) * 24 * time.Hour})
	if err != nil {
		return "", err
	}
	return created.Secret, nil
}

func (c *Console) tokenCreate(w http.ResponseWriter, r *http.Request) {
	if !c.readForm(w, r) {
		return
	}
	d := tokensData{Form: tokenForm{
		Name: strings.TrimSpace(r.PostFormValue("name")),
		Role: r.PostFormValue("role"),
		Days: strings.TrimSpace(r.PostFormValue("expires_days")),
	}}
	role := auth.Role(d.Form.Role)
	days := 0
	if d.Form.Days != "" {
		n, err := strconv.Atoi(d.Form.Days)
		if err != nil || n < 0 || n > maxTokenDays {
			d.Errors = append(d.Errors, "Expires: a number of days from 1 to 366 (empty: never).")
		}
		days = n
	}
	if len(d.Errors) > 0 {
		c.renderTokens(w, r, http.StatusUnprocessableEntity, d, nil)
		return
	}
	tok, err := c.mintToken(r, d.Form.Name, role, days)
	switch {
	case errors.Is(err, service.ErrInvalid):
		d.Errors = append(d.Errors, sentence(err.Error()))
		c.renderTokens(w, r, http.StatusUnprocessableEntity, d, nil)
		return
	case errors.Is(err, store.ErrConflict):
		d.Errors = append(d.Errors, "A token named "+strconv.Quote(d.Form.Name)+" already exists.")
		c.renderTokens(w, r, http.StatusConflict, d, nil)
		return
	case err != nil:
		c.storeError(w, r, "token", err)
		return
	}
	c.renderTokens(w, r, http.StatusCreated, tokensData{NewToken: tok, NewTokenName: d.Form.Name,
		Form: tokenForm{Role: string(auth.RoleViewer)}}, nil)
}

func (c *Console) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Token IDs are numbers; this one is not.")
		return
	}
	if err := c.opt.services.Tokens.Revoke(r.Context(), id); err != nil {
		c.storeError(w, r, "token", err)
		return
	}
	if p, ok := auth.PrincipalFromRequest(r); ok && p.TokenID == id {
		// Revoking one's own token ends this session too.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	redirectFlash(w, r, "/settings/tokens", "revoked")
}

// ---------------------------------------------------------------------------
// Artifact Scanner

type scannerData struct {
	ServerURL string
	// Token is a token just minted for the commands; "" shows a placeholder.
	Token     string
	TokenName string
	Insecure  bool
	Errors    []string
}

func (c *Console) serverURL(r *http.Request) string {
	if c.opt.serverURL != "" {
		return c.opt.serverURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *Console) scannerPage(w http.ResponseWriter, r *http.Request) {
	c.renderScanner(w, r, http.StatusOK, scannerData{})
}

func (c *Console) renderScanner(w http.ResponseWriter, r *http.Request, status int, d scannerData) {
	d.ServerURL = c.serverURL(r)
	d.Insecure = strings.HasPrefix(d.ServerURL, "http://")
	p := c.newPage(r, "scanner", "Artifact Scanner", crumb{Label: "Artifact Scanner"})
	p.Data = d
	c.render(w, r, status, "scanner", p)
}

// scannerToken mints an operator token (enough to upload scans, nothing
// more) for a CI pipeline and shows the commands with it, once.
func (c *Console) scannerToken(w http.ResponseWriter, r *http.Request) {
	if !c.readForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		name = "ci-" + c.opt.now().UTC().Format("20060102-150405")
	}
	tok, err := c.mintToken(r, name, auth.RoleOperator, 0)
	switch {
	case errors.Is(err, service.ErrInvalid):
		c.renderScanner(w, r, http.StatusUnprocessableEntity, scannerData{Errors: []string{sentence(err.Error())}})
		return
	case errors.Is(err, store.ErrConflict):
		c.renderScanner(w, r, http.StatusConflict, scannerData{Errors: []string{"A token named " + strconv.Quote(name) + " already exists."}})
		return
	case err != nil:
		c.storeError(w, r, "token", err)
		return
	}
	c.renderScanner(w, r, http.StatusCreated, scannerData{Token: tok, TokenName: name})
}

// sentence makes a service's message a sentence for a page.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
