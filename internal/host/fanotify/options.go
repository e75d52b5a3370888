package fanotify

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

const (
	// DefaultBudget is how long a handler may take on one permission event
	// before the listener answers the timeout verdict itself. Two seconds
	// covers a clamd scan of a few tens of MiB on a loaded host while
	// keeping the worst case a user can notice short; engines needing more
	// answer from their cache on the next open.
	DefaultBudget = 2 * time.Second
	// DefaultWorkers is how many events are handled at once. Engines are
	// I/O bound (clamd over a socket, hashing from page cache), so a few
	// more than the cores of a small node.
	DefaultWorkers = 4
	// DefaultQueue bounds the events waiting for a worker. Each holds an
	// open file descriptor, so this (plus workers and one read batch) bounds
	// the descriptors the listener holds; far below the kernel's default
	// fs.fanotify.max_queued_events (16384).
	DefaultQueue = 1024
	// readBufSize is one read(2) of the group: 24-byte events without info
	// records, so up to ~680 events a batch.
	readBufSize = 16 << 10
	// closeGrace is how long Run waits, after closing the group, for
	// handlers still running (their contexts are cancelled).
	closeGrace = 5 * time.Second
)

// Option configures a Listener.
type Option func(*options) error

type options struct {
	class           Class
	workers         int
	queue           int
	budget          time.Duration
	timeoutVerdict  Verdict
	overflowVerdict Verdict
	excludeExe      map[string]bool
	onOverflow      func()
	logger          *slog.Logger
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{class: ClassContent, workers: DefaultWorkers, queue: DefaultQueue,
		budget: DefaultBudget, timeoutVerdict: Allow, overflowVerdict: Allow,
		excludeExe: map[string]bool{}, logger: slog.Default()}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithClass sets the group's class (default ClassContent, which permission
// events need).
func WithClass(c Class) Option {
	return func(o *options) error {
		if c != ClassNotif && c != ClassContent && c != ClassPreContent {
			return fmt.Errorf("fanotify: unknown class %d", c)
		}
		o.class = c
		return nil
	}
}

// WithWorkers sets how many events are handled concurrently (1…256).
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("fanotify: workers %d out of range [1, 256]", n)
		}
		o.workers = n
		return nil
	}
}

// WithQueue bounds the events waiting for a worker (1…16384).
func WithQueue(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 16384 {
			return fmt.Errorf("fanotify: queue %d out of range [1, 16384]", n)
		}
		o.queue = n
		return nil
	}
}

// WithBudget sets the per-event time budget (1 ms … 10 min): a permission
// event not decided by the handler within it is answered with the timeout
// verdict. The budget runs from the moment the event is read, so time spent
// waiting in the queue counts.
func WithBudget(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Millisecond || d > 10*time.Minute {
			return fmt.Errorf("fanotify: budget %v out of range [1ms, 10m]", d)
		}
		o.budget = d
		return nil
	}
}

// WithTimeoutVerdict sets the answer given when the budget runs out
// (default Allow: fail-open, so a slow engine cannot hang the host). Deny
// makes the listener fail closed for files it could not decide in time.
func WithTimeoutVerdict(v Verdict) Option {
	return func(o *options) error {
		if v != Allow && v != Deny {
			return fmt.Errorf("fanotify: bad timeout verdict %d", v)
		}
		o.timeoutVerdict = v
		return nil
	}
}

// WithOverflowVerdict sets the answer given at once when the handler queue
// is full (default Allow).
func WithOverflowVerdict(v Verdict) Option {
	return func(o *options) error {
		if v != Allow && v != Deny {
			return fmt.Errorf("fanotify: bad overflow verdict %d", v)
		}
		o.overflowVerdict = v
		return nil
	}
}

// WithExcludeExe adds executables (absolute paths, as /proc/PID/exe shows
// them) whose events are answered Allow at once and never reach the
// handler. The listener's own executable is always excluded.
func WithExcludeExe(paths ...string) Option {
	return func(o *options) error {
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("fanotify: excluded executable %q is not an absolute path", p)
			}
			o.excludeExe[filepath.Clean(p)] = true
		}
		return nil
	}
}

// WithOverflowFunc sets a function called (from the reading goroutine;
// it must not block) when the kernel reports FAN_Q_OVERFLOW: notification
// events were lost, and a watcher must rescan.
func WithOverflowFunc(f func()) Option {
	return func(o *options) error { o.onOverflow = f; return nil }
}

// WithLogger sets the logger for warnings (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("fanotify: nil logger")
		}
		o.logger = l
		return nil
	}
}
