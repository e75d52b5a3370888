package api

import (
	"time"

	"mamori/internal/model"
)

// Host protection (issue 12): host groups and their module settings, the
// requests the server passes to node agents (quarantine restore and
// delete, baseline rebuild, scans), and what agents report back
// (quarantine contents, integrity baselines, learned allow-list entries).
//
// A node agent belongs to one host group: the group it was placed in
// (PUT /api/v1/agents/{id}/hostgroup), else the group of its cluster (a
// group names the cluster whose nodes it takes), else the group "default".
// The agent reads its group's settings with GET /api/v1/agents/host, every
// pollInterval, and applies them; the settings' validation is
// internal/hostsettings, shared by the server and the agent.

// Route paths of host protection.
const (
	PathHostGroups         = Prefix + "/hostgroups"
	PathHostGroup          = Prefix + "/hostgroups/{id}"
	PathHostGroupAllowList = Prefix + "/hostgroups/{id}/allowlist"
	PathHostGroupAllowHash = Prefix + "/hostgroups/{id}/allowlist/{sha256}"
	PathAgentHostGroup     = Prefix + "/agents/{id}/hostgroup"
	PathAgentRequests      = Prefix + "/agents/{id}/requests"
	PathQuarantine         = Prefix + "/quarantine"
	PathBaselines          = Prefix + "/baselines"

	// The calling agent's routes (role agent; ?node= names the agent
	// within its token's cluster, as in registration).
	PathAgentHost           = Prefix + "/agents/host"
	PathAgentHostAllowList  = Prefix + "/agents/host/allowlist"
	PathAgentHostQuarantine = Prefix + "/agents/host/quarantine"
	PathAgentHostBaseline   = Prefix + "/agents/host/baseline"
	PathAgentHostRequest    = Prefix + "/agents/host/requests/{id}"

	// HostParamNode names the calling agent's node on its routes.
	HostParamNode = "node"
	// HostParamAgent filters the quarantine list by agent ID.
	HostParamAgent = "agent"
)

// Limits of host protection, each with its reason.
const (
	// MaxAllowListBytes caps an allow-list upload or import (compressed and
	// decompressed): a host's inventory is 10,000-100,000 entries of about
	// 250 bytes of JSON.
	MaxAllowListBytes int64 = 64 << 20
	// MaxAllowListEntries bounds the entries of one group's list on the
	// server (a union of its hosts' inventories).
	MaxAllowListEntries = 1_000_000
	// MaxAllowListBatch bounds the entries of one upload: an agent sends its
	// learned entries in batches of at most this many.
	MaxAllowListBatch = 100_000
	// MaxQuarantineReport bounds the entries one agent reports: the
	// quarantine holds at most 1 GiB, tens to hundreds of files.
	MaxQuarantineReport = 10_000
	// DefaultHostPollInterval is how often an agent asks for its host
	// settings and requests when its group does not say (pollInterval).
	DefaultHostPollInterval = 15 * time.Second
)

// Host request kinds: what an admin asks of one agent.
const (
	// RequestQuarantineRestore writes a quarantined file back (Entry).
	RequestQuarantineRestore = "quarantine.restore"
	// RequestQuarantineDelete deletes a quarantined file for good (Entry).
	RequestQuarantineDelete = "quarantine.delete"
	// RequestBaselineRebuild rebuilds the integrity baseline.
	RequestBaselineRebuild = "integrity.rebuild"
	// RequestIntegrityCompare runs a full integrity compare now.
	RequestIntegrityCompare = "integrity.compare"
	// RequestScan runs an on-demand anti-malware scan (Paths, Containers).
	RequestScan = "antimalware.scan"
)

// Host request states.
const (
	RequestPending = "pending"
	RequestDone    = "done"
	RequestFailed  = "failed"
)

// Module modes.
const (
	ModeLog   = "log"   // detect: report, never deny
	ModeBlock = "block" // prevent: deny, quarantine, drop
)

