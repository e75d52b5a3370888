package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"sigs.k8s.io/yaml"

	"mamori/internal/compliance/posture"
)

// maxProcs bounds the processes looked at (kubelet command line, socket
// owners).
const maxProcs = 8192

// readListening reads the listening TCP sockets and bound UDP sockets of
// netns/net (a /proc/PID directory), with their owning process where
// proc/<pid>/fd shows it. read is false, with a warning, when none of the
// socket tables could be read (no sockets shown is then not "none").
func readListening(ctx context.Context, proc, netns string, expected map[int]string, warn func(string, ...any)) (out []posture.Listener, read bool) {
	owners := socketOwners(ctx, proc)
	for _, f := range []struct{ file, proto string }{{"net/tcp", "tcp"}, {"net/tcp6", "tcp6"}, {"net/udp", "udp"}, {"net/udp6", "udp6"}} {
		b, err := os.ReadFile(filepath.Join(netns, f.file))
		if err != nil {
			if !os.IsNotExist(err) {
				warn("listening: %v", err)
			}
			continue
		}
		read = true
		for i, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if i == 0 || len(fs) < 10 {
				continue
			}
			// st 0A is LISTEN for TCP; 07 is an unconnected UDP socket.
			if (strings.HasPrefix(f.proto, "tcp") && fs[3] != "0A") || (strings.HasPrefix(f.proto, "udp") && fs[3] != "07") {
				continue
			}
			ip, port, ok := parseAddr(fs[1])
			if !ok {
				continue
			}
			l := posture.Listener{Proto: f.proto, Address: ip.String(), Port: port, Process: owners[fs[9]]}
			_, exp := expected[port]
			l.Expected = ip.IsLoopback() || exp
			out = append(out, l)
		}
	}
	if !read {
		warn("listening: no socket table under %s/net", netns)
	}
	return out, read
}

// parseAddr reads proc/net's "0100007F:1F90" (little-endian words).
func parseAddr(s string) (net.IP, int, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	return net.IP(raw), int(port), true
}

// socketOwners maps socket inodes to the command name of a process holding
// them.
func socketOwners(ctx context.Context, proc string) map[string]string {
	out := map[string]string{}
	pids, err := os.ReadDir(proc)
	if err != nil {
		return out
	}
	n := 0
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil || ctx.Err() != nil {
			continue
		}
		if n++; n > maxProcs {
			break
		}
		comm, err := os.ReadFile(filepath.Join(proc, p.Name(), "comm"))
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			t, err := os.Readlink(filepath.Join(proc, p.Name(), "fd", fd.Name()))
			if err == nil && strings.HasPrefix(t, "socket:[") {
				out[strings.TrimSuffix(strings.TrimPrefix(t, "socket:["), "]")] = strings.TrimSpace(string(comm))
			}
		}
	}
	return out
}

// kubeletConfig is the part of KubeletConfiguration (kubelet.config.k8s.io/v1beta1) read.
type kubeletConfig struct {
	Kind           string `json:"kind"`
	Authentication struct {
		Anonymous struct {
			Enabled *bool `json:"enabled"`
		} `json:"anonymous"`
		X509 struct {
			ClientCAFile string `json:"clientCAFile"`
		} `json:"x509"`
		Webhook struct {
			Enabled *bool `json:"enabled"`
		} `json:"webhook"`
	} `json:"authentication"`
	Authorization struct {
		Mode string `json:"mode"`
	} `json:"authorization"`
	ReadOnlyPort                   *int    `json:"readOnlyPort"`
	StreamingConnectionIdleTimeout *string `json:"streamingConnectionIdleTimeout"`
	MakeIPTablesUtilChains         *bool   `json:"makeIPTablesUtilChains"`
	TLSCertFile                    string  `json:"tlsCertFile"`
	TLSPrivateKeyFile              string  `json:"tlsPrivateKeyFile"`
	ServerTLSBootstrap             bool    `json:"serverTLSBootstrap"`
	RotateCertificates             *bool   `json:"rotateCertificates"`
}

// kubeletConfigPath finds the kubelet's --config: the option, the running
// kubelet's flag, or the kubeadm default.
func kubeletConfigPath(opts Options) string {
	if opts.KubeletConfig != "" {
		return opts.KubeletConfig
	}
	if opts.Proc != "" {
		if ents, err := os.ReadDir(opts.Proc); err == nil {
			for i, e := range ents {
				if i > maxProcs {
					break
				}
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				b, err := os.ReadFile(filepath.Join(opts.Proc, e.Name(), "cmdline"))
				if err != nil || len(b) == 0 {
					continue
				}
				args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
				if filepath.Base(args[0]) != "kubelet" {
					continue
				}
				for j, a := range args {
					if v, ok := strings.CutPrefix(a, "--config="); ok {
						return v
					}
					if a == "--config" && j+1 < len(args) {
						return args[j+1]
					}
				}
			}
		}
	}
	return "/var/lib/kubelet/config.yaml"
}

