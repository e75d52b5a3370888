package loginspect

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"mamori/internal/host/loginspect/decode"
)

// SourceConfig names log files of one format.
type SourceConfig struct {
	// Name labels the source in errors and statistics ("auth", "pods").
	Name string
	// Format is the decoder: "syslog", "cri", "docker", "klog", "k8s-audit", "auditd"; or
	// "watch" for binary logs (wtmp, btmp, lastlog, archived journal files) whose size and
	// removal are watched without reading them.
	Format string
	// Paths are absolute paths or globs.
	Paths []string
}

// FormatWatch is the Format of watched (not read) files.
const FormatWatch = "watch"

// JournalConfig configures reading the systemd journal through journalctl.
type JournalConfig struct {
	// Command is the journalctl binary ("journalctl" on $PATH when empty).
	Command string
	// Directory reads the journal files of a directory (journalctl --directory) instead of the
	// system journal: a container host's or a test's journal.
	Directory string
}

// Known paths of a Linux container node.
var (
	syslogFiles = []string{"/var/log/auth.log", "/var/log/secure", "/var/log/syslog", "/var/log/messages"}
	watchFiles  = []string{"/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog", "/var/log/faillog",
		"/var/log/journal/*/*@*.journal", "/var/log/journal/*/*@*.journal~"}
	k8sAuditFiles = []string{"/var/log/kubernetes/audit.log", "/var/log/kubernetes/audit/audit.log",
		"/var/log/kube-apiserver-audit.log", "/var/log/kubernetes/kube-apiserver-audit.log"}
)

// DefaultSources returns the sources of a Linux container node: syslog files (Debian's
// auth.log and syslog, RHEL's secure and messages), the audit daemon's log, container logs of
// the CRI runtimes and Docker, the kubelet's log file, the API server's audit log where a
// control plane runs, and the binary login records and archived journal files (watched).
// Paths that do not exist are followed when they appear.
func DefaultSources() []SourceConfig {
	return []SourceConfig{
		{Name: "syslog", Format: "syslog", Paths: syslogFiles},
		{Name: "auditd", Format: "auditd", Paths: []string{"/var/log/audit/audit.log"}},
		{Name: "pods", Format: "cri", Paths: []string{"/var/log/pods/*/*/*.log"}},
		{Name: "docker", Format: "docker", Paths: []string{"/var/lib/docker/containers/*/*-json.log"}},
		{Name: "kubelet", Format: "klog", Paths: []string{"/var/log/kubelet.log"}},
		{Name: "k8s-audit", Format: "k8s-audit", Paths: k8sAuditFiles},
		{Name: "login-records", Format: FormatWatch, Paths: watchFiles},
	}
}

// DefaultJournal returns the journal configuration where the host runs journald and writes no
// syslog authentication file (Debian 12 without rsyslog), nil otherwise: with rsyslog, journald
// forwards every message to the files, and reading both would count each line twice.
func DefaultJournal() *JournalConfig {
	if _, err := os.Stat("/run/systemd/journal/socket"); err != nil {
		return nil
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		return nil
	}
	for _, f := range []string{"/var/log/auth.log", "/var/log/secure"} {
		if _, err := os.Stat(f); err == nil {
			return nil
		}
	}
	return &JournalConfig{}
}

func validateSources(srcs []SourceConfig) error {
	formats := decode.Formats()
	for _, s := range srcs {
		if s.Format != FormatWatch && formats[s.Format] == nil {
			return fmt.Errorf("%w: source %q: unknown format %q", ErrConfig, s.Name, s.Format)
		}
		if s.Format == "journal" {
			return fmt.Errorf("%w: source %q: the journal is read with WithJournal, not as files", ErrConfig, s.Name)
		}
		if len(s.Paths) == 0 {
			return fmt.Errorf("%w: source %q has no paths", ErrConfig, s.Name)
		}
		for _, p := range s.Paths {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("%w: source %q: path %q is not absolute", ErrConfig, s.Name, p)
			}
			if _, err := filepath.Match(p, ""); err != nil {
				return fmt.Errorf("%w: source %q: path %q: %v", ErrConfig, s.Name, p, err)
			}
		}
	}
	return nil
}
