package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Limits, so that one ruleset from the server cannot build an unbounded
// table.
const (
	// MaxRules caps Ruleset.Rules.
	MaxRules = 1024
	// MaxListLen caps each list of one rule (addresses, ports, states).
	MaxListLen = 64
	// MaxExpansion caps the nftables rules one rule expands to. Address and
	// port lists are alternatives; each combination (source × destination ×
	// source port × destination port) is one nftables rule, because plain
	// rules snapshot and restore exactly (see snapshot.go) where sets would
	// need their own round trip.
	MaxExpansion = 256
	// MaxTableRules caps the nftables rules of a whole ruleset.
	MaxTableRules = 8192
	// maxNameLen: names go into log prefixes (at most 127 bytes in the
	// kernel) and comments.
	maxNameLen = 64
	// ifNameMax is IFNAMSIZ less the terminating NUL.
	ifNameMax = 15
)

// protocol numbers (IANA) of the names Protocol accepts.
var protocolNumbers = []struct {
	name string
	num  uint8
}{
	{"tcp", unix.IPPROTO_TCP},
	{"udp", unix.IPPROTO_UDP},
	{"sctp", unix.IPPROTO_SCTP},
	{"udplite", unix.IPPROTO_UDPLITE},
	{"icmp", unix.IPPROTO_ICMP},
	{"icmpv6", unix.IPPROTO_ICMPV6},
	{"ipv6-icmp", unix.IPPROTO_ICMPV6},
}

// portRange is an inclusive port range; lo == hi for one port.
type portRange struct{ lo, hi uint16 }

// parsedRule is a validated Rule in the form the compiler uses.
type parsedRule struct {
	logGroup  uint16 // Ruleset.LogGroup
	name      string
	dir       Direction
	action    Action
	proto     int // -1: any
	iface     string
	ifPrefix  bool // iface is a prefix ("veth*")
	src, dst  []netip.Prefix
	mac       net.HardwareAddr
	sports    []portRange
	dports    []portRange
	stateMask uint32 // 0: no state match
	log       bool
}

// ruleErrors collects every problem of a ruleset so the user sees them all
// at once.
type ruleErrors struct{ errs []error }

