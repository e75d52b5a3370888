// Package hostsettings reads and checks the settings of the host
// protection modules (api.HostSettings): a host group's settings on the
// server and the agent configuration file's module sections without one.
// Resolve applies the documented defaults and compiles each module's
// settings with its engine's own checks (exclusions, integrity rules,
// firewall rulesets, schedules), so that the server refuses what an agent
// would refuse, with the same messages, before any agent sees it.
//
// It sits above the engines (internal/host/...) and the wire types
// (internal/api): the hosts service and the agent's host modules both
// import it.
package hostsettings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"mamori/internal/api"
	"mamori/internal/host/antimalware"
	"mamori/internal/host/appcontrol"
	"mamori/internal/host/fanotify"
	"mamori/internal/host/firewall"
	"mamori/internal/host/integrity"
	"mamori/internal/host/loginspect"
	"mamori/internal/host/loginspect/decode"
)

// ErrInvalid classifies settings errors; the *Error carries every problem.
var ErrInvalid = errors.New("host settings: invalid")

// Error lists every problem of a settings document, each prefixed with
// the field it is about ("antimalware.mode: ...").
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid host settings: " + strings.Join(e.Problems, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// MaxDocument bounds a settings document (YAML or JSON).
const MaxDocument = 1 << 20

// Module names, as in events (model.Event.Module) and the agent's stats.
const (
	Antimalware = antimalware.Module
	Integrity   = integrity.Module
	LogInspect  = "loginspect"
	AppControl  = appcontrol.Module
	Firewall    = "firewall"
)

// Modules lists the host protection modules in display order.
var Modules = []string{Antimalware, Integrity, LogInspect, AppControl, Firewall}

// Defaults, each with its reason.
const (
	// StateDir holds the modules' files on the host (baseline, allow-list,
	// firewall state, read positions, the quarantine) unless the agent
	// says another (ResolveAt): the agent keeps them beside its spool.
	StateDir = "/var/lib/mamori/agent"
	// DefaultScanRate keeps a scheduled scan from starving the node's I/O.
	DefaultScanRate = 32 << 20
	// DefaultScheduleAt: a daily scan at night (local time).
	DefaultScheduleAt = "03:00"
	// MinPollInterval bounds how often agents may ask the server.
	MinPollInterval = time.Second
	// MinCompareInterval: a full integrity compare reads every changed
	// file; more often than this is a rescan loop.
	MinCompareInterval = time.Minute
)

// DefaultScanPaths are where a scheduled scan looks by default: programs,
// home directories and the writable places malware is dropped into.
var DefaultScanPaths = []string{"/bin", "/sbin", "/usr", "/opt", "/root", "/home", "/tmp", "/var/tmp", "/dev/shm", "/srv"}

