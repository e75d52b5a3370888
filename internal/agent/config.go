package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/api"
	"mamori/internal/hostsettings"
	"mamori/internal/runtime/sensor"
)

// Config is the agent's configuration: the YAML file of docs/agent.md
// (--config), with command-line flags applied over it. The zero value of
// every field is its documented default (see Defaults).
type Config struct {
	// Node names this node in events and to the server: the Kubernetes
	// node name ($NODE_NAME in the DaemonSet) or the host name.
	Node string `yaml:"node"`

	Server ServerConfig `yaml:"server"`
	Events EventsConfig `yaml:"events"`
	Spool  SpoolConfig  `yaml:"spool"`
	// StatsListen serves the agent's counters (GET /stats as JSON,
	// /metrics in the Prometheus text format) on this address; it must be a
	// loopback address or a unix socket path. "" turns it off.
	StatsListen string `yaml:"statsListen"`

	Modules ModulesConfig `yaml:"modules"`

	// Compliance sends the node's compliance posture to the server
	// (docs/compliance.md; on unless enabled is false).
	Compliance ComplianceConfig `yaml:"compliance"`
}

// ServerConfig is the connection to mamori server. With no URL the agent
// runs alone: events go to the events file or stdout, rulesets come from
// the local rule files.
type ServerConfig struct {
	URL string `yaml:"url"`
	// TokenFile holds the agent machine token (role agent); the
	// environment variable MAMORI_TOKEN is used when it is empty.
	TokenFile string `yaml:"tokenFile"`
	// CAFile trusts these PEM certificates instead of the system roots
	// (the server's self-signed certificate, or a private CA).
	CAFile string `yaml:"caFile"`
	// CertSHA256 pins the server certificate by its SHA-256 (64 hex digits).
	CertSHA256 string `yaml:"certSHA256"`
}

// EventsConfig is the local event output.
type EventsConfig struct {
	// File receives every event as one JSON line; "-" is stdout. With no
	// server and no file, events go to stdout.
	File string `yaml:"file"`
	// Queue bounds the events waiting for the outputs (spool, file); when
	// full, events are dropped and counted.
	Queue int `yaml:"queue"`
}

// SpoolConfig is the on-disk queue of events for the server.
type SpoolConfig struct {
	Dir string `yaml:"dir"`
	// MaxBytes caps the spool; past it the oldest segment is dropped (its
	// events counted as lost).
	MaxBytes int64 `yaml:"maxBytes"`
	// SegmentBytes is the size at which a segment file is closed.
	SegmentBytes int64 `yaml:"segmentBytes"`
	// Fsync is "always" (every append is on disk before the next), "batch"
	// (every FsyncInterval and at segment close) or "never" (the page
	// cache; survives an agent crash, not a power loss).
	Fsync         string        `yaml:"fsync"`
	FsyncInterval time.Duration `yaml:"fsyncInterval"`
}

// ModulesConfig switches the agent's modules on and off. The host
// protection modules (issue 12) plug in here with the same Module
// interface (docs/agent.md).
type ModulesConfig struct {
	Runtime RuntimeConfig `yaml:"runtime"`
	// Host are the host protection modules' settings (antimalware,
	// integrity, loginspect, appcontrol, firewall: docs/agent-host.md),
	// for an agent without a server; with one they come from its host group.
	Host api.HostSettings `yaml:",inline"`
}