func (e *ruleErrors) add(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

func (e *ruleErrors) err() error { return errors.Join(e.errs...) }

// Validate checks a ruleset and returns every problem found, each wrapping
// ErrInvalid and naming the rule and field ("rule \"ssh\": sources[0]
// \"10.0.0.1/8\": host bits set (network is 10.0.0.0/8)").
func Validate(rs Ruleset) error {
	_, err := parse(rs)
	return err
}

func parse(rs Ruleset) ([]parsedRule, error) {
	var e ruleErrors
	for _, p := range []struct {
		field string
		a     Action
	}{{"inputPolicy", rs.InputPolicy}, {"outputPolicy", rs.OutputPolicy}} {
		switch p.a {
		case "", Accept, Drop:
		default:
			e.add("%s %q: a chain policy is accept or drop", p.field, p.a)
		}
	}
	if len(rs.Rules) > MaxRules {
		e.add("%d rules (at most %d)", len(rs.Rules), MaxRules)
		return nil, e.err()
	}
	seen := make(map[string]int, len(rs.Rules))
	out := make([]parsedRule, 0, len(rs.Rules))
	total := 0
	for i, r := range rs.Rules {
		label := fmt.Sprintf("rule %d %q", i, r.Name)
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			e.add("%s: name already used by rule %d", label, j)
		}
		seen[r.Name] = i
		p, n := parseRule(&e, label, r)
		total += n
		out = append(out, p)
	}
	if total > MaxTableRules {
		e.add("the ruleset expands to %d nftables rules (at most %d)", total, MaxTableRules)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseRule validates one rule and returns it parsed with the number of
// nftables rules it expands to.
func parseRule(e *ruleErrors, label string, r Rule) (parsedRule, int) {
	p := parsedRule{name: r.Name, dir: r.Direction, action: r.Action, proto: -1, log: r.Log}
	before := len(e.errs)
	if !validName(r.Name) {
		e.add("%s: name must be 1-%d characters of A-Z a-z 0-9 . _ -", label, maxNameLen)
	}
	switch r.Direction {
	case In, Out:
	case "":
		e.add("%s: direction is missing (in or out)", label)
	default:
		e.add("%s: direction %q is not in or out", label, r.Direction)
	}
	switch r.Action {
	case Accept, Drop, Reject:
	case "":
		e.add("%s: action is missing (accept, drop or reject)", label)
	default:
		e.add("%s: action %q is not accept, drop or reject", label, r.Action)
	}
	if proto, ok := parseProtocol(r.Protocol); ok {
		p.proto = proto
	} else {
		e.add("%s: unknown protocol %q (want tcp, udp, sctp, udplite, icmp, icmpv6, any or a number 0-255)", label, r.Protocol)
	}
	if r.Interface != "" {
		name, prefix, err := parseInterface(r.Interface)
		if err != nil {
			e.add("%s: interface %q: %v", label, r.Interface, err)
		}
		p.iface, p.ifPrefix = name, prefix
	}
	p.src = parsePrefixes(e, label, "sources", r.Sources)
	p.dst = parsePrefixes(e, label, "destinations", r.Destinations)
	if r.SourceMAC != "" {
		mac, err := net.ParseMAC(r.SourceMAC)
		switch {
		case err != nil:
			e.add("%s: sourceMAC %q: not a MAC address", label, r.SourceMAC)
		case len(mac) != 6:
			e.add("%s: sourceMAC %q: only 6-byte Ethernet addresses can be matched", label, r.SourceMAC)
		case r.Direction == Out:
			e.add("%s: sourceMAC: only \"in\" rules can match a source MAC (outgoing packets have no link-layer header yet)", label)
		default:
			p.mac = mac
		}
	}
	p.sports = parsePorts(e, label, "sourcePorts", r.SourcePorts)
	p.dports = parsePorts(e, label, "destinationPorts", r.DestinationPorts)
	if (len(r.SourcePorts) > 0 || len(r.DestinationPorts) > 0) && !hasPorts(p.proto) {
		e.add("%s: ports need protocol tcp, udp, sctp or udplite (protocol is %q)", label, r.Protocol)
	}
	if len(r.State) > MaxListLen {
		e.add("%s: state has %d entries (at most %d)", label, len(r.State), MaxListLen)
	}
	for i, s := range r.State {
		bit, ok := stateBit(s)
		if !ok {
			e.add("%s: state[%d] %q is not new, established, related, invalid or untracked", label, i, s)
		}
		p.stateMask |= bit
	}
	// Contradictions that would make a rule silently match nothing.
	fam := families(p)
	if len(fam) == 0 {
		e.add("%s: sources are only %s and destinations only %s: the rule can never match", label, famName(p.src), famName(p.dst))
	}
	if p.proto == unix.IPPROTO_ICMP && !contains(fam, unix.NFPROTO_IPV4) && len(fam) > 0 {
		e.add("%s: protocol icmp with IPv6 addresses only can never match (use icmpv6)", label)
	}
	if p.proto == unix.IPPROTO_ICMPV6 && !contains(fam, unix.NFPROTO_IPV6) && len(fam) > 0 {
		e.add("%s: protocol icmpv6 with IPv4 addresses only can never match (use icmp)", label)
	}
	if len(e.errs) > before {
		return p, 0
	}
	n := expansion(p)
	if n > MaxExpansion {
		e.add("%s: expands to %d nftables rules (sources × destinations × source ports × destination ports, at most %d)", label, n, MaxExpansion)
	}
	return p, n
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// parseProtocol returns the IP protocol number, -1 for any.
func parseProtocol(s string) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "any" || s == "all" {
		return -1, true
	}
	for _, p := range protocolNumbers {
		if p.name == s {
			return int(p.num), true
		}
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// ProtocolName is the name rules use for IP protocol p (tcp, udp, sctp,
// udplite, icmp, icmpv6), else its number.
func ProtocolName(p uint8) string {
	for _, n := range protocolNumbers {
		if n.num == p {
			return n.name
		}
	}
	return strconv.Itoa(int(p))
}

func hasPorts(proto int) bool {
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_UDPLITE:
		return true
	}
	return false
}

func parseInterface(s string) (name string, prefix bool, err error) {
	name = s
	if strings.HasSuffix(name, "*") {
		name, prefix = strings.TrimSuffix(name, "*"), true
		if name == "" {
			return "", false, errors.New(`"*" alone matches every interface: leave the field empty instead`)
		}
	}
	if len(name) > ifNameMax {
		return "", false, fmt.Errorf("longer than %d bytes", ifNameMax)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c == '/' || c == ':' || c == '*' || c >= 0x7f {
			return "", false, fmt.Errorf("character %q is not allowed in an interface name", c)
		}
	}
	return name, prefix, nil
}

func parsePrefixes(e *ruleErrors, label, field string, in []string) []netip.Prefix {
	if len(in) > MaxListLen {
		e.add("%s: %s has %d entries (at most %d)", label, field, len(in), MaxListLen)
		return nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			e.add("%s: %s[%d] %q: %v", label, field, i, s, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("zoned addresses cannot be matched")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR prefix (want 10.0.0.0/8 or 2001:db8::/32)")
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, errors.New("IPv4-mapped IPv6 prefix: write the IPv4 prefix")
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("host bits set (network is %s)", m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePorts(e *ruleErrors, label, field string, in []string) []portRange {
	if len(in) > MaxListLen {
		e.add("%s: %s has %d entries (at most %d)", label, field, len(in), MaxListLen)
		return nil
	}
	out := make([]portRange, 0, len(in))
	for i, s := range in {
		r, err := parsePortRange(strings.TrimSpace(s))
		if err != nil {
			e.add("%s: %s[%d] %q: %v", label, field, i, s, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := parsePort(lo)
	if err != nil {
		return portRange{}, err
	}
	if !isRange {
		return portRange{l, l}, nil
	}
	h, err := parsePort(hi)
	if err != nil {
		return portRange{}, err
	}
	if l > h {
		return portRange{}, fmt.Errorf("range start %d is above its end %d", l, h)
	}
	return portRange{l, h}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, errors.New("not a port number or range (want 22 or 8000-8080)")
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", n)
	}
	return uint16(n), nil
}

func stateBit(s string) (uint32, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case StateNew:
		return expr.CtStateBitNEW, true
	case StateEstablished:
		return expr.CtStateBitESTABLISHED, true
	case StateRelated:
		return expr.CtStateBitRELATED, true
	case StateInvalid:
		return expr.CtStateBitINVALID, true
	case StateUntracked:
		return expr.CtStateBitUNTRACKED, true
	}
	return 0, false
}

// families returns the address families a rule can match: both when it
// names no address, else those its sources and destinations allow.
func families(p parsedRule) []byte {
	ok := func(list []netip.Prefix, is4 bool) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x.Addr().Is4() == is4 {
				return true
			}
		}
		return false
	}
	var out []byte
	if ok(p.src, true) && ok(p.dst, true) {
		out = append(out, unix.NFPROTO_IPV4)
	}
	if ok(p.src, false) && ok(p.dst, false) {
		out = append(out, unix.NFPROTO_IPV6)
	}
	if len(p.src) == 0 && len(p.dst) == 0 {
		return []byte{0} // no address match: one rule, any family
	}
	return out
}

func famName(list []netip.Prefix) string {
	if len(list) == 0 {
		return "any"
	}
	if list[0].Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func contains(fams []byte, f byte) bool {
	for _, x := range fams {
		if x == f || x == 0 {
			return true
		}
	}
	return false
}

// ofFamily returns the prefixes of list of family fam (all when fam is 0),
// or a single "no match" entry when list is empty.
func ofFamily(list []netip.Prefix, fam byte) []netip.Prefix {
	if len(list) == 0 {
		return []netip.Prefix{{}}
	}
	var out []netip.Prefix
	for _, p := range list {
		if fam == 0 || p.Addr().Is4() == (fam == unix.NFPROTO_IPV4) {
			out = append(out, p)
		}
	}
	return out
}

func orAny[T any](list []T) []T {
	if len(list) == 0 {
		var zero T
		return []T{zero}
	}
	return list
}

func expansion(p parsedRule) int {
	n := 0
	for _, f := range families(p) {
		n += len(ofFamily(p.src, f)) * len(ofFamily(p.dst, f)) * len(orAny(p.sports)) * len(orAny(p.dports))
	}
	return n
}
