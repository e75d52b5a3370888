package auth

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Failure-limiter defaults, each with its reason.
const (
	// DefaultFailureBurst is how many failed authentications a client
	// address may make in a row: a person pasting a stale token, or a CI job
	// retrying with a revoked one, stays well under it; a guesser meets it
	// at once.
	DefaultFailureBurst = 10
	// DefaultFailuresPerMinute is the long-run rate of failures allowed per
	// address once the burst is spent (one every 6 s). Tokens have 256 bits,
	// so the limit is not what keeps them unguessable: it keeps a
	// misbehaving client from turning every request into a store lookup and
	// a log line.
	DefaultFailuresPerMinute = 10
	// DefaultMaxClients bounds the addresses tracked at once (about 200
	// bytes each: 2 MiB at the cap). Only failing addresses are tracked.
	DefaultMaxClients = 10_000
	// maxLockout bounds how long an address can be refused after its last
	// failure. Failures that got past the check concurrently (all checked
	// before any was recorded) are charged as debt so that parallel
	// guessing buys no more tries in the long run; the debt stops here.
	maxLockout = 15 * time.Minute
	// refusalLogInterval: a refused address is logged once, then at most
	// this often with the count of refusals meanwhile, so that a flood of
	// refused requests does not become a flood of log lines.
	refusalLogInterval = time.Minute
)

// ErrThrottled: too many failed authentications from the client's address;
// the attempt was refused without checking the credentials. Errors
// returned by Login wrap it in a *ThrottledError.
var ErrThrottled = errors.New("auth: too many failed authentication attempts")

// ThrottledError is a refused attempt and when the client may try again.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrThrottled, e.RetryAfter)
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfterSeconds is the Retry-After header value: whole seconds, at least 1.
func (e *ThrottledError) RetryAfterSeconds() string {
	return strconv.FormatInt(retryAfterSeconds(e.RetryAfter), 10)
}

func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// FailureLimit configures a FailureLimiter; zero fields take the defaults.
type FailureLimit struct {
	// PerMinute is the long-run rate of failures allowed per client address
	// (default DefaultFailuresPerMinute).
	PerMinute float64
	// Burst is how many failures in a row are allowed (default DefaultFailureBurst).
	Burst int
	// MaxClients caps the addresses tracked (default DefaultMaxClients).
	MaxClients int
	// Disabled turns throttling off.
	Disabled bool
}

// FailureLimiter throttles failed authentication per client address with a
// token bucket: each failure takes a token, tokens come back at PerMinute
// up to Burst, and an address with less than one token is refused
// (ErrThrottled, 429) until one is back. Successful authentications take
// nothing. Only addresses that failed are tracked; an address whose bucket
// is full again is forgotten, and past MaxClients the address that failed
// (or was refused) longest ago is forgotten first, so a spray of addresses
// costs bounded memory. It is safe for concurrent use.
//
// The client address is the connection's remote address, never a
// forwarding header: mamori has no trusted-proxy setting, and a header any
// client can set would let each attempt claim a fresh address. IPv6
// clients are grouped by /64, the block one host usually gets.
type FailureLimiter struct {
	// The bucket is kept as the time it will be full again (the GCRA
	// form of a token bucket): integer arithmetic, no rounding drift.
	interval time.Duration // one token comes back per interval
	slack    time.Duration // (Burst-1) intervals: how far "full" may lie ahead and still allow an attempt
	maxAhead time.Duration // slack + maxLockout: the deepest debt
	max      int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently failed or refused
	evicted int64
}

type bucket struct {
	key     string
	full    time.Time // when the bucket is full again
	refused int       // refusals since the last log
	logged  time.Time // when a refusal was last logged
}

