// Package forward sends log inspection's events (model.Event) to a SIEM as RFC 5424 syslog
// messages, over UDP (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425). Sending never
// blocks the pipeline: events wait in a bounded queue, the oldest are dropped (and counted)
// when the collector is slower than the host, and the connection is re-established with
// back-off when it breaks.
package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"mamori/internal/model"
)

// Network names a transport.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Defaults.
const (
	// DefaultQueue: events waiting for the collector (about 10 MB at worst).
	DefaultQueue = 10_000
	// DefaultUDPSize: RFC 5426 receivers must accept 480 bytes and should accept 2048; larger
	// messages are cut (the message text, then the structured data).
	DefaultUDPSize = 2048
	// DefaultSDID names the structured data element. 32473 is the private enterprise number
	// RFC 5612 reserves for documentation: set your own.
	DefaultSDID    = "mamori@32473"
	DefaultAppName = "mamori"
	// DefaultFacility is auth (4): security events.
	DefaultFacility = 4
	dialTimeout     = 5 * time.Second
	writeTimeout    = 10 * time.Second
	maxBackoff      = 30 * time.Second
)

// ErrConfig: the forwarder's configuration is invalid.
var ErrConfig = errors.New("forward: bad syslog configuration")

// Config configures a Syslog forwarder.
type Config struct {
	Network  string      // "udp", "tcp" or "tls"
	Address  string      // host:port of the collector
	TLS      *tls.Config // for "tls": roots, client certificate, ServerName (from Address when empty)
	Hostname string      // HOSTNAME of the messages (the event's host when empty)
	AppName  string      // APP-NAME (DefaultAppName)
	SDID     string      // structured data ID (DefaultSDID)
	Facility int         // 1-23; 0 (kern, the kernel's own) means DefaultFacility
	Queue    int         // queued events (DefaultQueue)
	UDPSize  int         // largest UDP datagram (DefaultUDPSize)
	Logger   *slog.Logger
}

// Stats are the forwarder's counters.
type Stats struct {
	Sent, Dropped, Errors, Reconnects uint64
	Queued                            int
}

// Syslog forwards events to one collector. Send is safe for concurrent use; Run sends.
type Syslog struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	queue []model.Event
	wake  chan struct{}
	stats Stats
	conn  net.Conn
}

// NewSyslog checks cfg and returns a forwarder; nothing is sent until Run.
func NewSyslog(cfg Config) (*Syslog, error) {
	switch cfg.Network {
	case UDP, TCP, TLS:
	default:
		return nil, fmt.Errorf("%w: network %q (want udp, tcp or tls)", ErrConfig, cfg.Network)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("%w: address %q: %v", ErrConfig, cfg.Address, err)
	}
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if cfg.SDID == "" {
		cfg.SDID = DefaultSDID
	}
	if !validName(cfg.AppName, 48) || !validName(cfg.SDID, 32) || cfg.Hostname != "" && !validName(cfg.Hostname, 255) {
		return nil, fmt.Errorf("%w: app name, SD-ID and host name are printable ASCII without spaces (48, 32, 255 at most)", ErrConfig)
	}
	if cfg.Facility == 0 {
		cfg.Facility = DefaultFacility
	}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return nil, fmt.Errorf("%w: facility %d not in 0-23", ErrConfig, cfg.Facility)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.UDPSize <= 0 {
		cfg.UDPSize = DefaultUDPSize
	}
	if cfg.UDPSize < 480 || cfg.UDPSize > 65000 {
		return nil, fmt.Errorf("%w: UDP size %d not in 480-65000", ErrConfig, cfg.UDPSize)
	}
	if cfg.Network == TLS && cfg.TLS == nil {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syslog{cfg: cfg, log: log, wake: make(chan struct{}, 1)}, nil
}

// Send queues an event; it reports false when the queue was full and the oldest event was
// dropped to make room.
func (s *Syslog) Send(ev model.Event) bool {
	s.mu.Lock()
	dropped := false
	if len(s.queue) >= s.cfg.Queue {
		s.queue = s.queue[1:]
		s.stats.Dropped++
		dropped = true
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return !dropped
}

// Stats returns the counters.
func (s *Syslog) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.queue)
	return st
}

// Run sends queued events until ctx is done, reconnecting with back-off. It returns nil when
// ctx ends; events still queued then are counted as dropped.
func (s *Syslog) Run(ctx context.Context) error {
	backoff := time.Second
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Lock()
		s.stats.Dropped += uint64(len(s.queue))
		s.queue = nil
		s.mu.Unlock()
	}()
	for {
		ev, ok := s.peek()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		if s.conn == nil {
			if err := s.dial(ctx); err != nil {
				s.count(func(st *Stats) { st.Errors++ })
				s.log.Warn("syslog collector unreachable", "network", s.cfg.Network, "address", s.cfg.Address, "err", err, "retry", backoff)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, maxBackoff)
				continue
			}
			backoff = time.Second
		}
		msg := Format(ev, s.cfg)
		if err := s.write(msg); err != nil {
			s.count(func(st *Stats) { st.Errors++; st.Reconnects++ })
			s.log.Warn("syslog send failed, reconnecting", "err", err)
			s.conn.Close()
			s.conn = nil
			continue // the event stays queued
		}
		s.pop()
	}
}