// HostSettings are the settings of the host protection modules: a host
// group's on the server, the `modules` section of the agent's
// configuration file without a server (docs/agent-host.md). An empty field
// takes its documented default; internal/hostsettings validates them.
type HostSettings struct {
	// PollInterval is how often the group's agents ask for their settings
	// and requests (Go duration, at least 1s; default 15s). Server only.
	PollInterval string              `json:"pollInterval,omitempty" yaml:"pollInterval,omitempty"`
	Antimalware  AntimalwareSettings `json:"antimalware,omitzero" yaml:"antimalware,omitempty"`
	Integrity    IntegritySettings   `json:"integrity,omitzero" yaml:"integrity,omitempty"`
	LogInspect   LogInspectSettings  `json:"loginspect,omitzero" yaml:"loginspect,omitempty"`
	AppControl   AppControlSettings  `json:"appcontrol,omitzero" yaml:"appcontrol,omitempty"`
	Firewall     FirewallSettings    `json:"firewall,omitzero" yaml:"firewall,omitempty"`
	// RuntimeRulesets select the runtime rules the group's agents run, for
	// agents whose cluster enforces no policy (bare hosts): the cluster
	// policy's runtime section, when there is one, takes precedence. Empty:
	// the default ruleset (every built-in rule with its own action). Server
	// only: an agent without a server takes modules.runtime.policy or rules.
	RuntimeRulesets []RuntimeRulesetRef `json:"runtimeRulesets,omitempty" yaml:"runtimeRulesets,omitempty"`
}

// RuntimeRulesetRef puts one runtime ruleset in force on a host group's
// agents, as a policy's runtime section does (docs/policies.md), without
// the Kubernetes scope: a ruleset of the built-in rule files ("default":
// every rule), the action of its rules and of single rules.
type RuntimeRulesetRef struct {
	// Ruleset names the ruleset ("default", or one the built-in rule files define).
	Ruleset string `json:"ruleset" yaml:"ruleset"`
	// Host: processes outside containers are covered too (nil means yes).
	Host *bool `json:"host,omitempty" yaml:"host,omitempty"`
	// Action, when set, is the action of every rule not named in Rules:
	// log, isolate or terminate. Empty keeps each rule's own.
	Action model.Action `json:"action,omitempty" yaml:"action,omitempty"`
	// Rules gives single rules their own action (rule ID -> action); each
	// must be a rule the ruleset enables.
	Rules map[string]model.Action `json:"rules,omitempty" yaml:"rules,omitempty"`
}

// AntimalwareSettings configure the anti-malware module.
type AntimalwareSettings struct {
	// Enabled: nil means on.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Mode is log (default: report) or block (deny access and quarantine).
	Mode       string                `json:"mode,omitempty" yaml:"mode,omitempty"`
	OnAccess   AntimalwareOnAccess   `json:"onAccess,omitzero" yaml:"onAccess,omitempty"`
	Engines    AntimalwareEngines    `json:"engines,omitzero" yaml:"engines,omitempty"`
	Exclusions AntimalwareExclusions `json:"exclusions,omitzero" yaml:"exclusions,omitempty"`
	Scheduled  AntimalwareSchedule   `json:"scheduled,omitzero" yaml:"scheduled,omitempty"`
	// QuarantineDir holds quarantined files (root only; default
	// quarantine under the agent's state directory, /var/lib/mamori/agent);
	// QuarantineMaxBytes caps it (default 1 GiB).
	QuarantineDir      string `json:"quarantineDir,omitempty" yaml:"quarantineDir,omitempty"`
	QuarantineMaxBytes int64  `json:"quarantineMaxBytes,omitempty" yaml:"quarantineMaxBytes,omitempty"`
}

// AntimalwareOnAccess is the on-access scan (fanotify permission events).
type AntimalwareOnAccess struct {
	// Enabled: nil means on.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Paths are the mounts watched (default ["/"]).
	Paths []string `json:"paths,omitempty" yaml:"paths,omitempty"`
	// Filesystem marks each path's whole file system (every mount of it,
	// containers' overlay upper directories included) instead of the mount.
	Filesystem bool `json:"filesystem,omitempty" yaml:"filesystem,omitempty"`
	// MaxFileSize: larger files are allowed unscanned (default 32 MiB).
	MaxFileSize int64 `json:"maxFileSize,omitempty" yaml:"maxFileSize,omitempty"`
	// Budget is the per-file scan time budget (Go duration, default 1.5s,
	// below the listener's 2s answer deadline).
	Budget string `json:"budget,omitempty" yaml:"budget,omitempty"`
	// Workers and Queue size the listener (defaults 4 and 1024).
	Workers int `json:"workers,omitempty" yaml:"workers,omitempty"`
	Queue   int `json:"queue,omitempty" yaml:"queue,omitempty"`
}

