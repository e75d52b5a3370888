package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"mamori/internal/agent"
	"mamori/internal/agent/modules/host"
	"mamori/internal/api"
	"mamori/internal/compliance/node"
)

// agentOptions are the flags of mamori agent; each overrides the same
// setting of --config.
type agentOptions struct {
	config      string
	eventsFile  string
	server      string
	tokenFile   string
	caFile      string
	certSHA256  string
	node        string
	rules       []string
	policy      string
	sensor      string
	spoolDir    string
	statsListen string
}

func newAgentCmd(g *globalOptions) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run mamori agent: the node's runtime security and host protection (anti-malware, integrity, logs, app control, firewall)",
		Long: `Run mamori agent, the node component: it watches what processes and containers
do (eBPF sensor, or CN_PROC + fanotify where the kernel refuses BPF), attributes
each event to its container and pod, detects drift from the image, evaluates the
runtime rules (56 built-in, mapped to MITRE ATT&CK) and logs, isolates or
terminates per ruleset. Events go to mamori server (--server, spooled on disk
while it is away) or, alone, as JSON lines to stdout or --events-file.

Host protection modules (docs/agent-host.md) run beside it: anti-malware
(on-access, scheduled and on-demand scans, quarantine), integrity monitoring,
log inspection, application control and the host firewall, each in log
(detect) or block mode, configured per host group on the server (or in the
configuration file without one).

With no flags it runs in detect mode: every built-in rule, action log; every
host module but application control (which needs its allow-list first) at
its detect-mode defaults.
Configuration file and fields: docs/agent.md. Needs root (or CAP_BPF,
CAP_PERFMON, CAP_SYS_ADMIN ...; see docs/agent.md).`,
		Example: `  mamori agent --events-file /var/log/mamori-events.jsonl
  mamori agent --config /etc/mamori/agent.yaml
  MAMORI_TOKEN=... mamori agent --server https://mamori.example:8443 --ca-file ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "agent configuration file (YAML, docs/agent.md)")
	f.StringVar(&o.eventsFile, "events-file", "", `write events as JSON lines to this file ("-": stdout; default stdout without a server)`)
	f.StringVar(&o.server, "server", "", "mamori server URL (https://host:8443); token from --token-file or $MAMORI_TOKEN")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the agent token (role agent)")
	f.StringVar(&o.caFile, "ca-file", "", "trust these PEM certificates for the server (its self-signed certificate or a private CA)")
	f.StringVar(&o.certSHA256, "server-cert-sha256", "", "pin the server certificate by its SHA-256")
	f.StringVar(&o.node, "node", "", "node name (default $NODE_NAME or the host name)")
	f.StringArrayVar(&o.rules, "rules", nil, "rule file loaded after the built-in rules; its rulesets are used (repeatable; only without a server)")
	f.StringVar(&o.policy, "policy", "", "policy file whose runtime section selects rulesets and actions (only without a server)")
	f.StringVar(&o.sensor, "sensor", "", "sensor mode: auto, ebpf or fallback (default auto)")
	f.StringVar(&o.spoolDir, "spool-dir", "", "spool directory for events to the server (default "+agent.DefaultSpoolDir+")")
	f.StringVar(&o.statsListen, "stats-listen", "", "serve counters on this loopback address (GET /stats, /metrics)")
	return cmd
}

func runAgent(cmd *cobra.Command, g *globalOptions, o *agentOptions) error {
	cfg := agent.Config{}
	if o.config != "" {
		c, err := agent.LoadConfig(o.config)
		if err != nil {
			return err
		}
		cfg = c
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Events.File, o.eventsFile)
	set(&cfg.Server.URL, o.server)
	set(&cfg.Server.TokenFile, o.tokenFile)
	set(&cfg.Server.CAFile, o.caFile)
	set(&cfg.Server.CertSHA256, o.certSHA256)
	set(&cfg.Node, o.node)
	set(&cfg.Modules.Runtime.Policy, o.policy)
	set(&cfg.Modules.Runtime.Sensor, o.sensor)
	set(&cfg.Spool.Dir, o.spoolDir)
	set(&cfg.StatsListen, o.statsListen)
	if len(o.rules) > 0 {
		cfg.Modules.Runtime.Rules = o.rules
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	if g.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(agent.DefaultGCPercent)
		debug.SetMemoryLimit(agent.DefaultMemoryLimit)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The compliance posture's host inventory walks the root in a child
	// process at nice 19 with idle I/O (docs/compliance.md).
	opts := []agent.Option{agent.WithLogger(log), agent.WithVersion(version),
		agent.WithHostInventory(node.InventoryInChild("/proc/self/exe", "compliance", "collect", "node", "--inventory-only", "--low-priority", "-q"))}
	deps := host.Deps{Node: cfg.Node, StateDir: cfg.HostStateDir(), Logger: log, ProcDir: cfg.Modules.Runtime.ProcRoot}
	if cfg.Server.URL != "" {
		// One client for the agent and its host modules.
		c, err := agent.NewClient(cfg.Server, version, log)
		if err != nil {
			return err
		}
		opts = append(opts, agent.WithServer(c))
		deps.Server = c
	}
	// The host group's runtime rulesets go to the agent, which is made
	// after the modules: the sync module calls it only once running.
	rt := &agentRulesets{}
	deps.Runtime = rt
	deps.Containers = rt
	mods, err := host.New(cfg.Modules.Host, deps)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, append(opts, agent.WithModules(mods...))...)
	if err != nil {
		return err
	}
	rt.a = a
	return a.Run(cmd.Context())
}

// agentRulesets hands the host group's runtime rulesets to the agent,
// and the host modules' container attribution to its runtime module.
type agentRulesets struct{ a *agent.Agent }

func (r *agentRulesets) ContainerOfPID(pid int) agent.HostAttribution {
	return r.a.Runtime().ContainerOfPID(pid)
}

func (r *agentRulesets) ContainerOfPath(path string) agent.HostAttribution {
	return r.a.Runtime().ContainerOfPath(path)
}

func (r *agentRulesets) SetHostRulesets(group string, version int, refs []api.RuntimeRulesetRef) {
	r.a.SetHostRulesets(group, version, refs)
}