// Parse reads a settings document (YAML, or JSON, which is YAML), refusing
// unknown fields, and checks it (Resolve). name labels errors.
func Parse(name string, data []byte) (api.HostSettings, error) {
	var s api.HostSettings
	if len(data) > MaxDocument {
		return s, &Error{Problems: []string{fmt.Sprintf("%s: %d bytes, at most %d", name, len(data), MaxDocument)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
		return api.HostSettings{}, &Error{Problems: []string{fmt.Sprintf("%s: %s", name, msg)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return api.HostSettings{}, &Error{Problems: []string{name + ": more than one document"}}
	}
	if _, err := Resolve(s); err != nil {
		return api.HostSettings{}, err
	}
	return Normalize(s), nil
}

// Format writes settings as the YAML document Parse reads.
func Format(s api.HostSettings) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("host settings: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("host settings: %w", err)
	}
	if strings.TrimSpace(buf.String()) == "{}" {
		return []byte("# every module at its defaults (docs/agent-host.md)\n"), nil
	}
	return buf.Bytes(), nil
}

// Normalize returns s with empty lists and sections dropped (the form the
// server stores: what JSON keeps of it).
func Normalize(s api.HostSettings) api.HostSettings {
	b, err := json.Marshal(s)
	if err != nil {
		return s
	}
	var out api.HostSettings
	if err := json.Unmarshal(b, &out); err != nil {
		return s
	}
	return out
}

// Equal reports whether two settings are the same once normalized.
func Equal(a, b api.HostSettings) bool {
	ja, err1 := json.Marshal(Normalize(a))
	jb, err2 := json.Marshal(Normalize(b))
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Config is the resolved settings of every module: defaults applied,
// engine options compiled.
type Config struct {
	PollInterval time.Duration
	Antimalware  AntimalwareConfig
	Integrity    IntegrityConfig
	LogInspect   LogInspectConfig
	AppControl   AppControlConfig
	Firewall     FirewallConfig
}

// AntimalwareConfig is the resolved anti-malware settings.
type AntimalwareConfig struct {
	Enabled     bool
	Mode        antimalware.Mode
	OnAccess    bool
	Marks       []antimalware.Mark
	MaxFileSize int64
	Budget      time.Duration
	Workers     int
	Queue       int

	Builtin   bool
	Clamd     string
	YARA      []string
	HashLists []string

	Exclusions antimalware.ExclusionSpec

	// Schedule is nil when the scheduled scan is off.
	Schedule           *antimalware.Schedule
	ScanPaths          []string
	ScanContainers     bool
	CrossDevices       bool
	BytesPerSecond     int64
	QuarantineDir      string
	QuarantineMaxBytes int64
}

// IntegrityConfig is the resolved integrity settings.
type IntegrityConfig struct {
	Enabled         bool
	Rules           *integrity.RuleSet
	Watch           integrity.WatchMode
	CompareInterval time.Duration
	PollInterval    time.Duration
	Root            string
	BaselineFile    string
	StateFile       string
}

// LogInspectConfig is the resolved log inspection settings.
type LogInspectConfig struct {
	Enabled bool
	// Sources are the configured ones, or DefaultSources (DefaultSources true).
	Sources        []loginspect.SourceConfig
	DefaultSources bool
	// Journal is auto, on or off.
	Journal          string
	JournalDirectory string
	Rules            []string
	ForwardAddress   string
	ForwardProtocol  string
	ForwardCAFile    string
	StartAtEnd       bool
	StateDir         string
}

// AppControlConfig is the resolved application control settings.
type AppControlConfig struct {
	Enabled          bool
	Mode             appcontrol.Mode
	Marks            []appcontrol.Mark
	Scripts          bool
	Libraries        bool
	Learn            []string
	AllowListFile    string
	MaintenanceUntil time.Time
	ExcludeExe       []string
}

// FirewallConfig is the resolved firewall settings.
type FirewallConfig struct {
	Enabled bool
	Mode    string
	// Ruleset is what is installed: the configured one in block mode, its
	// logging form (LogOnly) in log mode.
	Ruleset firewall.Ruleset
	// Configured is the ruleset as configured.
	Configured     firewall.Ruleset
	ConfirmTimeout time.Duration
	StateFile      string
	// LogGroup is the NFLOG group of the logging rules (Ruleset.LogGroup).
	LogGroup uint16
}

// Learners of application control.
const (
	LearnInventory = "inventory"
	LearnDpkg      = "dpkg"
	LearnRPM       = "rpm"
)

// problems collects the problems of one document.
type problems struct{ list []string }

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, field+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

// maxListLen bounds each list of a settings document.
const maxListLen = 1024

func (p *problems) text(field, v string, max int) bool {
	switch {
	case len(v) > max:
		p.add(field, "longer than %d bytes", max)
	case strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v):
		p.add(field, "not valid UTF-8 text")
	default:
		return true
	}
	return false
}

// absPath checks an absolute, clean path (empty allowed when !required).
func (p *problems) absPath(field, v string, required bool) {
	if v == "" {
		if required {
			p.add(field, "empty")
		}
		return
	}
	if !p.text(field, v, 4096) {
		return
	}
	if !filepath.IsAbs(v) {
		p.add(field, "%q is not an absolute path", v)
		return
	}
	if filepath.Clean(v) != v {
		p.add(field, "%q is not clean (want %q)", v, filepath.Clean(v))
	}
}

func (p *problems) paths(field string, vs []string) {
	if len(vs) > maxListLen {
		p.add(field, "%d entries, at most %d", len(vs), maxListLen)
		return
	}
	for i, v := range vs {
		p.absPath(fmt.Sprintf("%s[%d]", field, i), v, true)
	}
}

func (p *problems) duration(field, v string, def, min, max time.Duration) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.add(field, "%q is not a duration (30s, 5m, 1h)", v)
		return def
	case d < min:
		p.add(field, "%s is below the minimum %s", d, min)
		return def
	case max > 0 && d > max:
		p.add(field, "%s is above the maximum %s", d, max)
		return def
	}
	return d
}

func (p *problems) mode(field, v string, allowed ...string) string {
	if v == "" {
		return api.ModeLog
	}
	if !slices.Contains(allowed, v) {
		p.add(field, "%q is not %s", v, strings.Join(allowed, " or "))
		return api.ModeLog
	}
	return v
}

func on(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// Resolve checks settings and resolves them into each module's
// configuration, files under StateDir. Every problem is reported (an
// *Error wrapping ErrInvalid).
func Resolve(s api.HostSettings) (Config, error) { return ResolveAt(s, StateDir) }

// ResolveAt is Resolve with the modules' files under stateDir by default.
func ResolveAt(s api.HostSettings, stateDir string) (Config, error) {
	p := &problems{}
	var c Config
	if !filepath.IsAbs(stateDir) {
		p.add("stateDir", "%q is not absolute", stateDir)
	}
	c.PollInterval = p.duration("pollInterval", s.PollInterval, api.DefaultHostPollInterval, MinPollInterval, time.Hour)
	c.Antimalware = resolveAntimalware(p, s.Antimalware, stateDir)
	c.Integrity = resolveIntegrity(p, s.Integrity, stateDir)
	c.LogInspect = resolveLogInspect(p, s.LogInspect, stateDir)
	c.AppControl = resolveAppControl(p, s.AppControl, stateDir)
	c.Firewall = resolveFirewall(p, s.Firewall, stateDir)
	checkRuntimeRulesets(p, s.RuntimeRulesets)
	if err := p.err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks settings (Resolve without the result).
func Validate(s api.HostSettings) error {
	_, err := Resolve(s)
	return err
}

func resolveAntimalware(p *problems, s api.AntimalwareSettings, stateDir string) AntimalwareConfig {
	const f = "antimalware"
	c := AntimalwareConfig{Enabled: on(s.Enabled, true)}
	c.Mode = antimalware.Mode(p.mode(f+".mode", s.Mode, api.ModeLog, api.ModeBlock))

	oa := s.OnAccess
	c.OnAccess = on(oa.Enabled, true)
	paths := oa.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	p.paths(f+".onAccess.paths", paths)
	kind := fanotify.MarkMount
	if oa.Filesystem {
		kind = fanotify.MarkFilesystem
	}
	for _, path := range paths {
		c.Marks = append(c.Marks, antimalware.Mark{Path: path, Kind: kind})
	}
	c.MaxFileSize = oa.MaxFileSize
	if oa.MaxFileSize < 0 || oa.MaxFileSize > 1<<40 {
		p.add(f+".onAccess.maxFileSize", "%d is out of range", oa.MaxFileSize)
	}
	if c.MaxFileSize == 0 {
		c.MaxFileSize = antimalware.DefaultOnAccessMaxSize
	}
	c.Budget = p.duration(f+".onAccess.budget", oa.Budget, antimalware.DefaultPerFileBudget, 10*time.Millisecond, fanotify.DefaultBudget)
	if oa.Workers < 0 || oa.Workers > 64 {
		p.add(f+".onAccess.workers", "%d is not 1 to 64", oa.Workers)
	}
	if oa.Queue < 0 || oa.Queue > 1<<16 {
		p.add(f+".onAccess.queue", "%d is not 1 to 65536", oa.Queue)
	}
	c.Workers, c.Queue = oa.Workers, oa.Queue

	e := s.Engines
	c.Builtin = on(e.Builtin, true)
	c.Clamd = e.Clamd
	if e.Clamd != "" {
		checkClamd(p, f+".engines.clamd", e.Clamd)
	}
	p.paths(f+".engines.yara", e.YARA)
	p.paths(f+".engines.hashLists", e.HashLists)
	c.YARA, c.HashLists = e.YARA, e.HashLists
	if !c.Builtin && c.Clamd == "" && len(c.YARA) == 0 && len(c.HashLists) == 0 && c.Enabled {
		p.add(f+".engines", "every engine is off: turn on the built-in list, clamd, YARA or a hash list")
	}

	x := s.Exclusions
	c.Exclusions = antimalware.ExclusionSpec{Paths: x.Paths, Processes: x.Processes, Extensions: x.Extensions,
		Magic: x.Magic, AllowSHA256: x.AllowSHA256}
	for _, l := range [][]string{x.Paths, x.Processes, x.Extensions, x.Magic, x.AllowSHA256} {
		if len(l) > 100_000 {
			p.add(f+".exclusions", "a list has %d entries, at most 100000", len(l))
		}
	}
	if _, err := antimalware.CompileExclusions(c.Exclusions); err != nil {
		p.add(f+".exclusions", "%s", strings.TrimPrefix(err.Error(), "antimalware: bad exclusion: "))
	}

	sc := s.Scheduled
	if !sc.Off {
		sch := antimalware.Schedule{At: sc.At}
		if sc.Every != "" {
			sch.Every = p.duration(f+".scheduled.every", sc.Every, 0, time.Minute, 0)
		}
		if sch.Every == 0 && sch.At == "" {
			sch.At = DefaultScheduleAt
		}
		if err := sch.Validate(); err != nil {
			p.add(f+".scheduled", "%s", strings.TrimPrefix(err.Error(), "antimalware: "))
		}
		c.Schedule = &sch
	} else if sc.Every != "" || sc.At != "" {
		p.add(f+".scheduled", "off with every or at: say one or the other")
	}
	c.ScanPaths = sc.Paths
	if len(c.ScanPaths) == 0 {
		c.ScanPaths = DefaultScanPaths
	}
	p.paths(f+".scheduled.paths", sc.Paths)
	c.ScanContainers, c.CrossDevices = sc.Containers, sc.CrossDevices
	switch {
	case sc.BytesPerSecond == 0:
		c.BytesPerSecond = DefaultScanRate
	case sc.BytesPerSecond < 0:
		c.BytesPerSecond = 0
	default:
		c.BytesPerSecond = sc.BytesPerSecond
	}

	c.QuarantineDir = orDefault(s.QuarantineDir, filepath.Join(stateDir, "quarantine"))
	p.absPath(f+".quarantineDir", s.QuarantineDir, false)
	if s.QuarantineDir == "/" {
		p.add(f+".quarantineDir", "not the root directory")
	}
	c.QuarantineMaxBytes = s.QuarantineMaxBytes
	if s.QuarantineMaxBytes < 0 {
		p.add(f+".quarantineMaxBytes", "negative")
	}
	if c.QuarantineMaxBytes == 0 {
		c.QuarantineMaxBytes = antimalware.DefaultQuarantineBytes
	}
	return c
}

// checkClamd checks a clamd address: unix://ABSOLUTE or tcp://HOST:PORT.
func checkClamd(p *problems, field, addr string) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		p.absPath(field, strings.TrimPrefix(addr, "unix://"), true)
	case strings.HasPrefix(addr, "tcp://"):
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "tcp://")); err != nil {
			p.add(field, "%q: want tcp://HOST:PORT", addr)
		}
	default:
		p.add(field, "%q: want unix:///path/to/clamd.ctl or tcp://HOST:PORT", addr)
	}
}