// AntimalwareEngines choose the detection engines.
type AntimalwareEngines struct {
	// Builtin is the built-in hash list (EICAR ...); nil means on.
	Builtin *bool `json:"builtin,omitempty" yaml:"builtin,omitempty"`
	// Clamd is clamd's address (unix:///run/clamav/clamd.ctl,
	// tcp://127.0.0.1:3310); "" leaves ClamAV out.
	Clamd string `json:"clamd,omitempty" yaml:"clamd,omitempty"`
	// YARA are rule files or directories (binaries built with -tags yara).
	YARA []string `json:"yara,omitempty" yaml:"yara,omitempty"`
	// HashLists are files of SHA-256 digests of known malware.
	HashLists []string `json:"hashLists,omitempty" yaml:"hashLists,omitempty"`
}

// AntimalwareExclusions leave files out of every scan
// (docs/host-antimalware.md, Exclusions).
type AntimalwareExclusions struct {
	Paths       []string `json:"paths,omitempty" yaml:"paths,omitempty"`
	Processes   []string `json:"processes,omitempty" yaml:"processes,omitempty"`
	Extensions  []string `json:"extensions,omitempty" yaml:"extensions,omitempty"`
	Magic       []string `json:"magic,omitempty" yaml:"magic,omitempty"`
	AllowSHA256 []string `json:"allowSHA256,omitempty" yaml:"allowSHA256,omitempty"`
}

// AntimalwareSchedule is the scheduled scan.
type AntimalwareSchedule struct {
	// Every (Go duration) and/or At ("HH:MM" local time) say when it runs;
	// both empty: daily at 03:00. Off turns the scheduled scan off.
	Every string `json:"every,omitempty" yaml:"every,omitempty"`
	At    string `json:"at,omitempty" yaml:"at,omitempty"`
	Off   bool   `json:"off,omitempty" yaml:"off,omitempty"`
	// Paths are scanned (default /bin /sbin /usr /opt /root /home /tmp
	// /var/tmp /dev/shm /srv).
	Paths []string `json:"paths,omitempty" yaml:"paths,omitempty"`
	// Containers scans every running container's root file system too
	// (through /proc/PID/root).
	Containers bool `json:"containers,omitempty" yaml:"containers,omitempty"`
	// CrossDevices enters other mounts below each path.
	CrossDevices bool `json:"crossDevices,omitempty" yaml:"crossDevices,omitempty"`
	// BytesPerSecond bounds the read rate (default 32 MiB/s; -1 unbounded).
	BytesPerSecond int64 `json:"bytesPerSecond,omitempty" yaml:"bytesPerSecond,omitempty"`
}

// IntegritySettings configure integrity monitoring. Its only mode is log.
type IntegritySettings struct {
	// Enabled: nil means on.
	Enabled *bool  `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Mode    string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// DefaultRules keeps the built-in rules for a container node (nil
	// means yes); Rules are added after them (a rule of the same name
	// replaces the built-in one).
	DefaultRules *bool           `json:"defaultRules,omitempty" yaml:"defaultRules,omitempty"`
	Rules        []IntegrityRule `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Exclude applies to every rule.
	Exclude []string `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	// Watch is the real-time backend: auto (default), fanotify, inotify or
	// none (scheduled compares only).
	Watch string `json:"watch,omitempty" yaml:"watch,omitempty"`
	// CompareInterval (default 1h) and PollInterval (ports and kernel
	// modules, default 15s) are Go durations.
	CompareInterval string `json:"compareInterval,omitempty" yaml:"compareInterval,omitempty"`
	PollInterval    string `json:"pollInterval,omitempty" yaml:"pollInterval,omitempty"`
	// Root scans a tree as if it were "/" (a host mounted elsewhere);
	// default "/".
	Root string `json:"root,omitempty" yaml:"root,omitempty"`
	// BaselineFile and StateFile (defaults under /var/lib/mamori/agent).
	BaselineFile string `json:"baselineFile,omitempty" yaml:"baselineFile,omitempty"`
	StateFile    string `json:"stateFile,omitempty" yaml:"stateFile,omitempty"`
}

// IntegrityRule is one group of monitored paths (docs/host-integrity.md).
type IntegrityRule struct {
	Name      string   `json:"name" yaml:"name"`
	Severity  string   `json:"severity,omitempty" yaml:"severity,omitempty"`
	Paths     []string `json:"paths" yaml:"paths"`
	Recursive *bool    `json:"recursive,omitempty" yaml:"recursive,omitempty"`
	Exclude   []string `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	Checks    []string `json:"checks,omitempty" yaml:"checks,omitempty"`
}

