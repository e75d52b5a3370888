package integrity

import (
	"context"
	"log/slog"
	"strings"
)

// Object is one recorded system object that is not a monitored file: a
// package, user, group, sudoers entry, enabled service, listening port or
// kernel module.
type Object struct {
	Kind Kind
	Key  string
	// Attrs are compared; their names are documented per collector.
	Attrs map[string]string
}

// Env is what a collector reads from: the scan root and the proc
// directory. Collectors never read outside them.
type Env struct {
	// Root is the directory the host's files are under ("/" on a host).
	Root string
	// Proc is the proc file system ("/proc").
	Proc string
	// Key is the baseline's secret, for keyed digests of values that must
	// not be stored (shadow password hashes).
	Key []byte
	// Log receives what a collector skipped (nil: slog.Default()).
	Log *slog.Logger
}

func (e Env) logger() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

// Path returns the path on this machine of the host path p.
func (e Env) Path(p string) string {
	if e.Root == "/" || e.Root == "" {
		return p
	}
	return strings.TrimSuffix(e.Root, "/") + p
}

// Collector reads one kind of system object.
type Collector interface {
	// Name identifies the collector in events (Event.Rule) and errors.
	Name() string
	// Kind is the kind of the objects it returns.
	Kind() Kind
	// Collect reads the objects, each with Kind set to Kind(), keys unique.
	// A source that does not exist on this host (no rpm database) gives no
	// objects and no error.
	Collect(ctx context.Context, env Env) ([]Object, error)
	// Triggers are host paths whose change makes the Monitor collect again
	// ("/etc/passwd"); nil for collectors that are polled.
	Triggers() []string
	// Volatile lists attributes shown in events but not compared (a
	// listening process's pid changes with every restart).
	Volatile() []string
}

// DefaultCollectors is the explicit list of collectors a baseline
// records, in report order.
func DefaultCollectors() []Collector {
	return []Collector{
		PackageCollector{},
		UserCollector{},
		GroupCollector{},
		SudoersCollector{},
		ServiceCollector{},
		PortCollector{},
		ModuleCollector{},
	}
}

// Limits of what collectors read.
const (
	// maxSystemFile caps one file a collector reads (/etc/passwd,
	// /proc/net/tcp ...). A /proc/net/tcp with 100,000 sockets is about
	// 15 MiB; 64 MiB bounds a hostile or runaway file.
	maxSystemFile = 64 << 20
	// maxObjects caps the objects of one collector.
	maxObjects = 200_000
)
