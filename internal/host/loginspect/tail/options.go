package tail

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures a Follower.
type Option func(*options) error

// Defaults.
const (
	// DefaultPollInterval: four polls a second keep detection latency well under a second at
	// the cost of two stat calls per file per poll.
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultRescanInterval: globs are expanded every two seconds (new container logs appear
	// when pods start).
	DefaultRescanInterval = 2 * time.Second
	// DefaultRotateGrace: a rotated file is read until it has been idle this long. Writers reopen
	// their log within milliseconds of logrotate's signal; a minute also covers slow ones.
	DefaultRotateGrace = time.Minute
	// DefaultMaxLineBytes: syslog lines are at most 8 KiB by default in rsyslog, container log
	// lines are split at 16 KiB by the runtimes; 64 KiB keeps Kubernetes audit events whole.
	DefaultMaxLineBytes = 64 << 10
	// DefaultFingerprintBytes: the head hashed to identify a file; 1 KiB holds several
	// time-stamped lines.
	DefaultFingerprintBytes = 1024
	// DefaultMaxFiles bounds the open files (followed and draining).
	DefaultMaxFiles = 4096
	// DefaultSaveInterval: how often the state is saved while lines are read; it bounds what a
	// crash re-delivers.
	DefaultSaveInterval = time.Second
	// DefaultMaxReadPerPoll bounds what one poll reads from one file, so that a huge backlog in
	// one file does not starve the others.
	DefaultMaxReadPerPoll = 16 << 20
)

type options struct {
	poll, rescan, rotateGrace, saveInterval time.Duration
	maxLine                                 int
	fpBytes                                 int64
	maxFiles                                int
	maxReadPerPoll                          int64
	startAtEnd                              bool
	statePath                               string
	logger                                  *slog.Logger
	now                                     func() time.Time
}

func makeOptions(opts []Option) (options, error) {
	o := options{
		poll: DefaultPollInterval, rescan: DefaultRescanInterval, rotateGrace: DefaultRotateGrace,
		saveInterval: DefaultSaveInterval, maxLine: DefaultMaxLineBytes, fpBytes: DefaultFingerprintBytes,
		maxFiles: DefaultMaxFiles, maxReadPerPoll: DefaultMaxReadPerPoll, logger: slog.New(slog.DiscardHandler),
		now: time.Now,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: %s must be positive", ErrSpec, name)
	}
	return nil
}

// WithPollInterval sets how often files are checked (DefaultPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error { o.poll = d; return positive("poll interval", d) }
}

// WithRescanInterval sets how often globs are expanded again (DefaultRescanInterval).
func WithRescanInterval(d time.Duration) Option {
	return func(o *options) error { o.rescan = d; return positive("rescan interval", d) }
}

// WithRotateGrace sets how long a rotated file is read after its last growth (DefaultRotateGrace).
func WithRotateGrace(d time.Duration) Option {
	return func(o *options) error { o.rotateGrace = d; return positive("rotate grace", d) }
}

// WithSaveInterval sets how often the state is saved while reading (DefaultSaveInterval).
func WithSaveInterval(d time.Duration) Option {
	return func(o *options) error { o.saveInterval = d; return positive("save interval", d) }
}

// WithMaxLineBytes sets the longest line delivered whole (DefaultMaxLineBytes, at least 256).
func WithMaxLineBytes(n int) Option {
	return func(o *options) error {
		if n < 256 || n > 16<<20 {
			return fmt.Errorf("%w: max line bytes %d not in [256, 16 MiB]", ErrSpec, n)
		}
		o.maxLine = n
		return nil
	}
}

// WithFingerprintBytes sets how much of a file's head identifies it (DefaultFingerprintBytes).
func WithFingerprintBytes(n int) Option {
	return func(o *options) error {
		if n < 16 || n > 64<<10 {
			return fmt.Errorf("%w: fingerprint bytes %d not in [16, 64 KiB]", ErrSpec, n)
		}
		o.fpBytes = int64(n)
		return nil
	}
}

// WithMaxFiles bounds the files open at once (DefaultMaxFiles).
func WithMaxFiles(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: max files must be positive", ErrSpec)
		}
		o.maxFiles = n
		return nil
	}
}

// WithMaxReadPerPoll bounds the bytes one poll reads from one file (DefaultMaxReadPerPoll).
func WithMaxReadPerPoll(n int64) Option {
	return func(o *options) error {
		if n < readChunk {
			return fmt.Errorf("%w: max read per poll must be at least %d", ErrSpec, readChunk)
		}
		o.maxReadPerPoll = n
		return nil
	}
}

// WithStartAtEnd makes files found at the very first start (no state file yet) be read from
// their end, so an agent installed on a host with years of logs reports what happens from now
// on. Files that appear later, and every file once a state file exists, are read from 0.
func WithStartAtEnd(b bool) Option {
	return func(o *options) error { o.startAtEnd = b; return nil }
}

// WithState persists offsets and identities in path (created with mode 0600). Without it the
// follower starts afresh each time.
func WithState(path string) Option {
	return func(o *options) error { o.statePath = path; return nil }
}

// WithLogger sets the logger for skipped files and state problems.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}