func resolveIntegrity(p *problems, s api.IntegritySettings, stateDir string) IntegrityConfig {
	const f = "integrity"
	c := IntegrityConfig{Enabled: on(s.Enabled, true)}
	p.mode(f+".mode", s.Mode, api.ModeLog)
	rs := &integrity.RuleSet{}
	if on(s.DefaultRules, true) {
		d, err := integrity.DefaultRules()
		if err != nil {
			p.add(f+".defaultRules", "%v", err)
		} else {
			rs = d
		}
	}
	if len(s.Rules) > 256 {
		p.add(f+".rules", "%d rules, at most 256", len(s.Rules))
	}
	for _, r := range s.Rules {
		ir := integrity.Rule{Name: r.Name, Severity: integrity.Severity(r.Severity), Paths: r.Paths, Recursive: r.Recursive,
			Exclude: r.Exclude, Checks: r.Checks}
		if ir.Severity == "" {
			ir.Severity = integrity.SeverityMedium
		}
		if i := slices.IndexFunc(rs.Rules, func(x integrity.Rule) bool { return x.Name == r.Name }); i >= 0 {
			rs.Rules[i] = ir
		} else {
			rs.Rules = append(rs.Rules, ir)
		}
	}
	rs.Exclude = append(rs.Exclude, s.Exclude...)
	if err := rs.Validate(); err != nil {
		for _, e := range splitJoined(err) {
			p.add(f+".rules", "%s", strings.TrimPrefix(e, "integrity: invalid rules: "))
		}
	}
	c.Rules = rs
	switch w := integrity.WatchMode(s.Watch); w {
	case "":
		c.Watch = integrity.WatchAuto
	case integrity.WatchAuto, integrity.WatchFanotify, integrity.WatchInotify, integrity.WatchNone:
		c.Watch = w
	default:
		p.add(f+".watch", "%q is not auto, fanotify, inotify or none", s.Watch)
	}
	c.CompareInterval = p.duration(f+".compareInterval", s.CompareInterval, integrity.DefaultCompareInterval, MinCompareInterval, 0)
	c.PollInterval = p.duration(f+".pollInterval", s.PollInterval, 15*time.Second, time.Second, 0)
	c.Root = s.Root
	if c.Root == "" {
		c.Root = "/"
	}
	p.absPath(f+".root", s.Root, false)
	c.BaselineFile = orDefault(s.BaselineFile, filepath.Join(stateDir, "integrity.fim"))
	c.StateFile = orDefault(s.StateFile, filepath.Join(stateDir, "integrity.state"))
	p.absPath(f+".baselineFile", s.BaselineFile, false)
	p.absPath(f+".stateFile", s.StateFile, false)
	return c
}

