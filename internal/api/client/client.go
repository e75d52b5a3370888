// Package client is the one typed client of mamori server's API (package
// api): the scan CLI uploads results with it, the cluster component and the
// node agent register, send heartbeats and deliver events with it.
//
// A Client holds the server URL, the token and an HTTP client: TLS is
// verified against the system roots, a CA file (WithCAFile: the server's
// self-signed certificate or a private CA) or a pinned certificate
// (WithPinnedCertificate: the SHA-256 the server logs at start); plain
// http:// is refused except to a loopback address, so that a token never
// crosses a network in the clear.
//
// Idempotent calls (every upload here: the server de-duplicates scans by
// image digest and scan ID, events by event ID; registration and heartbeat
// are upserts; reads) are retried with exponential backoff on connection
// errors, 5xx, 408 and 429 (honouring Retry-After); other answers fail at
// once with an *Error carrying the server's message, which errors.Is maps
// to ErrUnauthorized (401, 403), ErrNotFound (404) or ErrRejected (other
// 4xx). Every call takes the caller's context: cancelling it (Ctrl-C)
// stops the request and the backoff.
//
// Components take inventory, the server matches: Match sends an inventory
// (a node's packages, an image scanned inline at admission) and returns
// what the server's vulnerability database finds. Adding a route is one
// method: build the api request type, call c.call with the method, the
// path from package api, whether a retry is safe, and the api response
// type to decode into (see UploadScan, AgentHeartbeat, Match); storing a
// node's inventory, when the server has that route, is such a method.
package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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
)

// EnvToken is the environment variable the CLI reads the token from, so
// that it stays out of shell history and process listings.
const EnvToken = "MAMORI_TOKEN"

// Defaults, each with its reason.
const (
	// DefaultAttempts: five attempts over about 30 s ride out a server
	// restart or a brief network failure.
	DefaultAttempts = 5
	// DefaultRetryWait is the first backoff; it doubles up to maxRetryWait.
	DefaultRetryWait = time.Second
	maxRetryWait     = 16 * time.Second
	// maxRetryAfter caps a server's Retry-After: a longer wait is the
	// caller's decision (its context), not the server's.
	maxRetryAfter = time.Minute
	// DefaultTimeout bounds one attempt (a large result over a slow link).
	DefaultTimeout = 10 * time.Minute
	// maxResponse caps how much of an answer is read: the largest answers
	// (an image's detail) are tens of MiB; an error body is small.
	maxResponse  = 512 << 20
	maxErrorBody = 64 << 10
	// gzipOver: bodies above this are sent gzip-compressed (JSON compresses
	// 5-10x; below a few KiB the header costs more than it saves).
	gzipOver = 4 << 10
)

// Sentinel errors; an *Error matches one of the first three with errors.Is.
var (
	// ErrRejected: the server refused the request (4xx); retrying will not help.
	ErrRejected = errors.New("client: request rejected")
	// ErrUnauthorized: the token is missing, unknown, revoked or expired
	// (401) or its role may not do this (403).
	ErrUnauthorized = errors.New("client: token refused")
	// ErrNotFound: the object does not exist (404); an agent whose
	// heartbeat gets it registers again.
	ErrNotFound = errors.New("client: not found")
	// ErrInsecureURL: plain http:// to a non-loopback server would send the token in the clear.
	ErrInsecureURL = errors.New("client: refusing to send a token over plain HTTP to a non-loopback server")
)

// Error is an answer of the server that is not a success.
type Error struct {
	Method, Path string
	StatusCode   int
	Status       string
	// Message is the server's {"error": ...} text (or the start of the body).
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server answered %s to %s %s: %s", e.Status, e.Method, e.Path, e.Message)
}

// Is maps the status to ErrUnauthorized, ErrNotFound or ErrRejected.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrRejected:
		return e.StatusCode >= 400 && e.StatusCode < 500
	}
	return false
}

// retryable reports whether a status is worth another attempt.
func retryable(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// Option configures New.
type Option func(*options) error

type options struct {
	client    *http.Client
	caFile    string
	pin       []byte
	attempts  int
	retryWait time.Duration
	timeout   time.Duration
	log       *slog.Logger
	userAgent string
}

// WithCAFile trusts the PEM certificates in path instead of the system
// roots: the server's self-signed certificate (<data-dir>/tls-cert.pem) or
// a private CA. Verification stays on.
func WithCAFile(path string) Option {
	return func(o *options) error {
		o.caFile = path
		return nil
	}
}

// WithPinnedCertificate accepts exactly the server certificate whose DER
// has this SHA-256 (64 hex digits, colons allowed: what `mamori server`
// logs as certSHA256), whoever signed it, and nothing else. Use it when
// distributing the fingerprint is easier than the certificate.
func WithPinnedCertificate(sha256Hex string) Option {
	return func(o *options) error {
		h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(sha256Hex), ":", ""))
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("client: pinned certificate %q: want the 64 hex digits of a SHA-256", sha256Hex)
		}
		o.pin = b
		return nil
	}
}