// LogInspectSettings configure log inspection. Its only mode is log.
type LogInspectSettings struct {
	// Enabled: nil means on.
	Enabled *bool  `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Mode    string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Sources replace the default sources of a Linux container node
	// (syslog files, auditd, container and kubelet logs, the Kubernetes
	// audit log, login records) when given.
	Sources []LogSource `json:"sources,omitempty" yaml:"sources,omitempty"`
	// Journal reads the systemd journal: auto (default: where journald
	// runs and no syslog file has the authentication log), on or off.
	// JournalDirectory reads the journal files of a directory instead.
	Journal          string `json:"journal,omitempty" yaml:"journal,omitempty"`
	JournalDirectory string `json:"journalDirectory,omitempty" yaml:"journalDirectory,omitempty"`
	// Rules are rule files loaded after the built-in rules.
	Rules []string `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Forward sends every detection to a syslog collector (RFC 5424).
	Forward LogForward `json:"forward,omitzero" yaml:"forward,omitempty"`
	// FromStart reads existing logs from their start at the very first
	// start (default: from their end, so that installing the agent does
	// not report years of history). Later starts resume where they stopped.
	FromStart bool `json:"fromStart,omitempty" yaml:"fromStart,omitempty"`
	// StateDir keeps the read positions (default under /var/lib/mamori/agent).
	StateDir string `json:"stateDir,omitempty" yaml:"stateDir,omitempty"`
}

// LogSource names log files of one format.
type LogSource struct {
	// Name labels the source in statistics ("auth").
	Name string `json:"name" yaml:"name"`
	// Format is the decoder: syslog, cri, docker, klog, k8s-audit,
	// auditd, or watch (binary logs whose size and removal are watched).
	Format string `json:"format" yaml:"format"`
	// Paths are absolute paths or globs.
	Paths []string `json:"paths" yaml:"paths"`
}

// LogForward is a syslog collector (a SIEM).
type LogForward struct {
	// Address is host:port; "" forwards nothing.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Protocol is udp (default), tcp (octet counting, RFC 6587) or tls.
	Protocol string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// CAFile trusts these PEM certificates for tls (default: system roots).
	CAFile string `json:"caFile,omitempty" yaml:"caFile,omitempty"`
}

// AppControlSettings configure application control. It is off unless
// enabled: it needs an allow-list first.
type AppControlSettings struct {
	// Enabled: nil means off.
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Mode is log (default) or block (deny execution).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Paths are the mounts watched (default ["/"]); Filesystem marks their
	// whole file systems.
	Paths      []string `json:"paths,omitempty" yaml:"paths,omitempty"`
	Filesystem bool     `json:"filesystem,omitempty" yaml:"filesystem,omitempty"`
	// Scripts and Libraries check scripts run by interpreters and shared
	// objects (nil means yes).
	Scripts   *bool `json:"scripts,omitempty" yaml:"scripts,omitempty"`
	Libraries *bool `json:"libraries,omitempty" yaml:"libraries,omitempty"`
	// Learn are the learners run when the agent has no list yet:
	// inventory, dpkg, rpm (default inventory and the host's package
	// manager). With a server the learned entries go to the group's list.
	Learn []string `json:"learn,omitempty" yaml:"learn,omitempty"`
	// AllowListFile keeps the list (without a server: the list enforced;
	// default under /var/lib/mamori/agent).
	AllowListFile string `json:"allowListFile,omitempty" yaml:"allowListFile,omitempty"`
	// MaintenanceUntil turns maintenance mode on until then: programs not
	// on the list run and are learned.
	MaintenanceUntil time.Time `json:"maintenanceUntil,omitzero" yaml:"maintenanceUntil,omitempty"`
	// ExcludeExe are executables whose opens are never checked (backup
	// tools reading unknown libraries).
	ExcludeExe []string `json:"excludeExe,omitempty" yaml:"excludeExe,omitempty"`
}

