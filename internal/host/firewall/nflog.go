package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// LogPrefix starts the log prefix of every logging rule: "mamori <rule>: ".
const LogPrefix = "mamori "

// DefaultLogGroup is the NFLOG group the agent reads mamori's logging
// rules from, when its settings name none (one reader per group and
// network namespace: another program bound to it makes ListenLog fail).
const DefaultLogGroup = 2704

// LogRecord is one packet a logging rule of mamori's table sent to its
// NFLOG group: what the log-mode ruleset would have dropped, or what a
// rule with log: true saw.
type LogRecord struct {
	// Rule is the rule's name as the prefix carries it ("policy-in" for
	// the logging form of a drop policy, hostsettings.LogOnly).
	Rule string
	Time time.Time
	// InDev and OutDev are interface indexes (0: none).
	InDev, OutDev uint32
	// Protocol is the IP protocol number (6 TCP, 17 UDP ...).
	Protocol uint8
	Src, Dst netip.Addr
	// SrcPort and DstPort for TCP, UDP, SCTP and UDP-Lite (0 otherwise).
	SrcPort, DstPort uint16
	// Length is the packet's length as its IP header says.
	Length int
}

// logSnaplen is how much of each packet the kernel copies: the IPv6
// header (40 bytes) and the ports that follow.
const logSnaplen = 64

// logReadBuffer is the socket's receive buffer: a burst of records
// waits there for the reader (about 30,000 records of a 64-byte snap)
// instead of being lost as an overrun.
const logReadBuffer = 4 << 20

// setReadBuffer sets the socket's receive buffer beyond rmem_max where the
// process may (SO_RCVBUFFORCE, CAP_NET_ADMIN, which the firewall needs
// anyway), else up to rmem_max. A failure only leaves the default.
func setReadBuffer(c *netlink.Conn, n int) {
	if rc, err := c.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(n)
}

// logFlush is the kernel's longest wait before it sends a batch of records
// (1/100 s).
const logFlush = 10

// LogStats count what a log listener received.
type LogStats struct {
	Records  uint64 `json:"records"`
	Foreign  uint64 `json:"foreign"`  // prefix not mamori's (another rule using the group)
	Bad      uint64 `json:"bad"`      // payload not an IPv4 or IPv6 packet
	Overruns uint64 `json:"overruns"` // the socket's buffer overflowed: records lost in the kernel
	Errors   uint64 `json:"errors"`   // other receive errors
	// Stopped: the listener gave up after repeated receive errors.
	Stopped bool `json:"stopped,omitempty"`
}

// LogListener reads an NFLOG group.
type LogListener struct {
	nf                           *nflog.Nflog
	ctx                          context.Context
	cancel                       context.CancelFunc
	fn                           func(LogRecord)
	closeOnce                    sync.Once
	records, foreign, bad, overr atomic.Uint64
	errs, consecutive            atomic.Uint64
	stopped                      atomic.Bool
}

// maxReceiveErrors consecutive receive errors (other than overruns) stop
// the listener.
const maxReceiveErrors = 100

// handle is the per-record path: from the listener's goroutine, one call
// per record of the group.
func (l *LogListener) handle(a nflog.Attribute) int {
	if l.ctx.Err() != nil {
		return 1 // closed: fn is not called any more
	}
	l.consecutive.Store(0)
	rec, ok, err := parseLog(a)
	switch {
	case err != nil:
		l.bad.Add(1)
	case !ok:
		l.foreign.Add(1)
	default:
		l.records.Add(1)
		l.fn(rec)
	}
	return 0
}

// Close stops the listener and releases the group (synchronously: a new
// listener can bind it as soon as Close returns). Ending the context
// ListenLog was given does the same, in the background.
func (l *LogListener) Close() {
	l.closeOnce.Do(func() {
		l.cancel()
		l.nf.Close()
	})
}

// Stats returns the listener's counters.
func (l *LogListener) Stats() LogStats {
	return LogStats{Records: l.records.Load(), Foreign: l.foreign.Load(), Bad: l.bad.Load(), Overruns: l.overr.Load(),
		Errors: l.errs.Load(), Stopped: l.stopped.Load()}
}

