// Package auth authenticates and authorizes requests to mamori server:
// API tokens (Authorization: Bearer), roles, console login sessions and CSRF
// protection for the console.
//
// # Tokens
//
// A token is TokenPrefix followed by 43 base64url characters encoding 32
// random bytes (256 bits). It is shown once, when created, and stored only as
// its SHA-256 hash (HashToken) plus a short display prefix (DisplayPrefix).
//
// Why SHA-256 and not bcrypt/argon2: slow, salted hashes exist to protect
// low-entropy secrets (human passwords) from offline guessing. A 256-bit
// random token cannot be guessed however fast the hash is, so a slow hash
// adds nothing, while an unsalted fast hash lets the server find the token
// by an indexed lookup of its hash on every request (a salted hash would
// force comparing against every stored token). GitHub, GitLab and PyPI
// store their API tokens the same way. mamori has no passwords: console
// login is by token too.
//
// # Roles
//
// Human roles: admin > operator > viewer. Machine roles: cluster (the
// cluster component of one cluster) and agent (node agents), bound to a
// cluster by their token (Principal.Cluster), each allowed only its own
// actions and never a console session. Allowed(role, action) is the one
// permission function; every route names the Action it needs. The store
// keeps roles as text: this package is the authorization vocabulary.
//
// # Console sessions and CSRF
//
// Logging in with a token (Authenticator.Login) creates a session whose
// random 256-bit ID is sent in an HttpOnly, SameSite=Strict cookie (Secure
// and "__Host-" prefixed under TLS) and stored only as its SHA-256 hash. Each
// session has a CSRF secret; every state-changing request authenticated by
// the cookie must carry it (form field CSRFField or header CSRFHeader,
// CSRFToken(r) returns it for templates) and pass net/http's
// CrossOriginProtection (Sec-Fetch-Site, Origin vs Host). Requests
// authenticated by a bearer token are not exposed to CSRF (a browser never
// adds the header by itself) and skip the synchronizer check.
//
// # Throttling
//
// With WithFailureLimiter, failed token authentications (bearer headers and
// console logins) are counted per client address in a FailureLimiter (a
// token bucket: DefaultFailureBurst in a row, then
// DefaultFailuresPerMinute). A throttled address gets 429 with Retry-After,
// without its token being looked at, until the bucket refills; successful
// authentications are never counted, and other addresses are unaffected.
//
// Secrets (tokens, session IDs, CSRF secrets) are never logged nor written
// to a response other than the one creating them.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// TokenPrefix starts every token mamori generates, so that secret scanners
// (and people) can recognise a leaked one.
const TokenPrefix = "mmr_"

// Sizes, each with its reason.
const (
	// tokenBytes is the token's entropy: 256 bits, beyond any brute force.
	tokenBytes = 32
	// DisplayPrefixLen is how much of a token is kept for display: the
	// "mmr_" marker and 4 random characters (24 bits), enough to tell
	// tokens apart in a list, far too little to help guess one.
	DisplayPrefixLen = len(TokenPrefix) + 4
	// MinTokenLen is the shortest token accepted from outside (a bootstrap
	// token from MAMORI_BOOTSTRAP_TOKEN): 32 characters of a random
	// alphabet is at least ~160 bits.
	MinTokenLen = 32
	// MaxTokenLen bounds what is hashed per request; a generated token is 47.
	MaxTokenLen = 256
)

// Sentinel errors.
var (
	// ErrUnauthenticated: no credentials, or credentials that are unknown,
	// revoked or expired. Callers answer 401 without saying which.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrForbidden: authenticated, but the role does not allow the action.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrCSRF: a state-changing console request without a valid CSRF token
	// or from another origin.
	ErrCSRF = errors.New("auth: cross-site request refused")
	// ErrMalformedToken: a token that cannot be one (too short, too long,
	// characters outside printable ASCII).
	ErrMalformedToken = errors.New("auth: malformed token")
)

// GenerateToken returns a new random token (TokenPrefix + 43 base64url
// characters). Show it once; store HashToken(token) and DisplayPrefix(token).
func GenerateToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// CheckToken reports whether s has the shape of a token: MinTokenLen to
// MaxTokenLen printable ASCII characters without spaces.
func CheckToken(s string) error {
	if len(s) < MinTokenLen || len(s) > MaxTokenLen {
		return fmt.Errorf("%w: want %d to %d characters", ErrMalformedToken, MinTokenLen, MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: only printable ASCII without spaces", ErrMalformedToken)
		}
	}
	return nil
}

// HashToken is the stored form of a token (and of a session ID): its SHA-256.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// DisplayPrefix is the part of a token kept for display ("mmr_3fA9").
func DisplayPrefix(token string) string {
	if len(token) <= DisplayPrefixLen {
		// Never store a whole short token as its "prefix".
		if len(token) > 4 {
			return token[:4]
		}
		return ""
	}
	return token[:DisplayPrefixLen]
}

// randomString returns n random bytes as base64url.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// bearer extracts the token of an "Authorization: Bearer T" header; ok is
// false when there is no such header.
func bearer(h string) (string, bool) {
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