// FirewallSettings configure the host firewall.
type FirewallSettings struct {
	// Enabled: nil means on (with no rules it installs nothing).
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Mode block installs the rules; log installs them with every drop and
	// reject turned into a logged accept: what would be dropped becomes a
	// firewall.would-drop event (NFLOG, LogGroup).
	Mode    string          `json:"mode,omitempty" yaml:"mode,omitempty"`
	Ruleset FirewallRuleset `json:"ruleset,omitzero" yaml:"ruleset,omitempty"`
	// LogGroup is the NFLOG group the logging rules send packets to, where
	// the agent reads them into events (log mode: what would be dropped;
	// rules with log: true); default 2704. One reader per group: change it
	// when another program on the hosts uses that group.
	LogGroup int `json:"logGroup,omitempty" yaml:"logGroup,omitempty"`
	// ConfirmTimeout bounds the safe apply: a change is rolled back unless
	// the agent reaches its server again within it (default 30s).
	ConfirmTimeout string `json:"confirmTimeout,omitempty" yaml:"confirmTimeout,omitempty"`
	// StateFile records applied rulesets for crash recovery (default
	// under /var/lib/mamori/agent).
	StateFile string `json:"stateFile,omitempty" yaml:"stateFile,omitempty"`
}

// FirewallRuleset is the whole host firewall (docs/host-firewall.md).
type FirewallRuleset struct {
	InputPolicy   string         `json:"inputPolicy,omitempty" yaml:"inputPolicy,omitempty"`
	OutputPolicy  string         `json:"outputPolicy,omitempty" yaml:"outputPolicy,omitempty"`
	Established   bool           `json:"established,omitempty" yaml:"established,omitempty"`
	BlockLoopback bool           `json:"blockLoopback,omitempty" yaml:"blockLoopback,omitempty"`
	Rules         []FirewallRule `json:"rules,omitempty" yaml:"rules,omitempty"`
}

// FirewallRule is one host firewall rule (docs/host-firewall.md).
type FirewallRule struct {
	Name             string   `json:"name" yaml:"name"`
	Direction        string   `json:"direction" yaml:"direction"`
	Action           string   `json:"action" yaml:"action"`
	Protocol         string   `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Interface        string   `json:"interface,omitempty" yaml:"interface,omitempty"`
	Sources          []string `json:"sources,omitempty" yaml:"sources,omitempty"`
	Destinations     []string `json:"destinations,omitempty" yaml:"destinations,omitempty"`
	SourceMAC        string   `json:"sourceMAC,omitempty" yaml:"sourceMAC,omitempty"`
	SourcePorts      []string `json:"sourcePorts,omitempty" yaml:"sourcePorts,omitempty"`
	DestinationPorts []string `json:"destinationPorts,omitempty" yaml:"destinationPorts,omitempty"`
	State            []string `json:"state,omitempty" yaml:"state,omitempty"`
	// Log: the packets the rule matches become events (firewall.dropped,
	// firewall.rejected, firewall.accepted; read from NFLOG, LogGroup).
	Log bool `json:"log,omitempty" yaml:"log,omitempty"`
}

// HostGroupRequest creates (POST /api/v1/hostgroups) or replaces (PUT
// /api/v1/hostgroups/{id}) a host group.
type HostGroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Cluster makes the group the one of that cluster's nodes (those not
	// placed in another group); "" for none. One group per cluster.
	Cluster  string       `json:"cluster,omitempty"`
	Settings HostSettings `json:"settings"`
}

// HostGroup is a host group with its settings.
type HostGroup struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Cluster     string `json:"cluster,omitempty"`
	// Default is true for the group "default" (hosts no other group takes).
	Default  bool         `json:"default"`
	Settings HostSettings `json:"settings"`
	// SettingsVersion grows with every change of Settings;
	// AllowListRevision with every change of the allow-list.
	SettingsVersion   int `json:"settingsVersion"`
	AllowListRevision int `json:"allowListRevision"`
	AllowListEntries  int `json:"allowListEntries"`
	// Members are the agents in the group (placed, by cluster or by default).
	Members   []HostMember `json:"members"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
	UpdatedBy string       `json:"updatedBy,omitempty"`
}