// WithHTTPClient replaces the HTTP client (its transport's TLS settings
// are used as they are: WithCAFile and WithPinnedCertificate are then refused).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("client: nil HTTP client")
		}
		o.client = c
		return nil
	}
}

// WithRetries sets the number of attempts of an idempotent call (at least
// 1) and the first backoff.
func WithRetries(attempts int, firstWait time.Duration) Option {
	return func(o *options) error {
		if attempts < 1 || firstWait < 0 {
			return fmt.Errorf("client: invalid retries %d / %v", attempts, firstWait)
		}
		o.attempts, o.retryWait = attempts, firstWait
		return nil
	}
}

// WithTimeout bounds one attempt (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("client: timeout %v must be positive", d)
		}
		o.timeout = d
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

// WithUserAgent names the caller in the User-Agent header ("mamori-agent/1.2").
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}

// Client calls one mamori server with one token. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[:port][/path], no trailing slash
	token string
	hc    *http.Client
	opt   options
}

// New returns a client of the server at serverURL ("https://host:8443")
// authenticating with token.
func New(serverURL, token string, opts ...Option) (*Client, error) {
	o := options{attempts: DefaultAttempts, retryWait: DefaultRetryWait, timeout: DefaultTimeout,
		log: slog.New(slog.DiscardHandler), userAgent: "mamori"}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no token (set %s)", ErrUnauthorized, EnvToken)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("%w: the token contains white space", ErrUnauthorized)
	}
	base, err := baseURL(serverURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, token: token, opt: o, hc: o.client}
	if c.hc != nil {
		if o.caFile != "" || o.pin != nil {
			return nil, errors.New("client: WithHTTPClient excludes WithCAFile and WithPinnedCertificate")
		}
	} else if c.hc, err = newHTTPClient(o.caFile, o.pin); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// baseURL validates serverURL.
func baseURL(serverURL string) (string, error) {
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
	return u.Scheme + "://" + u.Host + u.Path, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newHTTPClient(caFile string, pin []byte) (*http.Client, error) {
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
	if pin != nil {
		// The chain is not verified against roots: the pin is the trust.
		// VerifyConnection still runs on every handshake (resumed ones too).
		tr.TLSClientConfig.InsecureSkipVerify = true
		tr.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("client: the server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], pin) {
				return fmt.Errorf("client: server certificate SHA-256 %s is not the pinned %s", hex.EncodeToString(got[:]), hex.EncodeToString(pin))
			}
			return nil
		}
	}
	return &http.Client{Transport: tr}, nil
}

// call sends one API request: body (any JSON value, nil for none) to
// method path?query, decoding a 2xx answer into out (nil to discard).
// idempotent calls are retried. It returns the attempts made.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any, idempotent bool) (int, error) {
	var payload []byte
	gz := false
	if body != nil {
		var err error
		if payload, err = encodeBody(body); err != nil {
			return 0, err
		}
		if len(payload) > gzipOver {
			if payload, err = gzipBytes(payload); err != nil {
				return 0, err
			}
			gz = true
		}
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	attempts := 1
	if idempotent {
		attempts = c.opt.attempts
	}
	wait := c.opt.retryWait
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		retryAfter, err := c.once(ctx, method, path, target, payload, gz, out)
		if err == nil {
			return attempt, nil
		}
		last = err
		if retryAfter < 0 || attempt == attempts || ctx.Err() != nil {
			return attempt, err
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		c.opt.log.Warn("request failed, retrying", "method", method, "path", path, "attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("client: %s %s: %w (last error: %v)", method, path, ctx.Err(), last)
		case <-t.C:
		}
		wait = min(wait*2, maxRetryWait)
	}
	return attempts, last
}

// once makes one attempt. retryAfter < 0 means do not retry; > 0 is the
// server's Retry-After.
func (c *Client) once(ctx context.Context, method, path, target string, payload []byte, gz bool, out any) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.opt.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return -1, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opt.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is already in our message; drop Go's quoting of it
		}
		if ctx.Err() != nil {
			return -1, fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		}
		var cerr *tls.CertificateVerificationError
		if errors.As(err, &cerr) || strings.Contains(err.Error(), "pinned") {
			return -1, fmt.Errorf("client: %s %s%s: %w (trust the server's certificate with --ca-file or pin its SHA-256)", method, c.base, path, err)
		}
		return 0, fmt.Errorf("client: %s %s%s: %w", method, c.base, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			return 0, nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
			if ctx.Err() != nil {
				return -1, fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
			}
			return -1, fmt.Errorf("client: %s %s: read answer: %w", method, path, err)
		}
		return 0, nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode, Status: resp.Status, Message: serverMessage(data)}
	if retryable(resp.StatusCode) {
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("client: %w", e)
	}
	return -1, fmt.Errorf("client: %w", e)
}

func encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	return buf.Bytes(), nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("client: compress request: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("client: compress request: %w", err)
	}
	return buf.Bytes(), nil
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
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
	s := strings.TrimSpace(strings.ToValidUTF8(string(data), "?"))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
