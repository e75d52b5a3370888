// Package client uploads scan results to mamori server (POST /api/v1/scans).
package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"mamori/internal/model"
)

// EnvToken is the environment variable the CLI reads the token from, so
// that it stays out of shell history and process listings.
const EnvToken = "MAMORI_TOKEN"

// Defaults, each with its reason.
const (
	// DefaultAttempts: ingest is idempotent (image digest + scan ID), so
	// retrying is safe; five attempts over about 30 s ride out a server
	// restart or a brief network failure.
	DefaultAttempts = 5
	// DefaultRetryWait is the first backoff; it doubles up to maxRetryWait.
	DefaultRetryWait = time.Second
	maxRetryWait     = 16 * time.Second
	// DefaultTimeout bounds one attempt (a large result over a slow link).
	DefaultTimeout = 10 * time.Minute
	// maxErrorBody caps how much of an error response is read.
	maxErrorBody = 64 << 10
)

// Sentinel errors.
var (
	// ErrRejected: the server refused the result (4xx); retrying will not help.
	ErrRejected = errors.New("client: upload rejected")
	// ErrUnauthorized: the token is missing, unknown, revoked or expired (401)
	// or its role may not upload (403).
	ErrUnauthorized = errors.New("client: token refused")
	// ErrInsecureURL: plain http:// to a non-loopback server would send the token in the clear.
	ErrInsecureURL = errors.New("client: refusing to send a token over plain HTTP to a non-loopback server")
)

// Receipt is the server's answer to an accepted upload.
type Receipt struct {
	// Status is "created", "stale" (recorded, an newer scan is shown) or "duplicate".
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate"`
	ImageID   int64  `json:"imageID"`
	ScanID    int64  `json:"scanID"`
	// Attempts is how many requests it took.
	Attempts int `json:"-"`
}

// Option configures Upload.
type Option func(*options) error

type options struct {
	client    *http.Client
	caFile    string
	attempts  int
	retryWait time.Duration
	log       *slog.Logger
}

// WithCAFile trusts the PEM certificates in path (instead of the system
// roots): the server's self-signed certificate (<data-dir>/tls-cert.pem) or
// a private CA. Verification stays on.
func WithCAFile(path string) Option {
	return func(o *options) error {
		o.caFile = path
		return nil
	}
}

// WithHTTPClient replaces the HTTP client (its transport's TLS settings
// are used as they are; WithCAFile is then ignored).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("client: nil HTTP client")
		}
		o.client = c
		return nil
	}
}

// WithRetries sets the number of attempts (at least 1) and the first backoff.
func WithRetries(attempts int, firstWait time.Duration) Option {
	return func(o *options) error {
		if attempts < 1 || firstWait < 0 {
			return fmt.Errorf("client: invalid retries %d / %v", attempts, firstWait)
		}
		o.attempts, o.retryWait = attempts, firstWait
		return nil
	}
}

// WithLogger logs retries (never the token).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("client: nil logger")
		}
		o.log = l
		return nil
	}
}

// Upload sends res to the server at serverURL ("https://host:8443") with
// token, gzip-compressed, and returns the server's receipt once the server
// has committed it. Connection errors, 5xx, 408 and 429 are retried with
// exponential backoff (safe: the server deduplicates by image digest + scan
// ID, a retried upload answers "duplicate"); other 4xx fail at once with
// ErrRejected or ErrUnauthorized and the server's message. TLS certificates
// are verified (WithCAFile pins a CA); plain http:// is allowed only to a
// loopback address.
func Upload(ctx context.Context, serverURL, token string, res *model.Result, opts ...Option) (Receipt, error) {
	o := &options{attempts: DefaultAttempts, retryWait: DefaultRetryWait, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return Receipt{}, err
		}
	}
	if res == nil {
		return Receipt{}, errors.New("client: nil result")
	}
	if token == "" {
		return Receipt{}, fmt.Errorf("%w: no token (set %s)", ErrUnauthorized, EnvToken)
	}
	endpoint, err := scansURL(serverURL)
	if err != nil {
		return Receipt{}, err
	}
	if o.client == nil {
		if o.client, err = newHTTPClient(o.caFile); err != nil {
			return Receipt{}, err
		}
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(res); err != nil {
		return Receipt{}, fmt.Errorf("client: encode result: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Receipt{}, fmt.Errorf("client: compress result: %w", err)
	}
	body := buf.Bytes()
	wait := o.retryWait
	var last error
	for attempt := 1; attempt <= o.attempts; attempt++ {
		rec, retryAfter, err := send(ctx, o.client, endpoint, token, body)
		if err == nil {
			rec.Attempts = attempt
			return rec, nil
		}
		last = err
		if retryAfter < 0 || attempt == o.attempts || ctx.Err() != nil {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		o.log.Warn("upload failed, retrying", "attempt", attempt, "wait", d, "err", err)
		select {
		case <-ctx.Done():
			return Receipt{}, fmt.Errorf("client: upload: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(d):
		}
		wait = min(wait*2, maxRetryWait)
	}
	return Receipt{}, last
}

// send makes one attempt. retryAfter < 0 means do not retry; > 0 is the
// server's Retry-After.
func send(ctx context.Context, c *http.Client, endpoint, token string, body []byte) (Receipt, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Receipt{}, -1, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is already in our message; drop Go's quoting of it
		}
		var cerr *tls.CertificateVerificationError
		if errors.As(err, &cerr) {
			return Receipt{}, -1, fmt.Errorf("client: upload to %s: %w (pin the server's certificate with --ca-file)", endpoint, err)
		}
		return Receipt{}, 0, fmt.Errorf("client: upload to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return Receipt{}, 0, fmt.Errorf("client: read response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		var rec Receipt
		if err := json.Unmarshal(data, &rec); err != nil {
			return Receipt{}, -1, fmt.Errorf("client: server answer: %w", err)
		}
		return rec, 0, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return Receipt{}, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("client: server answered %s: %s", resp.Status, serverMessage(data))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Receipt{}, -1, fmt.Errorf("%w: server answered %s: %s", ErrUnauthorized, resp.Status, serverMessage(data))
	default:
		return Receipt{}, -1, fmt.Errorf("%w: server answered %s: %s", ErrRejected, resp.Status, serverMessage(data))
	}
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, time.Minute)
	}
	return 0
}

func serverMessage(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// scansURL validates serverURL and returns the ingest endpoint.
func scansURL(serverURL string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(serverURL), "/"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("client: server URL %q: want https://HOST[:PORT]", serverURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("client: server URL %q: no credentials, query or fragment", serverURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("%w (%s): use https://", ErrInsecureURL, u.Host)
		}
	default:
		return "", fmt.Errorf("client: server URL %q: scheme must be https (or http on loopback)", serverURL)
	}
	return u.Scheme + "://" + u.Host + u.Path + "/api/v1/scans", nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: CA file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}