// HostMember is one agent of a host group and why it is there.
type HostMember struct {
	AgentID int64  `json:"agentId"`
	Cluster string `json:"cluster,omitempty"`
	Node    string `json:"node"`
	// Placement is "placed" (an admin put it there), "cluster" (its
	// cluster's group) or "default".
	Placement   string    `json:"placement"`
	LastContact time.Time `json:"lastContact"`
	// Sensor is the agent's runtime sensor as it last reported it.
	Sensor *AgentSensor `json:"sensor,omitempty"`
}

// HostGroupList answers GET /api/v1/hostgroups.
type HostGroupList struct {
	Groups []HostGroup `json:"groups"`
}

// HostPlacement is the body of PUT /api/v1/agents/{id}/hostgroup: the
// group to place the agent in, "" to take it out (back to its cluster's
// group or the default).
type HostPlacement struct {
	Group string `json:"group"`
}

// HostConfig answers GET /api/v1/agents/host: the calling agent's group,
// its settings and the requests waiting for the agent.
type HostConfig struct {
	Node            string       `json:"node"`
	Group           string       `json:"group"`
	GroupID         int64        `json:"groupId"`
	Placement       string       `json:"placement"`
	SettingsVersion int          `json:"settingsVersion"`
	Settings        HostSettings `json:"settings"`
	// AllowListRevision: fetch GET /api/v1/agents/host/allowlist when it
	// differs from the list the agent holds.
	AllowListRevision int    `json:"allowListRevision"`
	PollInterval      string `json:"pollInterval"`
	// Requests are the pending requests, oldest first.
	Requests []HostRequest `json:"requests"`
}

// AllowList is a group's application control allow-list (GET
// /api/v1/hostgroups/{id}/allowlist, /api/v1/agents/host/allowlist).
type AllowList struct {
	Group    string `json:"group"`
	Revision int    `json:"revision"`
	// List is the document internal/host/appcontrol imports.
	List AllowListDocument `json:"list"`
}

// AllowListDocument is the allow-list format
// (docs/host-appcontrol.md): format "mamori-appcontrol-allowlist",
// version 1. PUT /api/v1/hostgroups/{id}/allowlist takes one to replace a
// group's list.
type AllowListDocument struct {
	Format    string           `json:"format"`
	Version   int              `json:"version"`
	Generated time.Time        `json:"generated"`
	Host      string           `json:"host,omitempty"`
	Entries   []AllowListEntry `json:"entries"`
}

// AllowListEntry is one allowed file content.
type AllowListEntry struct {
	SHA256  string    `json:"sha256"`
	Path    string    `json:"path,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	Source  string    `json:"source"`
	Package string    `json:"package,omitempty"`
	Added   time.Time `json:"added"`
}

// AllowListAdd is the body of POST /api/v1/hostgroups/{id}/allowlist (an
// admin adds entries, source manual by default) and of POST
// /api/v1/agents/host/allowlist (an agent sends what it learned).
type AllowListAdd struct {
	Entries []AllowListEntry `json:"entries"`
}

// AllowListChange answers a change of an allow-list.
type AllowListChange struct {
	Group    string `json:"group"`
	Revision int    `json:"revision"`
	Added    int    `json:"added"`
	Removed  int    `json:"removed"`
	Entries  int    `json:"entries"`
}

// HostRequestCreate is the body of POST /api/v1/agents/{id}/requests.
type HostRequestCreate struct {
	// Kind is one of the Request* kinds.
	Kind string `json:"kind"`
	// Entry is the quarantine entry ID (quarantine.restore, .delete).
	Entry string `json:"entry,omitempty"`
	// Allow (quarantine.restore) adds the file's SHA-256 to the agent's
	// group's anti-malware allow-list first, so that it is not detected
	// again.
	Allow bool `json:"allow,omitempty"`
	// Paths, Containers (every running container) and Container (the
	// running container whose ID starts with it: 12 to 64 hex digits) say
	// what an antimalware.scan scans; containers through /proc/PID/root.
	Paths      []string `json:"paths,omitempty"`
	Containers bool     `json:"containers,omitempty"`
	Container  string   `json:"container,omitempty"`
}

// HostRequest is one request to an agent and its outcome.
type HostRequest struct {
	ID         int64     `json:"id"`
	AgentID    int64     `json:"agentId"`
	Kind       string    `json:"kind"`
	Entry      string    `json:"entry,omitempty"`
	Paths      []string  `json:"paths,omitempty"`
	Containers bool      `json:"containers,omitempty"`
	Container  string    `json:"container,omitempty"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	UpdatedAt  time.Time `json:"updatedAt"`
	// Result is the agent's message (what it did, or why it failed).
	Result string `json:"result,omitempty"`
}