// readKubelet checks the kubelet's configuration file (CIS Kubernetes
// Benchmark v1.9 §4.1.9, 4.1.10, 4.2.1-4.2.6, 4.2.9, 4.2.10).
func readKubelet(opts Options, warn func(string, ...any)) ([]posture.Item, bool) {
	p := kubeletConfigPath(opts)
	b, fi, err := readFile(opts.Root, p)
	if err != nil {
		if !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
			warn("kubelet config %s: %v", p, err)
		}
		return nil, false
	}
	var c kubeletConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		warn("kubelet config %s: %v", p, err)
		return []posture.Item{{ID: "kubelet-config", Title: "kubelet configuration readable", Status: posture.Fail,
			Actual: err.Error(), Source: p, Controls: []string{"4.3.5"}}}, true
	}
	var items []posture.Item
	add := func(id, title string, ok bool, actual string, controls ...string) {
		st := posture.Fail
		if ok {
			st = posture.Pass
		}
		items = append(items, posture.Item{ID: id, Title: title, Status: st, Actual: actual, Source: p, Controls: controls})
	}
	perm := fi.Mode().Perm()
	add("CIS-K8s-4.1.9", "kubelet config file permissions 600 or more restrictive", perm&0o177 == 0, fmt.Sprintf("%04o", perm), "4.3.5")
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		add("CIS-K8s-4.1.10", "kubelet config file owned by root:root", st.Uid == 0 && st.Gid == 0, fmt.Sprintf("%d:%d", st.Uid, st.Gid), "4.3.5")
	}
	anon := c.Authentication.Anonymous.Enabled
	add("CIS-K8s-4.2.1", "kubelet anonymous-auth false", anon != nil && !*anon, "authentication.anonymous.enabled="+boolStr(anon, "unset (default true)"), "4.3.2")
	mode := c.Authorization.Mode
	add("CIS-K8s-4.2.2", "kubelet authorization-mode not AlwaysAllow", mode != "" && mode != "AlwaysAllow", "authorization.mode="+orUnset(mode, "unset (default AlwaysAllow)"), "4.3.2")
	add("CIS-K8s-4.2.3", "kubelet client-ca-file set", c.Authentication.X509.ClientCAFile != "", "authentication.x509.clientCAFile="+orUnset(c.Authentication.X509.ClientCAFile, "unset"), "4.3.2")
	ro := 0
	if c.ReadOnlyPort != nil {
		ro = *c.ReadOnlyPort
	}
	add("CIS-K8s-4.2.4", "kubelet read-only port disabled (0)", ro == 0, fmt.Sprintf("readOnlyPort=%d", ro), "4.3.2", "4.3.5")
	idle := "unset (default 4h)"
	if c.StreamingConnectionIdleTimeout != nil {
		idle = *c.StreamingConnectionIdleTimeout
	}
	add("CIS-K8s-4.2.5", "kubelet streaming-connection-idle-timeout not 0", idle != "0" && idle != "0s", "streamingConnectionIdleTimeout="+idle, "4.3.5")
	add("CIS-K8s-4.2.6", "kubelet make-iptables-util-chains true", c.MakeIPTablesUtilChains == nil || *c.MakeIPTablesUtilChains,
		"makeIPTablesUtilChains="+boolStr(c.MakeIPTablesUtilChains, "unset (default true)"), "4.3.5")
	tlsOK := (c.TLSCertFile != "" && c.TLSPrivateKeyFile != "") || c.ServerTLSBootstrap
	add("CIS-K8s-4.2.9", "kubelet serves TLS with its own certificate (tlsCertFile and tlsPrivateKeyFile, or serverTLSBootstrap)", tlsOK,
		fmt.Sprintf("tlsCertFile=%s serverTLSBootstrap=%v", orUnset(c.TLSCertFile, "unset"), c.ServerTLSBootstrap), "4.3.5")
	add("CIS-K8s-4.2.10", "kubelet rotate-certificates not false", c.RotateCertificates == nil || *c.RotateCertificates,
		"rotateCertificates="+boolStr(c.RotateCertificates, "unset (default true)"), "4.3.5")
	return items, true
}

func boolStr(b *bool, unset string) string {
	if b == nil {
		return unset
	}
	return strconv.FormatBool(*b)
}

func orUnset(s, unset string) string {
	if s == "" {
		return unset
	}
	return s
}
