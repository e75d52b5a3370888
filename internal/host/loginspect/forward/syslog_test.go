package forward

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mamori/internal/host/loginspect/decode"
	"mamori/internal/model"
)

func testEvent(i int) model.Event {
	return model.Event{
		ID: "0123456789abcdef0123456789abcd" + strconv.Itoa(10+i), Time: time.Date(2026, 12, 6, 8, 0, i, 0, time.UTC),
		Source: model.SourceHost, Module: "loginspect", Host: "node1",
		Rule:   model.RuleRef{ID: "ssh-brute-force", Title: "SSH brute force"},
		Tactic: "TA0006", Technique: "T1110.001", Severity: model.SeverityHigh, Action: model.ActionLog,
		Message: "SSH brute force from 203.0.113.5: 5 failures (users [root, \"a]b\"])",
		Network: &model.NetworkRef{SrcAddr: "203.0.113.5", SrcPort: 4000},
		Process: &model.Process{PID: 77, Comm: "sshd"},
		Count:   5,
		Details: map[string]string{"threshold.key": `src.ip=203.0.113.5`, "user.name": `a"b\c]d`},
	}
}

// parse reads a message back with the log inspection's own RFC 5424 decoder.
func parse(t *testing.T, msg string) decode.Record {
	t.Helper()
	var r decode.Record
	r.Reset()
	if err := (&decode.Syslog{}).Decode([]byte(msg), "", &r); err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	return r
}

func checkMessage(t *testing.T, msg string, i int) {
	t.Helper()
	r := parse(t, msg)
	ev := testEvent(i)
	if r.Format != "rfc5424" || r.Facility != DefaultFacility || r.Severity != 3 || r.Host != "node1" || r.Program != "mamori" ||
		r.Message != ev.Message || !r.Time.Equal(ev.Time) {
		t.Fatalf("%q -> %+v", msg, r)
	}
	sd := "mamori@32473."
	for k, v := range map[string]string{"rule": "ssh-brute-force", "id": ev.ID, "severity": "high", "tactic": "TA0006",
		"technique": "T1110.001", "src": "203.0.113.5", "count": "5", "user.name": `a"b\c]d`, "threshold.key": "src.ip=203.0.113.5",
		"pid": "77", "comm": "sshd", "msgid": ""} {
		key := sd + k
		if k == "msgid" {
			key, v = "msgid", "loginspect"
		}
		if r.Fields[key] != v {
			t.Errorf("%s = %q, want %q (%v)", key, r.Fields[key], v, r.Fields)
		}
	}
}

func run(t *testing.T, cfg Config) (*Syslog, context.CancelFunc, chan error) {
	t.Helper()
	s, err := NewSyslog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return s, cancel, done
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, cancel, done := run(t, Config{Network: UDP, Address: pc.LocalAddr().String()})
	defer func() { cancel(); <-done }()
	for i := range 3 {
		s.Send(testEvent(i))
	}
	buf := make([]byte, 65536)
	for i := range 3 {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, string(buf[:n]), i)
	}
	// A long message is cut to the datagram size, on a UTF-8 boundary.
	ev := testEvent(0)
	ev.Message = strings.Repeat("é", 3000)
	s.Send(ev)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || n > DefaultUDPSize || !strings.HasSuffix(string(buf[:n]), "é") {
		t.Fatalf("%v %d", err, n)
	}
}

// tcpCollector accepts connections and splits octet-counted frames.
type tcpCollector struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
	conn []net.Conn
}

func collect(t *testing.T, ln net.Listener) *tcpCollector {
	c := &tcpCollector{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conn = append(c.conn, conn)
			c.mu.Unlock()
			go func() {
				br := bufio.NewReader(conn)
				for {
					lenStr, err := br.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSpace(lenStr))
					if err != nil {
						t.Errorf("frame length %q", lenStr)
						return
					}
					b := make([]byte, n)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					c.mu.Lock()
					c.msgs = append(c.msgs, string(b))
					c.mu.Unlock()
				}
			}()
		}
	}()
	return c
}

func (c *tcpCollector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *tcpCollector) dropConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conn {
		conn.Close()
	}
	c.conn = nil
}

func TestTCPAndReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	col := collect(t, ln)
	s, cancel, done := run(t, Config{Network: TCP, Address: ln.Addr().String()})
	for i := range 3 {
		s.Send(testEvent(i))
	}
	for i, m := range col.wait(t, 3) {
		checkMessage(t, m, i)
	}
	// The collector drops the connection: later events arrive over a new one. (A message
	// written into a connection the peer already closed can be lost: TCP syslog has no
	// acknowledgement; the write error that follows makes the forwarder reconnect.)
	col.dropConns()
	deadline := time.Now().Add(15 * time.Second)
	for i := 3; ; i++ {
		s.Send(testEvent(i % 50))
		time.Sleep(20 * time.Millisecond)
		col.mu.Lock()
		n, conns := len(col.msgs), len(col.conn)
		col.mu.Unlock()
		if conns > 0 && n > 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect: %d messages, stats %+v", n, s.Stats())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Reconnects == 0 || st.Sent < 4 {
		t.Fatalf("stats %+v", st)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	col := collect(t, ln)
	s, cancel, done := run(t, Config{Network: TLS, Address: ln.Addr().String(), TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	defer func() { cancel(); <-done }()
	s.Send(testEvent(0))
	checkMessage(t, col.wait(t, 1)[0], 0)
}

func TestTLSRefusesUnknownCollector(t *testing.T) {
	cert, _ := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	s, cancel, done := run(t, Config{Network: TLS, Address: ln.Addr().String()}) // system roots only
	s.Send(testEvent(0))
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Errors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no error for an untrusted collector")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if st := s.Stats(); st.Sent != 0 || st.Dropped != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestQueueBound(t *testing.T) {
	s, err := NewSyslog(Config{Network: TCP, Address: "127.0.0.1:1", Queue: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		ok := s.Send(testEvent(i))
		if ok != (i < 3) {
			t.Fatalf("send %d: %v", i, ok)
		}
	}
	if st := s.Stats(); st.Dropped != 2 || st.Queued != 3 {
		t.Fatalf("%+v", st)
	}
	if ev, _ := s.peek(); ev.ID != testEvent(2).ID {
		t.Fatalf("oldest kept %s", ev.ID)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Network: "http", Address: "127.0.0.1:514"},
		{Network: UDP, Address: "nohostport"},
		{Network: UDP, Address: "127.0.0.1:514", AppName: "has space"},
		{Network: UDP, Address: "127.0.0.1:514", Facility: 24},
		{Network: UDP, Address: "127.0.0.1:514", UDPSize: 100},
		{Network: UDP, Address: "127.0.0.1:514", SDID: strings.Repeat("x", 33)},
	} {
		if _, err := NewSyslog(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestFormatHostile(t *testing.T) {
	ev := testEvent(0)
	ev.Host = "evil host\n<13>1 forged"
	ev.Message = "line\nbreak \xff"
	ev.Details = map[string]string{"a b=c]\"": "x", "k": "\xff]"}
	msg := Format(ev, Config{Facility: 4})
	r := parse(t, msg)
	if r.Host != "evilhost<13>1forged" || r.Fields["mamori@32473.abc"] != "x" || r.Fields["mamori@32473.k"] != "\uFFFD]" {
		t.Fatalf("%q -> %+v", msg, r)
	}
}