func (s *Syslog) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Syslog) peek() (model.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return model.Event{}, false
	}
	return s.queue[0], true
}

func (s *Syslog) pop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		s.queue = s.queue[1:]
		s.stats.Sent++
	}
}

func (s *Syslog) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: dialTimeout}
	var (
		c   net.Conn
		err error
	)
	switch s.cfg.Network {
	case UDP:
		c, err = d.DialContext(ctx, "udp", s.cfg.Address)
	case TCP:
		c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	case TLS:
		cfg := s.cfg.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(s.cfg.Address)
			cfg.ServerName = host
		}
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		c, err = td.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return err
	}
	s.conn = c
	return nil
}

// write sends one message: a datagram over UDP, "LEN SP MSG" over TCP and TLS.
func (s *Syslog) write(msg string) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if s.cfg.Network == UDP {
		if len(msg) > s.cfg.UDPSize {
			msg = cutUTF8(msg, s.cfg.UDPSize)
		}
		_, err := s.conn.Write([]byte(msg))
		return err
	}
	_, err := s.conn.Write([]byte(strconv.Itoa(len(msg)) + " " + msg))
	return err
}

// severityCode maps an event severity to a syslog severity.
func severityCode(s model.Severity) int {
	switch s {
	case model.SeverityCritical:
		return 2 // crit
	case model.SeverityHigh:
		return 3 // err
	case model.SeverityMedium:
		return 4 // warning
	case model.SeverityLow:
		return 5 // notice
	}
	return 6 // info
}

// Format renders an event as an RFC 5424 message (without transport framing):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MODULE [SDID id=".." rule=".." ...] BOM MESSAGE
func Format(ev model.Event, cfg Config) string {
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if cfg.SDID == "" {
		cfg.SDID = DefaultSDID
	}
	if cfg.Facility <= 0 || cfg.Facility > 23 {
		cfg.Facility = DefaultFacility
	}
	var b strings.Builder
	pri := cfg.Facility*8 + severityCode(ev.Severity)
	fmt.Fprintf(&b, "<%d>1 ", pri)
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	host := cfg.Hostname
	if host == "" {
		host = printable(ev.Host, 255)
	}
	if host == "" {
		host = "-"
	}
	b.WriteString(host)
	b.WriteByte(' ')
	b.WriteString(cfg.AppName)
	b.WriteString(" - ")
	msgid := printable(ev.Module, 32)
	if msgid == "" {
		msgid = "-"
	}
	b.WriteString(msgid)
	b.WriteString(" [")
	b.WriteString(cfg.SDID)
	params := [][2]string{
		{"id", ev.ID}, {"source", string(ev.Source)}, {"rule", ev.Rule.ID}, {"title", ev.Rule.Title},
		{"severity", strings.ToLower(ev.Severity.String())}, {"action", string(ev.Action)}, {"tactic", ev.Tactic}, {"technique", ev.Technique},
		{"host", ev.Host}, {"node", ev.Node}, {"cluster", ev.Cluster}, {"namespace", ev.Namespace}, {"pod", ev.Pod},
	}
	if ev.Count > 1 {
		params = append(params, [2]string{"count", strconv.Itoa(ev.Count)})
	}
	if n := ev.Network; n != nil {
		params = append(params, [2]string{"src", n.SrcAddr})
		if n.SrcPort > 0 {
			params = append(params, [2]string{"srcPort", strconv.Itoa(n.SrcPort)})
		}
	}
	if p := ev.Process; p != nil {
		params = append(params, [2]string{"pid", strconv.Itoa(p.PID)}, [2]string{"comm", p.Comm})
	}
	if f := ev.File; f != nil {
		params = append(params, [2]string{"file", f.Path})
	}
	keys := make([]string, 0, len(ev.Details))
	for k := range ev.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		params = append(params, [2]string{k, ev.Details[k]})
	}
	for _, p := range params {
		name := sdName(p[0])
		if p[1] == "" || name == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(escapeParam(cutUTF8(p[1], 1024)))
		b.WriteByte('"')
	}
	b.WriteString("] \ufeff")
	b.WriteString(strings.ToValidUTF8(cutUTF8(ev.Message, 8192), "\uFFFD"))
	return b.String()
}

// sdName keeps the characters RFC 5424 allows in a PARAM-NAME (printable US-ASCII except = SP ]
// "), at most 32.
func sdName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 32; i++ {
		c := s[i]
		if c > 32 && c < 127 && c != '=' && c != ']' && c != '"' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapeParam escapes a PARAM-VALUE: '"', '\' and ']' get a backslash; invalid UTF-8 is
// replaced.
func escapeParam(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, "\"\\]") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '"' || r == '\\' || r == ']' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printable keeps the printable US-ASCII of s (HOSTNAME, MSGID), at most n bytes.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if s[i] > 32 && s[i] < 127 {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func validName(s string, n int) bool {
	return s != "" && len(s) <= n && printable(s, n) == s
}

func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