// ListenLog reads the NFLOG group in the manager's network namespace and
// calls fn with each record of mamori's logging rules, from the
// listener's goroutine, until ctx ends (then the listener unbinds and its
// socket is closed). It returns once the group is bound: an error when
// the kernel refuses (another reader holds the group, no nfnetlink_log).
func (m *Manager) ListenLog(ctx context.Context, group uint16, fn func(LogRecord)) (*LogListener, error) {
	if group == 0 {
		return nil, errors.New("firewall: log listener: group 0 is the kernel log, not an NFLOG group")
	}
	// Timeout: the kernel sends a batch at the latest 0.1 s after its
	// first record (its default is 1 s); under load batches fill first.
	cfg := nflog.Config{Group: group, Copymode: nflog.CopyPacket, Bufsize: logSnaplen, Timeout: logFlush}
	if m.o.netns >= 0 {
		cfg.NetNS = m.o.netns
	}
	nf, err := nflog.Open(&cfg)
	if err != nil {
		return nil, fmt.Errorf("firewall: log listener: open NFLOG: %w", err)
	}
	setReadBuffer(nf.Con, logReadBuffer)
	ctx, cancel := context.WithCancel(ctx)
	l := &LogListener{nf: nf, cancel: cancel, ctx: ctx, fn: fn}
	errfn := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var oe *netlink.OpError
		if errors.As(err, &oe) && errors.Is(oe.Err, unix.ENOBUFS) {
			l.overr.Add(1)
			return 0
		}
		l.errs.Add(1)
		if n := l.consecutive.Add(1); n >= maxReceiveErrors {
			// A socket that only fails: stop rather than spin.
			m.o.log.Error("firewall: log listener: stopped after repeated receive errors", "group", group, "errors", n, "error", err)
			l.stopped.Store(true)
			return 1
		}
		m.o.log.Warn("firewall: log listener: receive failed", "group", group, "error", err)
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, l.handle, errfn); err != nil {
		cancel()
		nf.Close()
		if msg := err.Error(); strings.Contains(msg, unix.EPERM.Error()) || strings.Contains(msg, unix.EBUSY.Error()) {
			// go-nflog formats the kernel's error with %v: the errno is
			// only in the text. The kernel answers EPERM to a bind of a
			// group another socket holds (and without CAP_NET_ADMIN).
			return nil, fmt.Errorf("firewall: log listener: NFLOG group %d refused: another reader holds it in this network namespace "+
				"(set firewall.logGroup to a free group), or no CAP_NET_ADMIN: %w", group, err)
		}
		return nil, fmt.Errorf("firewall: log listener: bind NFLOG group %d: %w", group, err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	return l, nil
}

func parseLog(a nflog.Attribute) (LogRecord, bool, error) {
	if a.Prefix == nil || !strings.HasPrefix(*a.Prefix, LogPrefix) {
		return LogRecord{}, false, nil
	}
	var payload []byte
	if a.Payload != nil {
		payload = *a.Payload
	}
	rec, err := ParseLogPacket(strings.TrimSuffix(strings.TrimPrefix(*a.Prefix, LogPrefix), ": "), payload)
	if err != nil {
		return LogRecord{}, true, err
	}
	rec.Time = time.Now()
	if a.Timestamp != nil {
		rec.Time = *a.Timestamp
	}
	if a.InDev != nil {
		rec.InDev = *a.InDev
	}
	if a.OutDev != nil {
		rec.OutDev = *a.OutDev
	}
	return rec, true, nil
}

// ParseLogPacket reads the start of a logged packet (its IP header and
// the ports after it): never more than the bytes given, an error for a
// packet that is not IPv4 or IPv6 or is cut inside its IP header.
func ParseLogPacket(rule string, p []byte) (LogRecord, error) {
	rec := LogRecord{Rule: rule}
	if len(p) < 1 {
		return rec, errors.New("firewall: logged packet: empty")
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return rec, fmt.Errorf("firewall: logged packet: IPv4 header cut at %d bytes", len(p))
		}
		ihl := int(p[0]&0x0f) * 4
		if ihl < 20 {
			return rec, fmt.Errorf("firewall: logged packet: IPv4 header length %d", ihl)
		}
		rec.Length = int(binary.BigEndian.Uint16(p[2:4]))
		rec.Protocol = p[9]
		rec.Src = netip.AddrFrom4([4]byte(p[12:16]))
		rec.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		// Ports only in the first fragment.
		if binary.BigEndian.Uint16(p[6:8])&0x1fff == 0 && len(p) >= ihl {
			l4 = p[ihl:]
		}
	case 6:
		if len(p) < 40 {
			return rec, fmt.Errorf("firewall: logged packet: IPv6 header cut at %d bytes", len(p))
		}
		rec.Length = 40 + int(binary.BigEndian.Uint16(p[4:6]))
		rec.Protocol = p[6] // the next header; extension headers are not walked
		rec.Src = netip.AddrFrom16([16]byte(p[8:24])).Unmap()
		rec.Dst = netip.AddrFrom16([16]byte(p[24:40])).Unmap()
		l4 = p[40:]
	default:
		return rec, fmt.Errorf("firewall: logged packet: IP version %d", p[0]>>4)
	}
	if hasPorts(int(rec.Protocol)) && len(l4) >= 4 {
		rec.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		rec.DstPort = binary.BigEndian.Uint16(l4[2:4])
	}
	return rec, nil
}
