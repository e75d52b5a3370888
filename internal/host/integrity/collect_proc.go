package integrity

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// PortCollector records the listening sockets of the reader's network
// namespace (the host's for an agent on the host network): TCP sockets in
// LISTEN and unconnected UDP sockets, from /proc/net/{tcp,tcp6,udp,udp6},
// with the processes owning them found through /proc/<pid>/fd. Keys are
// "<proto>/<address>:<port>" ("tcp/127.0.0.1:8080", "tcp6/[::]:22").
// Attributes: proto, address, port, uid, process (comm), exe; volatile:
// pid, inode.
type PortCollector struct{}

var _ Collector = PortCollector{}

func (PortCollector) Name() string       { return "ports" }
func (PortCollector) Kind() Kind         { return KindPort }
func (PortCollector) Triggers() []string { return nil }
func (PortCollector) Volatile() []string { return []string{"pid", "inode"} }

// socket is one line of /proc/net/{tcp,udp}[6].
type socket struct {
	proto string
	addr  netip.AddrPort
	uid   string
	inode string
}

func (PortCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	var socks []socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := readSystemFile(env.Proc + "/net/" + proto)
		if err != nil {
			return nil, fmt.Errorf("ports: %w", err)
		}
		ss, err := ParseProcNet(b, proto)
		if err != nil {
			return nil, fmt.Errorf("ports: /proc/net/%s: %w", proto, err)
		}
		socks = append(socks, ss...)
	}
	inodes := make(map[string]bool, len(socks))
	for _, s := range socks {
		inodes[s.inode] = true
	}
	owners := socketOwners(ctx, env.Proc, inodes)
	byKey := map[string]*Object{}
	var keys []string
	for _, s := range socks {
		key := s.proto + "/" + s.addr.String()
		o, ok := byKey[key]
		if !ok {
			if len(byKey) >= maxObjects {
				break
			}
			o = &Object{Kind: KindPort, Key: key, Attrs: map[string]string{
				"proto": s.proto, "address": s.addr.Addr().String(), "port": strconv.Itoa(int(s.addr.Port())), "uid": s.uid,
			}}
			byKey[key] = o
			keys = append(keys, key)
		}
		// SO_REUSEPORT: several sockets on one address; list every owner.
		addList(o.Attrs, "inode", s.inode)
		if ow, ok := owners[s.inode]; ok {
			addList(o.Attrs, "pid", ow.pid)
			addList(o.Attrs, "process", ow.comm)
			addList(o.Attrs, "exe", ow.exe)
		}
	}
	slices.Sort(keys)
	out := make([]Object, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out, nil
}

// addList adds v to the sorted, comma-separated set in a[k].
func addList(a map[string]string, k, v string) {
	if v == "" {
		return
	}
	var vs []string
	if a[k] != "" {
		vs = strings.Split(a[k], ",")
	}
	if slices.Contains(vs, v) {
		return
	}
	vs = append(vs, v)
	slices.Sort(vs)
	a[k] = truncate(strings.Join(vs, ","))
}

// TCP states of include/net/tcp_states.h.
const (
	tcpListen = "0A"
	tcpClose  = "07" // an unconnected UDP socket shows as CLOSE
)

// ParseProcNet parses /proc/net/{tcp,tcp6,udp,udp6} and returns the
// listening sockets: TCP in LISTEN, UDP bound and unconnected.
func ParseProcNet(b []byte, proto string) ([]socket, error) {
	var out []socket
	var bad error
	first := true
	lines(b, func(n int, l string) {
		if first { // header
			first = false
			return
		}
		f := strings.Fields(l)
		if len(f) < 10 || bad != nil {
			if bad == nil {
				bad = fmt.Errorf("line %d: %d fields", n, len(f))
			}
			return
		}
		local, err := parseHexAddr(f[1])
		if err != nil {
			bad = fmt.Errorf("line %d: local address: %w", n, err)
			return
		}
		remote, err := parseHexAddr(f[2])
		if err != nil {
			bad = fmt.Errorf("line %d: remote address: %w", n, err)
			return
		}
		listening := false
		if strings.HasPrefix(proto, "tcp") {
			listening = f[3] == tcpListen
		} else {
			listening = f[3] == tcpClose && remote.Port() == 0 && remote.Addr().IsUnspecified()
		}
		if listening && len(out) < maxObjects {
			out = append(out, socket{proto: proto, addr: local, uid: f[7], inode: f[9]})
		}
	})
	return out, bad
}