// NewFailureLimiter returns a limiter; now is the clock (nil: time.Now).
func NewFailureLimiter(l FailureLimit, now func() time.Time) (*FailureLimiter, error) {
	if l.PerMinute < 0 || l.Burst < 0 || l.MaxClients < 0 || math.IsNaN(l.PerMinute) || math.IsInf(l.PerMinute, 0) {
		return nil, fmt.Errorf("auth: failure limit %+v: negative or invalid values", l)
	}
	if l.PerMinute == 0 {
		l.PerMinute = DefaultFailuresPerMinute
	}
	if l.Burst == 0 {
		l.Burst = DefaultFailureBurst
	}
	if l.MaxClients == 0 {
		l.MaxClients = DefaultMaxClients
	}
	if now == nil {
		now = time.Now
	}
	interval := time.Duration(float64(time.Minute) / l.PerMinute)
	if interval <= 0 {
		return nil, fmt.Errorf("auth: failure limit %+v: rate too high", l)
	}
	slack := time.Duration(l.Burst-1) * interval
	return &FailureLimiter{interval: interval, slack: slack, maxAhead: slack + maxLockout, max: l.MaxClients,
		now: now, entries: map[string]*list.Element{}}, nil
}

// Key is r's client address as the limiter counts it: the remote IP, an
// IPv6 address reduced to its /64.
func (l *FailureLimiter) Key(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		// Not ip:port (a Unix socket's "@", a test's odd value): one key.
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}

// wait is how long until b has a whole token (0: it has one now).
func (l *FailureLimiter) wait(b *bucket, now time.Time) time.Duration {
	return max(0, b.full.Sub(now)-l.slack)
}

// Refusal is the outcome of Check for a refused address.
type Refusal struct {
	RetryAfter time.Duration
	// Log is true when this refusal should be logged; Refused then counts
	// the refusals since the previous log, this one included.
	Log     bool
	Refused int
}

// Check reports whether key may try to authenticate now; nil means yes.
// It takes nothing: call Fail when the attempt fails.
func (l *FailureLimiter) Check(key string) *Refusal {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		return nil
	}
	b := e.Value.(*bucket)
	if !b.full.After(now) {
		l.remove(e) // forgiven: nothing left to remember
		return nil
	}
	wait := l.wait(b, now)
	if wait == 0 {
		return nil
	}
	// A refused address stays at the front: a spray of new addresses
	// cannot push out one that keeps knocking.
	l.lru.MoveToFront(e)
	b.refused++
	r := &Refusal{RetryAfter: wait}
	if b.logged.IsZero() || now.Sub(b.logged) >= refusalLogInterval {
		r.Log, r.Refused = true, b.refused
		b.logged, b.refused = now, 0
	}
	return r
}

// Fail records a failed attempt of key. It reports whether this failure
// spent key's last token (the moment to log that key is now refused) and
// how long until key may try again.
func (l *FailureLimiter) Fail(key string) (nowRefused bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		l.pruneIdle(now)
		if len(l.entries) >= l.max {
			l.remove(l.lru.Back())
			l.evicted++
		}
		e = l.lru.PushFront(&bucket{key: key, full: now})
		l.entries[key] = e
	} else {
		l.lru.MoveToFront(e)
	}
	b := e.Value.(*bucket)
	had := l.wait(b, now) == 0
	if b.full.Before(now) {
		b.full = now
	}
	b.full = b.full.Add(l.interval)
	if lim := now.Add(l.maxAhead); b.full.After(lim) {
		b.full = lim
	}
	wait := l.wait(b, now)
	return had && wait > 0, wait
}

// pruneIdle forgets the least recent entries whose bucket is full again.
// Each entry is removed once, so the cost is amortised O(1) per Fail.
func (l *FailureLimiter) pruneIdle(now time.Time) {
	for e := l.lru.Back(); e != nil && !e.Value.(*bucket).full.After(now); e = l.lru.Back() {
		l.remove(e)
	}
}

func (l *FailureLimiter) remove(e *list.Element) {
	if e == nil {
		return
	}
	delete(l.entries, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// Sweep forgets every address whose bucket is full again (the server
// calls it periodically, so that an idle limiter holds nothing).
func (l *FailureLimiter) Sweep() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for e := l.lru.Back(); e != nil; {
		prev := e.Prev()
		if !e.Value.(*bucket).full.After(now) {
			l.remove(e)
		}
		e = prev
	}
}

// LimiterStats describes a FailureLimiter's memory.
type LimiterStats struct {
	// Tracked is the number of addresses remembered now.
	Tracked int
	// Evicted counts addresses forgotten because MaxClients was reached
	// while they still had failures to pay back.
	Evicted int64
}

// Stats returns the limiter's current size and evictions.
func (l *FailureLimiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{Tracked: len(l.entries), Evicted: l.evicted}
}