// HostRequestList answers GET /api/v1/agents/{id}/requests (newest first).
type HostRequestList struct {
	Requests []HostRequest `json:"requests"`
}

// HostRequestResult is the body of POST /api/v1/agents/host/requests/{id}:
// the agent's outcome of a request.
type HostRequestResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// QuarantineEntry is one quarantined file as its agent reports it (the
// content and its key never leave the host).
type QuarantineEntry struct {
	ID           string          `json:"id"`
	Time         time.Time       `json:"time"`
	Path         string          `json:"path"`
	Root         string          `json:"root,omitempty"`
	ContainerPID int             `json:"containerPid,omitempty"`
	Size         int64           `json:"size"`
	SHA256       string          `json:"sha256"`
	Hits         []QuarantineHit `json:"hits"`
	// Removed is true once the original path was unlinked.
	Removed bool `json:"removed"`
}

// QuarantineHit is one engine's detection on a quarantined file.
type QuarantineHit struct {
	Engine    string `json:"engine"`
	Signature string `json:"signature"`
}

// QuarantineReport is the body of PUT /api/v1/agents/host/quarantine: the
// whole quarantine of the calling agent (replacing what it reported before).
type QuarantineReport struct {
	Entries []QuarantineEntry `json:"entries"`
}

// QuarantineRecord is one entry of one agent's quarantine.
type QuarantineRecord struct {
	AgentID    int64           `json:"agentId"`
	Cluster    string          `json:"cluster,omitempty"`
	Node       string          `json:"node"`
	ReportedAt time.Time       `json:"reportedAt"`
	Entry      QuarantineEntry `json:"entry"`
}

// QuarantineList answers GET /api/v1/quarantine (newest first).
type QuarantineList struct {
	Entries []QuarantineRecord `json:"entries"`
}

// BaselineReport is the body of PUT /api/v1/agents/host/baseline: a summary
// of the calling agent's integrity baseline and monitor.
type BaselineReport struct {
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	Root    string    `json:"root"`
	Files   int       `json:"files"`
	Objects int       `json:"objects"`
	// Rules counts the files under each rule.
	Rules []BaselineRule `json:"rules"`
	// ObjectKinds counts the system objects by kind (package, user ...).
	ObjectKinds map[string]int `json:"objectKinds"`
	// Backends maps each watched directory to its real-time backend (or why
	// it is not watched).
	Backends    map[string]string `json:"backends,omitempty"`
	Overflows   int               `json:"overflows"`
	Compares    int               `json:"compares"`
	Events      int               `json:"events"`
	LastCompare time.Time         `json:"lastCompare,omitzero"`
}

// BaselineRule is one integrity rule's share of a baseline.
type BaselineRule struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Files    int    `json:"files"`
}

// BaselineRecord is one agent's baseline summary.
type BaselineRecord struct {
	AgentID    int64          `json:"agentId"`
	Cluster    string         `json:"cluster,omitempty"`
	Node       string         `json:"node"`
	ReportedAt time.Time      `json:"reportedAt"`
	Baseline   BaselineReport `json:"baseline"`
}

// BaselineList answers GET /api/v1/baselines.
type BaselineList struct {
	Baselines []BaselineRecord `json:"baselines"`
}