// parseHexAddr reads "0100007F:1F90" (IPv4, the 32-bit word in host byte
// order) or 32 hex digits of IPv6 (four such words) and a port in hex.
func parseHexAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q has no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", p, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q is not 8 or 32 hex digits", h)
	}
	// Each 32-bit word is printed as a host-order integer: swap to network order.
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

type owner struct{ pid, comm, exe string }

// socketOwners maps socket inodes to a process holding them, reading
// /proc/<pid>/fd links ("socket:[12345]"). Processes that vanish or that
// this process may not inspect are skipped.
func socketOwners(ctx context.Context, proc string, want map[string]bool) map[string]owner {
	out := map[string]owner{}
	if len(want) == 0 {
		return out
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if ctx.Err() != nil || len(out) == len(want) {
			break
		}
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		fdDir := proc + "/" + pid + "/fd"
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(fdDir + "/" + fd.Name())
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			ino := strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")
			if !want[ino] {
				continue
			}
			if _, done := out[ino]; done {
				continue
			}
			ow := owner{pid: pid}
			if c, err := os.ReadFile(proc + "/" + pid + "/comm"); err == nil {
				ow.comm = SafeText(strings.TrimSpace(string(c)))
			}
			if x, err := os.Readlink(proc + "/" + pid + "/exe"); err == nil {
				ow.exe = SafeText(x)
			}
			out[ino] = ow
		}
	}
	return out
}

// ModuleCollector records the loaded kernel modules of /proc/modules.
// Attributes: size, deps (sorted), taint (the flags in parentheses, such
// as "OE" for an out-of-tree unsigned module); volatile: refcount, state,
// address.
type ModuleCollector struct{}

var _ Collector = ModuleCollector{}

func (ModuleCollector) Name() string       { return "modules" }
func (ModuleCollector) Kind() Kind         { return KindModule }
func (ModuleCollector) Triggers() []string { return nil }
func (ModuleCollector) Volatile() []string { return []string{"refcount", "state", "address"} }

func (ModuleCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	b, err := readSystemFile(env.Proc + "/modules")
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	return ParseModules(b)
}

// ParseModules parses /proc/modules: "name size refcount deps state
// address [(taint)]", deps "-" or "a,b,".
func ParseModules(b []byte) ([]Object, error) {
	var out []Object
	var bad error
	seen := map[string]bool{}
	lines(b, func(n int, l string) {
		f := strings.Fields(l)
		if bad != nil {
			return
		}
		if len(f) < 6 {
			bad = fmt.Errorf("/proc/modules line %d: %d fields", n, len(f))
			return
		}
		if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
			bad = fmt.Errorf("/proc/modules line %d: size %q", n, f[1])
			return
		}
		var deps []string
		for _, d := range strings.Split(f[3], ",") {
			if d != "" && d != "-" {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		a := map[string]string{
			"size": f[1], "refcount": SafeText(f[2]), "deps": SafeText(strings.Join(deps, ",")),
			"state": SafeText(f[4]), "address": SafeText(f[5]),
		}
		if len(f) > 6 {
			a["taint"] = SafeText(strings.Trim(strings.Join(f[6:], ""), "()"))
		}
		for k, v := range a {
			a[k] = truncate(v)
		}
		if len(out) < maxObjects {
			out = append(out, Object{Kind: KindModule, Key: uniqueKey(seen, truncate(SafeText(f[0]))), Attrs: a})
		}
	})
	return out, bad
}
