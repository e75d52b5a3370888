package firewall

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Chain names inside mamori's table.
const (
	ChainInput  = "input"
	ChainOutput = "output"
	// MarkerChain is a regular (unhooked) empty chain that marks a table as
	// created by mamori. A table of mamori's name without it is someone
	// else's and is never touched.
	MarkerChain = "managed_by_mamori"
	// CommentPrefix starts the comment of every rule mamori writes.
	CommentPrefix = "mamori:"
)

// chainPlan is one chain of the table to build.
type chainPlan struct {
	name   string
	hook   *nftables.ChainHook // nil: regular chain
	policy nftables.ChainPolicy
	rules  []rulePlan
}

// rulePlan is one nftables rule.
type rulePlan struct {
	exprs    []expr.Any
	userData []byte
}

// compile turns a validated ruleset into the chains of the table. It is a
// pure function of its input.
func compile(rs Ruleset, rules []parsedRule) []chainPlan {
	in := chainPlan{name: ChainInput, hook: nftables.ChainHookInput, policy: policyOf(rs.InputPolicy)}
	out := chainPlan{name: ChainOutput, hook: nftables.ChainHookOutput, policy: policyOf(rs.OutputPolicy)}
	if rs.Established {
		for _, c := range []*chainPlan{&in, &out} {
			c.rules = append(c.rules,
				rulePlan{exprs: ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, verdict(expr.VerdictAccept)), userData: comment("established")},
				rulePlan{exprs: ctState(expr.CtStateBitINVALID, verdict(expr.VerdictDrop)), userData: comment("invalid")},
			)
		}
	}
	for _, r := range rules {
		r.logGroup = rs.LogGroup
		c := &in
		if r.dir == Out {
			c = &out
		}
		c.rules = append(c.rules, expand(r)...)
	}
	if !rs.BlockLoopback {
		in.rules = append(in.rules, rulePlan{exprs: append(ifName(unix.NFT_META_IIFNAME, "lo", false), verdict(expr.VerdictAccept)...), userData: comment("loopback")})
		out.rules = append(out.rules, rulePlan{exprs: append(ifName(unix.NFT_META_OIFNAME, "lo", false), verdict(expr.VerdictAccept)...), userData: comment("loopback")})
	}
	return []chainPlan{{name: MarkerChain}, in, out}
}

func policyOf(a Action) nftables.ChainPolicy {
	if a == Drop {
		return nftables.ChainPolicyDrop
	}
	return nftables.ChainPolicyAccept
}

func comment(name string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, CommentPrefix+name)
}

// expand returns the nftables rules of one rule: one per address family
// and combination of its address and port alternatives.
func expand(r parsedRule) []rulePlan {
	var out []rulePlan
	for _, fam := range families(r) {
		for _, src := range ofFamily(r.src, fam) {
			for _, dst := range ofFamily(r.dst, fam) {
				for _, sp := range orAny(r.sports) {
					for _, dp := range orAny(r.dports) {
						out = append(out, rulePlan{exprs: ruleExprs(r, fam, src, dst, sp, dp), userData: comment(r.name)})
					}
				}
			}
		}
	}
	return out
}

// ruleExprs builds the expressions of one nftables rule: matches in the
// order nft itself emits them (family, interface, MAC, addresses, protocol,
// ports, state), then counter, log and verdict.
func ruleExprs(r parsedRule, fam byte, src, dst netip.Prefix, sp, dp portRange) []expr.Any {
	var e []expr.Any
	if fam != 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}})
	}
	if r.iface != "" {
		key := expr.MetaKey(unix.NFT_META_IIFNAME)
		if r.dir == Out {
			key = unix.NFT_META_OIFNAME
		}
		e = append(e, ifName(key, r.iface, r.ifPrefix)...)
	}
	if r.mac != nil {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint16(nil, unix.ARPHRD_ETHER)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: append([]byte(nil), r.mac...)},
		)
	}
	if src.IsValid() {
		e = append(e, addrMatch(src, true)...)
	}
	if dst.IsValid() {
		e = append(e, addrMatch(dst, false)...)
	}
	if r.proto >= 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(r.proto)}})
	}
	if sp.lo != 0 {
		e = append(e, portMatch(0, sp)...)
	}
	if dp.lo != 0 {
		e = append(e, portMatch(2, dp)...)
	}
	if r.stateMask != 0 {
		e = append(e, ctMatch(r.stateMask)...)
	}
	e = append(e, &expr.Counter{})
	if r.log {
		l := &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(LogPrefix + r.name + ": ")}
		if r.logGroup != 0 {
			// To the NFLOG group the agent reads (ListenLog), instead of
			// the kernel log.
			l.Key |= 1 << unix.NFTA_LOG_GROUP
			l.Group = r.logGroup
		}
		e = append(e, l)
	}
	switch r.action {
	case Accept:
		e = append(e, verdict(expr.VerdictAccept)...)
	case Drop:
		e = append(e, verdict(expr.VerdictDrop)...)
	case Reject:
		if r.proto == unix.IPPROTO_TCP {
			e = append(e, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		} else {
			e = append(e, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})
		}
	}
	return e
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// ifName matches the interface name: the whole NUL-padded IFNAMSIZ name,
// or its first bytes for a prefix, as nft does for "eth*".
func ifName(key expr.MetaKey, name string, prefix bool) []expr.Any {
	data := []byte(name)
	if !prefix {
		data = make([]byte, unix.IFNAMSIZ)
		copy(data, name)
	}
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}}
}

// addrMatch loads the source or destination address and compares it with
// the prefix, masking the host bits first when it is not a single address.
func addrMatch(p netip.Prefix, source bool) []expr.Any {
	var off, n uint32 = 16, 4 // IPv4 daddr
	if source {
		off = 12
	}
	if p.Addr().Is6() {
		off, n = 24, 16
		if source {
			off = 8
		}
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// portMatch loads the port at transport offset off (0 source, 2
// destination) and compares it; ranges compare both ends in network byte
// order, which orders like the numbers.
func portMatch(off uint32, r portRange) []expr.Any {
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}}
	if r.lo == r.hi {
		return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.lo)})
	}
	return append(e,
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.lo)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.hi)},
	)
}

// ctMatch matches when the connection state is one of mask's bits.
func ctMatch(mask uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func ctState(mask uint32, then []expr.Any) []expr.Any {
	return append(ctMatch(mask), then...)
}