// splitJoined returns the messages of an errors.Join (or the one message).
func splitJoined(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func resolveLogInspect(p *problems, s api.LogInspectSettings, stateDir string) LogInspectConfig {
	const f = "loginspect"
	c := LogInspectConfig{Enabled: on(s.Enabled, true)}
	p.mode(f+".mode", s.Mode, api.ModeLog)
	formats := []string{loginspect.FormatWatch}
	for n := range decode.Formats() {
		if n != "journal" { // the journal is read with journal, not as files
			formats = append(formats, n)
		}
	}
	slices.Sort(formats)
	if len(s.Sources) > maxListLen {
		p.add(f+".sources", "%d entries, at most %d", len(s.Sources), maxListLen)
	}
	names := map[string]bool{}
	for i, src := range s.Sources {
		field := fmt.Sprintf("%s.sources[%d]", f, i)
		if src.Name == "" || !p.text(field+".name", src.Name, 64) {
			p.add(field+".name", "a source needs a name (1 to 64 bytes)")
		} else if names[src.Name] {
			p.add(field+".name", "%q is used twice", src.Name)
		}
		names[src.Name] = true
		if !slices.Contains(formats, src.Format) {
			p.add(field+".format", "%q is not one of %s", src.Format, strings.Join(formats, ", "))
		}
		if len(src.Paths) == 0 {
			p.add(field+".paths", "no paths")
		}
		p.paths(field+".paths", src.Paths)
		for j, path := range src.Paths {
			if _, err := filepath.Match(path, ""); err != nil {
				p.add(fmt.Sprintf("%s.paths[%d]", field, j), "%q: %v", path, err)
			}
		}
		c.Sources = append(c.Sources, loginspect.SourceConfig{Name: src.Name, Format: src.Format, Paths: src.Paths})
	}
	if len(s.Sources) == 0 {
		c.DefaultSources = true
		c.Sources = loginspect.DefaultSources()
	}
	switch s.Journal {
	case "", "auto":
		c.Journal = "auto"
	case "on", "off":
		c.Journal = s.Journal
	default:
		p.add(f+".journal", "%q is not auto, on or off", s.Journal)
	}
	p.absPath(f+".journalDirectory", s.JournalDirectory, false)
	c.JournalDirectory = s.JournalDirectory
	if s.JournalDirectory != "" && c.Journal == "off" {
		p.add(f+".journalDirectory", "given with journal off")
	}
	p.paths(f+".rules", s.Rules)
	c.Rules = s.Rules
	fw := s.Forward
	if fw.Address != "" {
		if host, port, err := net.SplitHostPort(fw.Address); err != nil || host == "" || port == "" {
			p.add(f+".forward.address", "%q: want HOST:PORT", fw.Address)
		}
	}
	switch fw.Protocol {
	case "", "udp":
		c.ForwardProtocol = "udp"
	case "tcp", "tls":
		c.ForwardProtocol = fw.Protocol
	default:
		p.add(f+".forward.protocol", "%q is not udp, tcp or tls", fw.Protocol)
	}
	if fw.Address == "" && (fw.Protocol != "" || fw.CAFile != "") {
		p.add(f+".forward", "a protocol or CA file without an address")
	}
	p.absPath(f+".forward.caFile", fw.CAFile, false)
	if fw.CAFile != "" && fw.Protocol != "tls" {
		p.add(f+".forward.caFile", "only with protocol tls")
	}
	c.ForwardAddress, c.ForwardCAFile = fw.Address, fw.CAFile
	c.StartAtEnd = !s.FromStart
	c.StateDir = orDefault(s.StateDir, filepath.Join(stateDir, "loginspect"))
	p.absPath(f+".stateDir", s.StateDir, false)
	return c
}

func resolveAppControl(p *problems, s api.AppControlSettings, stateDir string) AppControlConfig {
	const f = "appcontrol"
	c := AppControlConfig{Enabled: on(s.Enabled, false)}
	c.Mode = appcontrol.Mode(p.mode(f+".mode", s.Mode, api.ModeLog, api.ModeBlock))
	paths := s.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	p.paths(f+".paths", paths)
	kind := fanotify.MarkMount
	if s.Filesystem {
		kind = fanotify.MarkFilesystem
	}
	for _, path := range paths {
		c.Marks = append(c.Marks, appcontrol.Mark{Path: path, Kind: kind})
	}
	c.Scripts, c.Libraries = on(s.Scripts, true), on(s.Libraries, true)
	c.Learn = s.Learn
	if len(c.Learn) == 0 {
		c.Learn = []string{LearnInventory, LearnDpkg}
	}
	seen := map[string]bool{}
	for i, l := range s.Learn {
		switch l {
		case LearnInventory, LearnDpkg, LearnRPM:
		default:
			p.add(fmt.Sprintf("%s.learn[%d]", f, i), "%q is not inventory, dpkg or rpm", l)
		}
		if seen[l] {
			p.add(fmt.Sprintf("%s.learn[%d]", f, i), "%q is listed twice", l)
		}
		seen[l] = true
	}
	c.AllowListFile = orDefault(s.AllowListFile, filepath.Join(stateDir, "allowlist.json"))
	p.absPath(f+".allowListFile", s.AllowListFile, false)
	c.MaintenanceUntil = s.MaintenanceUntil
	p.paths(f+".excludeExe", s.ExcludeExe)
	c.ExcludeExe = s.ExcludeExe
	return c
}

func resolveFirewall(p *problems, s api.FirewallSettings, stateDir string) FirewallConfig {
	const f = "firewall"
	c := FirewallConfig{Enabled: on(s.Enabled, true)}
	c.Mode = p.mode(f+".mode", s.Mode, api.ModeLog, api.ModeBlock)
	rs, err := FirewallRuleset(s.Ruleset)
	if err != nil {
		p.add(f+".ruleset", "%v", err)
	} else if err := firewall.Validate(rs); err != nil {
		for _, e := range splitJoined(err) {
			p.add(f+".ruleset", "%s", strings.TrimPrefix(e, "firewall: invalid ruleset: "))
		}
	}
	switch {
	case s.LogGroup == 0:
		c.LogGroup = firewall.DefaultLogGroup
	case s.LogGroup < 1 || s.LogGroup > 65535:
		p.add(f+".logGroup", "%d is not an NFLOG group (1-65535)", s.LogGroup)
	default:
		c.LogGroup = uint16(s.LogGroup)
	}
	rs.LogGroup = c.LogGroup
	c.Configured = rs
	c.Ruleset = rs
	if c.Mode == api.ModeLog {
		c.Ruleset = LogOnly(rs)
	}
	c.ConfirmTimeout = p.duration(f+".confirmTimeout", s.ConfirmTimeout, 30*time.Second, time.Second, 10*time.Minute)
	c.StateFile = orDefault(s.StateFile, filepath.Join(stateDir, "firewall.state"))
	p.absPath(f+".stateFile", s.StateFile, false)
	return c
}

// FirewallRuleset converts the wire ruleset to the engine's (the same
// JSON form).
func FirewallRuleset(w api.FirewallRuleset) (firewall.Ruleset, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return firewall.Ruleset{}, err
	}
	var rs firewall.Ruleset
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return firewall.Ruleset{}, fmt.Errorf("ruleset: %w", err)
	}
	return rs, nil
}

