package container

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the Resolver, with their reasons.
const (
	// DefaultGrace is how long an exited container stays attributable:
	// events reach user space after the process that caused them, by up
	// to the ring buffer's backlog under a storm, and a container that
	// ran for a millisecond must still be named in all of them.
	DefaultGrace = 2 * time.Minute
	// DefaultMaxContainers bounds the containers kept (running plus exited
	// within the grace period): ten times the densest nodes' pod limit.
	DefaultMaxContainers = 16384
	// DefaultMaxProcs bounds the per-process cache of the /proc fallback
	// and the cgroup ids known to be the host's.
	DefaultMaxProcs = 65536
	// DefaultSettle is how long a lookup of a cgroup that is already gone
	// waits for the runtime's event stream to describe it (the container
	// exited before its first event was read). Paid once per such cgroup.
	DefaultSettle = 200 * time.Millisecond
	// DefaultResync is the period of a full re-list of every runtime,
	// which heals any event a runtime failed to deliver.
	DefaultResync = 5 * time.Minute
	// DefaultAskTimeout bounds one question to a runtime on the event path.
	DefaultAskTimeout = 2 * time.Second
	// partialRetry is how often a container the runtime could not describe
	// is asked about again.
	partialRetry = 5 * time.Second
	// maxBackoff caps the wait between reconnects to a runtime.
	maxBackoff = 5 * time.Second
)

// Option configures a Resolver.
type Option func(*options) error

type options struct {
	sources       []Source
	grace         time.Duration
	maxContainers int
	maxProcs      int
	settle        time.Duration
	resync        time.Duration
	askTimeout    time.Duration
	procRoot      string
	cgroup2       *Cgroup2
	log           *slog.Logger
}

func makeOptions(opts []Option) (options, error) {
	o := options{
		grace:         DefaultGrace,
		maxContainers: DefaultMaxContainers,
		maxProcs:      DefaultMaxProcs,
		settle:        DefaultSettle,
		resync:        DefaultResync,
		askTimeout:    DefaultAskTimeout,
		procRoot:      "/proc",
		log:           slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ErrInvalidOption says an Option was given a value it cannot take.
var ErrInvalidOption = errors.New("container: invalid option")

// WithSources sets the runtimes asked, in order (a cgroup path is given to
// the first that owns it). The list is explicit: a node without Docker
// gets no Docker source.
func WithSources(s ...Source) Option {
	return func(o *options) error {
		for _, src := range s {
			if src == nil {
				return fmt.Errorf("%w: nil source", ErrInvalidOption)
			}
		}
		o.sources = append(o.sources, s...)
		return nil
	}
}

// WithGrace sets how long an exited container stays attributable
// (default DefaultGrace).
func WithGrace(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: grace %s", ErrInvalidOption, d)
		}
		o.grace = d
		return nil
	}
}

// WithLimits sets the cache bounds: containers kept and per-process or
// host-cgroup entries (defaults DefaultMaxContainers, DefaultMaxProcs).
func WithLimits(containers, procs int) Option {
	return func(o *options) error {
		if containers < 1 || procs < 1 {
			return fmt.Errorf("%w: limits %d, %d", ErrInvalidOption, containers, procs)
		}
		o.maxContainers, o.maxProcs = containers, procs
		return nil
	}
}

// WithSettle sets how long a lookup of a vanished cgroup waits for the
// runtime's events (default DefaultSettle; 0 never waits).
func WithSettle(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: settle %s", ErrInvalidOption, d)
		}
		o.settle = d
		return nil
	}
}

// WithResync sets the period of full re-lists (default DefaultResync; 0
// re-lists only on reconnect).
func WithResync(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: resync %s", ErrInvalidOption, d)
		}
		o.resync = d
		return nil
	}
}

// WithProcRoot reads processes from another /proc (the host's, mounted
// into the agent's container at /host/proc).
func WithProcRoot(p string) Option {
	return func(o *options) error {
		if p == "" {
			return fmt.Errorf("%w: empty proc root", ErrInvalidOption)
		}
		o.procRoot = p
		return nil
	}
}

// WithCgroup2 sets the cgroup v2 mount point instead of finding it in
// /proc/self/mountinfo ("" for a pure v1 host).
func WithCgroup2(mount string) Option {
	return func(o *options) error {
		o.cgroup2 = &Cgroup2{Mount: mount}
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		o.log = l
		return nil
	}
}