// RuntimeConfig is the runtime security module: the sensor, attribution,
// drift, the rules and their actions.
type RuntimeConfig struct {
	// Enabled: nil means on.
	Enabled *bool `yaml:"enabled"`
	// Sensor is auto (eBPF, else the CN_PROC + fanotify fallback), ebpf or
	// fallback.
	Sensor string `yaml:"sensor"`
	// SyscallHooks is how the eBPF sensor hooks system calls: auto (the
	// per-call tracepoints where the kernel runs no 32-bit code, else
	// raw), raw or tracepoint (docs/runtime-sensor.md).
	SyscallHooks string `yaml:"syscallHooks"`
	// RingBufferBytes is the sensor's kernel ring buffer (a power of two).
	RingBufferBytes int `yaml:"ringBufferBytes"`
	// Rules are rule files loaded after the built-in rules; their rulesets
	// are used. Only without a server (the server gives rulesets then).
	Rules []string `yaml:"rules"`
	// Policy is a policy file (docs/policies.md) whose runtime section
	// selects the rulesets and their actions. Only without a server.
	Policy string `yaml:"policy"`
	// Containerd and Docker are the runtime sockets ("" for containerd:
	// the stock socket; "none" turns a runtime off; Docker is used when its
	// socket exists).
	Containerd string `yaml:"containerd"`
	Docker     string `yaml:"docker"`
	// ProcRoot is the host's /proc (the agent runs in the host PID
	// namespace).
	ProcRoot string `yaml:"procRoot"`
	// HostRoot reaches the host's file system (container layers) from an
	// agent in its own mount namespace: /proc/1/root.
	HostRoot string `yaml:"hostRoot"`
	// Cgroup2 is the host's cgroup v2 mount, when not found in the agent's
	// mountinfo.
	Cgroup2 string `yaml:"cgroup2"`
	// Queue bounds the sensor events waiting for the rules (dropped and
	// counted when full: the sensor's reader never waits).
	Queue int `yaml:"queue"`
	// ActionQueue bounds the isolate/terminate actions waiting to run.
	ActionQueue int `yaml:"actionQueue"`
	// Mitigation carries out isolate and terminate (nil: on). Off, every
	// match is recorded with action log and the action it would have taken
	// in details.
	Mitigation *bool `yaml:"mitigation"`
	// MaxProcs and MaxWriters bound the process and file-writer tables.
	MaxProcs   int `yaml:"maxProcs"`
	MaxWriters int `yaml:"maxWriters"`
}

// Defaults, with their reasons.
const (
	// DefaultSpoolDir keeps events across agent restarts.
	DefaultSpoolDir = "/var/lib/mamori/agent/spool"
	// DefaultSpoolMaxBytes holds about 300,000 events (~850 bytes each):
	// hours of a busy node's detections while the server is away.
	DefaultSpoolMaxBytes = 256 << 20
	// DefaultSegmentBytes: small enough that dropping the oldest segment
	// at the cap loses little, large enough to keep the file count low.
	DefaultSegmentBytes = 4 << 20
	// DefaultFsyncInterval bounds what a power loss can take.
	DefaultFsyncInterval = time.Second
	// DefaultEventQueue: matched events waiting for the outputs.
	DefaultEventQueue = 8192
	// DefaultSensorQueue: 0.3 s of a 50,000 events/s storm while the rules
	// worker is descheduled; the kernel ring buffer holds more behind it.
	DefaultSensorQueue = 16384
	// DefaultActionQueue: isolate and terminate take milliseconds; a burst
	// of matches in one container is answered from the action cache.
	DefaultActionQueue = 256
)

// Memory: the agent's tables and queues are bounded, so the garbage
// collector can run less often than Go's default (GOGC=100) for a lower CPU
// cost per event (measured by bench/runtime.sh: about a fifth less at
// 30,000 events/s for 40 MiB more heap), under a soft memory limit.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 768 << 20
)

// Fsync policies.
const (
	FsyncAlways = "always"
	FsyncBatch  = "batch"
	FsyncNever  = "never"
)

// Defaults returns the configuration of `mamori agent` with no file and
// no flags: the runtime module in detect mode (every built-in rule, action
// log), events to stdout.
func Defaults() Config {
	var c Config
	c.applyDefaults()
	return c
}

// ApplyDefaults fills every empty field with its default (as New does).
func (c *Config) ApplyDefaults() { c.applyDefaults() }

func (c *Config) applyDefaults() {
	if c.Node == "" {
		c.Node = os.Getenv("NODE_NAME")
	}
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			c.Node = h
		}
	}
	if c.Events.Queue <= 0 {
		c.Events.Queue = DefaultEventQueue
	}
	if c.Spool.Dir == "" {
		c.Spool.Dir = DefaultSpoolDir
	}
	if c.Spool.MaxBytes <= 0 {
		c.Spool.MaxBytes = DefaultSpoolMaxBytes
	}
	if c.Spool.SegmentBytes <= 0 {
		c.Spool.SegmentBytes = DefaultSegmentBytes
	}
	if c.Spool.Fsync == "" {
		c.Spool.Fsync = FsyncBatch
	}
	if c.Spool.FsyncInterval <= 0 {
		c.Spool.FsyncInterval = DefaultFsyncInterval
	}
	r := &c.Modules.Runtime
	if r.Sensor == "" {
		r.Sensor = string(sensor.ModeAuto)
	}
	if r.SyscallHooks == "" {
		r.SyscallHooks = string(sensor.HooksAuto)
	}
	if r.ProcRoot == "" {
		r.ProcRoot = "/proc"
	}
	if r.Queue <= 0 {
		r.Queue = DefaultSensorQueue
	}
	if r.ActionQueue <= 0 {
		r.ActionQueue = DefaultActionQueue
	}
	if r.MaxProcs <= 0 {
		r.MaxProcs = DefaultMaxProcs
	}
	if r.MaxWriters <= 0 {
		r.MaxWriters = DefaultMaxWriters
	}
}