// LogOnly is the detect form of a ruleset: every drop or reject rule
// becomes an accept that logs (prefix "mamori <rule>: "), and a drop
// policy becomes accept behind a last logging rule per direction, so
// that what block mode would drop is logged and nothing is dropped.
func LogOnly(rs firewall.Ruleset) firewall.Ruleset {
	out := rs
	out.Rules = make([]firewall.Rule, 0, len(rs.Rules)+2)
	for _, r := range rs.Rules {
		if r.Action == firewall.Drop || r.Action == firewall.Reject {
			r.Action, r.Log = firewall.Accept, true
		}
		out.Rules = append(out.Rules, r)
	}
	// The policy rules come last; with established, replies never reach
	// them, as in block mode.
	for _, d := range []struct {
		pol  firewall.Action
		dir  firewall.Direction
		name string
	}{{rs.InputPolicy, firewall.In, "policy-in"}, {rs.OutputPolicy, firewall.Out, "policy-out"}} {
		if d.pol != firewall.Drop {
			continue
		}
		if !rs.BlockLoopback {
			// Block mode accepts unmatched loopback traffic after the
			// rules; the same here, before the logging rule, so that
			// local traffic is not logged as "would be dropped".
			out.Rules = append(out.Rules, firewall.Rule{Name: uniqueName(out.Rules, d.name+"-lo"), Direction: d.dir,
				Action: firewall.Accept, Interface: "lo"})
		}
		out.Rules = append(out.Rules, firewall.Rule{Name: uniqueName(out.Rules, d.name), Direction: d.dir,
			Action: firewall.Accept, Log: true})
	}
	out.InputPolicy, out.OutputPolicy = firewall.Accept, firewall.Accept
	return out
}

func uniqueName(rs []firewall.Rule, name string) string {
	for n := 0; ; n++ {
		cand := name
		if n > 0 {
			cand = fmt.Sprintf("%s-%d", name, n)
		}
		if !slices.ContainsFunc(rs, func(r firewall.Rule) bool { return r.Name == cand }) {
			return cand
		}
	}
}
