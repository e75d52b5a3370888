// Package firewall is the host firewall engine of the node agent (issue
// 12, item 5): host rules (interface, IP/CIDR, MAC, ports, protocol,
// direction, connection state, action, log) compiled to nftables and
// applied over netlink (github.com/google/nftables; nothing shells out to
// nft) in a table of mamori's own, "inet mamori" by default.
//
// Guarantees:
//   - Only mamori's table is ever read, written or deleted. A table of that
//     name that mamori did not create (it lacks the marker chain
//     "managed_by_mamori") is refused with ErrForeignTable.
//   - An apply is one netlink batch: the kernel switches from the old
//     table to the new one in one transaction, or rejects the batch and
//     keeps the old one.
//   - SafeApply keeps the previous table (a kernel snapshot) and restores it
//     when the caller's confirmation (the agent reaching its server) does
//     not succeed within a deadline: a bad ruleset cannot lock the agent
//     out for longer than that deadline.
//
// nftables semantics to keep in mind (docs/host-firewall.md): every base
// chain hooked at the same point sees the packet; an accept in mamori's
// table does not override a drop in another table, so mamori's rules can
// only narrow what the host's other firewall lets through.
package firewall

import "errors"

// Sentinel errors. Validation errors wrap ErrInvalid.
var (
	// ErrInvalid: a rule or ruleset is malformed (bad CIDR, port range,
	// unknown protocol ...). The message names the rule and field.
	ErrInvalid = errors.New("firewall: invalid ruleset")
	// ErrForeignTable: a table with mamori's name exists but mamori did not
	// create it; it is left untouched.
	ErrForeignTable = errors.New("firewall: table exists and is not managed by mamori")
	// ErrRolledBack: SafeApply restored the previous table because the
	// confirmation failed or timed out.
	ErrRolledBack = errors.New("firewall: change rolled back")
)

// Direction is the traffic direction a rule applies to.
type Direction string

const (
	// In: packets addressed to this host (the input hook).
	In Direction = "in"
	// Out: packets this host sends (the output hook).
	Out Direction = "out"
)

// Action is what happens to a matching packet.
type Action string

const (
	Accept Action = "accept"
	Drop   Action = "drop"
	// Reject drops and answers: a TCP reset for TCP rules, an ICMP(v6)
	// port unreachable otherwise.
	Reject Action = "reject"
)

// Connection tracking states a rule can match.
const (
	StateNew         = "new"
	StateEstablished = "established"
	StateRelated     = "related"
	StateInvalid     = "invalid"
	StateUntracked   = "untracked"
)

// Ruleset is the whole host firewall: what SafeApply and Apply install.
// The zero value is valid and installs empty chains that accept everything.
type Ruleset struct {
	// InputPolicy and OutputPolicy are the verdicts for packets no rule
	// decided: "accept" (the default when empty) or "drop".
	InputPolicy  Action `json:"inputPolicy,omitempty"`
	OutputPolicy Action `json:"outputPolicy,omitempty"`
	// Established makes the ruleset stateful: packets of established and
	// related connections are accepted before any rule, and invalid ones
	// dropped, in both directions. With a drop policy this is what lets
	// replies to the host's own connections back in.
	Established bool `json:"established,omitempty"`
	// BlockLoopback turns off the loopback allowance. By default traffic on
	// "lo" that no rule decided is accepted even under a drop policy (local
	// services talk over it); rules can still drop loopback traffic
	// explicitly, since the allowance comes after them.
	BlockLoopback bool `json:"blockLoopback,omitempty"`
	// LogGroup sends the packets of logging rules (Log) to this NFLOG
	// group, where ListenLog reads them, instead of the kernel log; 0:
	// the kernel log (prefix "mamori <rule>: ").
	LogGroup uint16 `json:"logGroup,omitempty"`
	// Rules are evaluated in order; the first whose match is complete and
	// whose action is a verdict decides.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is one host firewall rule. Every match field is optional; an empty
// field matches anything. Lists are alternatives (any of them matches).
type Rule struct {
	// Name identifies the rule in the table (as an nft comment
	// "mamori:<name>") and in log prefixes: 1-64 of [A-Za-z0-9._-], unique.
	Name      string    `json:"name"`
	Direction Direction `json:"direction"`
	Action    Action    `json:"action"`
	// Protocol: tcp, udp, sctp, udplite, icmp, icmpv6, or an IP protocol
	// number 0-255. Empty or "any" matches every protocol.
	Protocol string `json:"protocol,omitempty"`
	// Interface is the input interface for "in" rules and the output
	// interface for "out" rules. A trailing "*" matches a prefix ("veth*").
	Interface string `json:"interface,omitempty"`
	// Sources and Destinations are IP addresses or CIDR prefixes, IPv4 or
	// IPv6 ("10.0.0.0/8", "2001:db8::1").
	Sources      []string `json:"sources,omitempty"`
	Destinations []string `json:"destinations,omitempty"`
	// SourceMAC is an Ethernet address; only "in" rules can match it.
	SourceMAC string `json:"sourceMAC,omitempty"`
	// SourcePorts and DestinationPorts are ports ("22") or inclusive ranges
	// ("8000-8080"), 1-65535; they need Protocol tcp, udp, sctp or udplite.
	SourcePorts      []string `json:"sourcePorts,omitempty"`
	DestinationPorts []string `json:"destinationPorts,omitempty"`
	// State matches connection tracking states: new, established, related,
	// invalid, untracked.
	State []string `json:"state,omitempty"`
	// Log writes matching packets to the kernel log with the prefix
	// "mamori <name>: " before the action is taken.
	Log bool `json:"log,omitempty"`
}