// ErrConfig classifies configuration errors.
var ErrConfig = errors.New("agent: invalid configuration")

// MaxConfigSize bounds the configuration file.
const MaxConfigSize = 1 << 20

// LoadConfig reads a configuration file. Unknown fields are errors (a
// misspelt switch must not be silently ignored); defaults are applied.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("agent config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("agent config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return Config{}, fmt.Errorf("%w: %s is over %d bytes", ErrConfig, path, MaxConfigSize)
	}
	return ParseConfig(path, data)
}

// ParseConfig reads a configuration from bytes (name is for errors).
func ParseConfig(name string, data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %s: %s", ErrConfig, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Validate checks the configuration (after defaults).
func (c *Config) Validate() error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if c.Node == "" {
		bad("node: no node name (set node, $NODE_NAME or a host name)")
	}
	if c.Server.URL != "" {
		if c.Server.CAFile != "" && c.Server.CertSHA256 != "" {
			bad("server: caFile and certSHA256 exclude each other")
		}
		r := c.Modules.Runtime
		if len(r.Rules) > 0 || r.Policy != "" {
			bad("modules.runtime: rules and policy are local settings for an agent without a server; with a server its rulesets come from the server")
		}
	}
	switch c.Spool.Fsync {
	case FsyncAlways, FsyncBatch, FsyncNever:
	default:
		bad("spool.fsync: %q is not always, batch or never", c.Spool.Fsync)
	}
	if c.Spool.SegmentBytes > c.Spool.MaxBytes {
		bad("spool.segmentBytes (%d) is over spool.maxBytes (%d)", c.Spool.SegmentBytes, c.Spool.MaxBytes)
	}
	if len(c.Modules.Host.RuntimeRulesets) > 0 {
		bad("modules.runtimeRulesets: a host group's setting on the server; without a server, modules.runtime.policy or rules select the rulesets")
	}
	if c.Server.URL != "" {
		if !hostsettings.Equal(c.Modules.Host, api.HostSettings{}) {
			bad("modules (antimalware, integrity, loginspect, appcontrol, firewall): host module settings come from the server's host group; with a server the file has none")
		}
	} else if len(c.Modules.Host.RuntimeRulesets) > 0 {
		// Said above.
	} else if _, err := hostsettings.ResolveAt(c.Modules.Host, hostStateDir(c.Spool.Dir)); err != nil {
		var se *hostsettings.Error
		if errors.As(err, &se) {
			for _, p := range se.Problems {
				bad("modules.%s", p)
			}
		} else {
			bad("modules: %v", err)
		}
	}
	c.Compliance.validate(bad)
	if _, err := sensor.ParseMode(c.Modules.Runtime.Sensor); err != nil {
		bad("modules.runtime.sensor: %v", err)
	}
	if _, err := sensor.ParseSyscallHooks(c.Modules.Runtime.SyscallHooks); err != nil {
		bad("modules.runtime.syscallHooks: %v", err)
	}
	if n := c.Modules.Runtime.RingBufferBytes; n != 0 && (n < 4096 || n&(n-1) != 0) {
		bad("modules.runtime.ringBufferBytes: %d is not a power of two of at least 4096", n)
	}
	if c.StatsListen != "" && !strings.HasPrefix(c.StatsListen, "/") {
		if err := loopbackAddr(c.StatsListen); err != nil {
			bad("statsListen: %v", err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

// HostStateDir is where the host modules keep their files (baseline,
// allow-list, firewall state, read positions, quarantine): beside the
// spool, in the parent of spool.dir (/var/lib/mamori/agent by default).
func (c *Config) HostStateDir() string { return hostStateDir(c.Spool.Dir) }

func hostStateDir(spool string) string { return filepath.Dir(filepath.Clean(spool)) }

// RuntimeEnabled says whether the runtime module runs.
func (c *Config) RuntimeEnabled() bool {
	return c.Modules.Runtime.Enabled == nil || *c.Modules.Runtime.Enabled
}

// MitigationEnabled says whether isolate and terminate are carried out.
func (r *RuntimeConfig) MitigationEnabled() bool { return r.Mitigation == nil || *r.Mitigation }
