// Package loginspect is the node agent's log inspection module: it follows the host's logs
// (syslog files, the systemd journal, container runtime and kubelet logs, the Kubernetes audit
// log, the audit daemon's log), decodes each line into typed fields (package decode), runs the
// log rules over them (package rules: YAML + CEL through internal/cel, stateful thresholds)
// and hands every detection to the agent as the one event envelope (model.Event, source host,
// module "loginspect"), optionally forwarding it to a SIEM as RFC 5424 syslog (package
// forward). Files are followed by package tail: every line is read once across rotation,
// truncation and restarts. docs/host-loginspect.md is the user documentation.
//
// The agent runs it as:
//
//	in, err := loginspect.New(loginspect.WithStateDir(dir), loginspect.WithHost(node),
//		loginspect.WithHandler(func(ctx context.Context, ev model.Event) error { return pipeline.Send(ctx, ev) }))
//	err = in.Run(ctx)
package loginspect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mamori/internal/host/loginspect/decode"
	"mamori/internal/host/loginspect/forward"
	"mamori/internal/host/loginspect/rules"
	"mamori/internal/host/loginspect/tail"
	"mamori/internal/model"
)

// Errors.
var (
	// ErrConfig: an option is invalid.
	ErrConfig = errors.New("loginspect: bad configuration")
	// ErrState: the state directory cannot be read or written.
	ErrState = errors.New("loginspect: state")
)

// Handler receives each event. It is called from one goroutine at a time, in detection order;
// while it runs, reading stops (back-pressure: a slow pipeline delays log reading, it does not
// lose events, since a line's offset is committed only after its events were handled). An
// error is logged and counted; the event is not retried.
type Handler func(ctx context.Context, ev model.Event) error

// ChannelHandler returns a Handler that sends events on ch, waiting while it is full (until
// the context ends).
func ChannelHandler(ch chan<- model.Event) Handler {
	return func(ctx context.Context, ev model.Event) error {
		select {
		case ch <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Option configures an Inspector.
type Option func(*options) error

type options struct {
	sources    []SourceConfig
	journal    *JournalConfig
	stateDir   string
	ruleFiles  []rules.Source
	host       string
	handler    Handler
	forwarder  *forward.Syslog
	startAtEnd bool
	logger     *slog.Logger
	tailOpts   []tail.Option
	location   *time.Location
	once       bool
}

// WithSources replaces the files followed (DefaultSources).
func WithSources(s ...SourceConfig) Option {
	return func(o *options) error {
		if err := validateSources(s); err != nil {
			return err
		}
		o.sources = append([]SourceConfig(nil), s...)
		return nil
	}
}

// WithJournal reads the systemd journal (nil: not; the default is DefaultJournal()).
func WithJournal(j *JournalConfig) Option {
	return func(o *options) error {
		if j != nil && j.Directory != "" && !filepath.IsAbs(j.Directory) {
			return fmt.Errorf("%w: journal directory %q is not absolute", ErrConfig, j.Directory)
		}
		o.journal = j
		return nil
	}
}

// WithStateDir keeps the files' offsets and the journal cursor in dir (created 0700), so that a
// restart resumes where the last run stopped. Without it every start is a first start.
func WithStateDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: state directory %q is not absolute", ErrConfig, dir)
		}
		o.stateDir = dir
		return nil
	}
}

// WithRules loads rule files after the built-in rules (they may extend the built-in lists,
// use their macros and disable built-in rules).
func WithRules(files ...rules.Source) Option {
	return func(o *options) error { o.ruleFiles = append(o.ruleFiles, files...); return nil }
}

// WithHost names the node in events whose log line names none (the agent's node name).
func WithHost(h string) Option {
	return func(o *options) error { o.host = h; return nil }
}

// WithHandler sets where events go (the agent's pipeline). Without one, events are only
// counted (and forwarded, with WithForwarder).
func WithHandler(h Handler) Option {
	return func(o *options) error { o.handler = h; return nil }
}

// WithForwarder also sends every event to a syslog collector (a SIEM); the Inspector runs it.
func WithForwarder(f *forward.Syslog) Option {
	return func(o *options) error { o.forwarder = f; return nil }
}

// WithStartAtEnd reads files and the journal from their end at the very first start (no state
// yet), so that installing the agent does not report years of history. Later starts resume.
func WithStartAtEnd(b bool) Option {
	return func(o *options) error { o.startAtEnd = b; return nil }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithTailOptions passes options to the file follower (poll interval, rotation grace ...).
func WithTailOptions(opts ...tail.Option) Option {
	return func(o *options) error { o.tailOpts = append(o.tailOpts, opts...); return nil }
}

// WithOnce makes Run read every file (and the journal) to its end once and return, instead of
// following them: replaying old logs, benchmarks. Offsets are saved as usual.
func WithOnce(b bool) Option {
	return func(o *options) error { o.once = b; return nil }
}

// WithLocation sets the zone of time stamps that carry none (RFC 3164, klog); time.Local by
// default.
func WithLocation(loc *time.Location) Option {
	return func(o *options) error { o.location = loc; return nil }
}

// drainGrace is how long the handler may block after Run's context ended.
const drainGrace = 5 * time.Second

// Stats are the inspector's counters.
type Stats struct {
	Lines           uint64            // lines read from files
	JournalEntries  uint64            // entries read from the journal
	Records         uint64            // records evaluated
	DecodeErrors    map[string]uint64 // lines not in their source's format, by format
	Partial         uint64            // container log parts waiting for their end
	Notices         map[string]uint64 // file notices by kind (rotated, truncated ...)
	Events          uint64            // events handed to the handler
	HandlerErrors   uint64
	RuleErrors      uint64
	JournalRestarts uint64
	JournalOverlong uint64
	JournalGaps     uint64
	mu              sync.Mutex
}

func (s *Stats) add(f func(*Stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// Snapshot is a copy of the counters and of the engines' and follower's own.
type Snapshot struct {
	Lines, JournalEntries, Records, Partial, Events, HandlerErrors, RuleErrors uint64
	JournalRestarts, JournalOverlong, JournalGaps                              uint64
	DecodeErrors, Notices                                                      map[string]uint64
	Rules                                                                      rules.Stats
	Tail                                                                       tail.Stats
	Forward                                                                    forward.Stats
}

// Inspector is the running module.
type Inspector struct {
	opts     options
	engine   *rules.Engine
	stats    Stats
	emitMu   sync.Mutex
	tailMu   sync.Mutex
	tailSnap tail.Stats
	ctx      context.Context
}

// New validates the options and loads the rules.
func New(opts ...Option) (*Inspector, error) {
	o := options{sources: DefaultSources(), journal: DefaultJournal(), logger: slog.New(slog.DiscardHandler), location: time.Local}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	cat, err := rules.LoadBuiltin(o.ruleFiles...)
	if err != nil {
		return nil, fmt.Errorf("loginspect: rules: %w", err)
	}
	eng, err := rules.NewEngine(cat)
	if err != nil {
		return nil, fmt.Errorf("loginspect: rules: %w", err)
	}
	in := &Inspector{opts: o, engine: eng}
	in.stats.DecodeErrors = map[string]uint64{}
	in.stats.Notices = map[string]uint64{}
	return in, nil
}

// Engine returns the rule engine (its catalog lists the rules loaded).
func (in *Inspector) Engine() *rules.Engine { return in.engine }

// Stats returns a snapshot of the counters.
func (in *Inspector) Stats() Snapshot {
	s := &in.stats
	s.mu.Lock()
	snap := Snapshot{Lines: s.Lines, JournalEntries: s.JournalEntries, Records: s.Records, Partial: s.Partial, Events: s.Events,
		HandlerErrors: s.HandlerErrors, RuleErrors: s.RuleErrors, JournalRestarts: s.JournalRestarts, JournalOverlong: s.JournalOverlong,
		JournalGaps: s.JournalGaps, DecodeErrors: map[string]uint64{}, Notices: map[string]uint64{}}
	for k, v := range s.DecodeErrors {
		snap.DecodeErrors[k] = v
	}
	for k, v := range s.Notices {
		snap.Notices[k] = v
	}
	s.mu.Unlock()
	snap.Rules = in.engine.Stats()
	in.tailMu.Lock()
	snap.Tail = in.tailSnap
	in.tailMu.Unlock()
	if in.opts.forwarder != nil {
		snap.Forward = in.opts.forwarder.Stats()
	}
	return snap
}

// Run follows the logs until ctx is done, then saves the state. It returns an error when the
// state cannot be read or written or nothing can be followed.
func (in *Inspector) Run(ctx context.Context) error {
	o := in.opts
	// The handler gets a context that outlives ctx by drainGrace: the lines read by the last
	// poll after ctx ends still deliver their events before their offsets are saved.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(drainGrace):
			case <-hctx.Done():
			}
		case <-hctx.Done():
		}
		hcancel()
	}()
	in.ctx = hctx
	if o.stateDir != "" {
		if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
			return fmt.Errorf("%w: %w", ErrState, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.forwarder != nil {
		fctx, fcancel := context.WithCancel(context.Background())
		defer fcancel()
		fdone := make(chan struct{})
		go func() { defer close(fdone); _ = o.forwarder.Run(fctx) }()
		defer func() {
			// Give queued events a moment to reach the collector before stopping.
			deadline := time.Now().Add(2 * time.Second)
			for o.forwarder.Stats().Queued > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			fcancel()
			<-fdone
		}()
	}
	if len(o.sources) > 0 {
		f, h, err := in.follower()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.once {
				if err := readOnce(runCtx, f, h); err != nil {
					errs <- fmt.Errorf("loginspect: files: %w", err)
				}
				in.tailMu.Lock()
				in.tailSnap = f.Stats()
				in.tailMu.Unlock()
				return
			}
			if err := f.Run(runCtx, h); err != nil {
				errs <- fmt.Errorf("loginspect: files: %w", err)
				cancel()
			}
			in.tailMu.Lock()
			in.tailSnap = f.Stats()
			in.tailMu.Unlock()
		}()
	}
	if o.journal != nil {
		jr := in.journalReader()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := jr.run(runCtx); err != nil {
				errs <- fmt.Errorf("loginspect: journal: %w", err)
				cancel()
			}
		}()
	}
	if o.once {
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		return errors.Join(all...)
	}
	wg.Add(1)
	go func() { // idle threshold keys expire even when no line arrives
		defer wg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case now := <-t.C:
				in.engine.Expire(now)
			}
		}
	}()
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// readOnce polls until a poll reads nothing new, then saves the state.
func readOnce(ctx context.Context, f *tail.Follower, h tail.Handler) error {
	if err := f.Start(); err != nil {
		return err
	}
	for ctx.Err() == nil {
		before := f.Stats()
		f.Poll(h)
		after := f.Stats()
		if after.Bytes == before.Bytes && after.Lines == before.Lines {
			break
		}
	}
	return f.Stop()
}

// follower builds the file follower over the sources.
func (in *Inspector) follower() (*tail.Follower, tail.Handler, error) {
	o := in.opts
	formats := decode.Formats()
	var specs []tail.Spec
	var decs []decode.Decoder
	var names []string
	for _, s := range o.sources {
		for _, p := range s.Paths {
			spec := tail.Spec{Pattern: p, WatchOnly: s.Format == FormatWatch}
			var d decode.Decoder
			if !spec.WatchOnly {
				d = formats[s.Format]
				if s.Format == "k8s-audit" {
					spec.MaxLineBytes = decode.MaxAuditLine
				}
				switch dd := d.(type) {
				case *decode.Syslog:
					dd.Location = o.location
				case *decode.Klog:
					dd.Location = o.location
				}
			}
			specs = append(specs, spec)
			decs = append(decs, d)
			names = append(names, s.Format)
		}
	}
	topts := []tail.Option{tail.WithStartAtEnd(o.startAtEnd), tail.WithLogger(o.logger)}
	if o.stateDir != "" {
		topts = append(topts, tail.WithState(filepath.Join(o.stateDir, "files.json")))
	}
	topts = append(topts, o.tailOpts...)
	f, err := tail.New(specs, topts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return f, &fileHandler{in: in, decoders: decs, formats: names}, nil
}

// fileHandler decodes the follower's lines and notices and evaluates them.
type fileHandler struct {
	in       *Inspector
	decoders []decode.Decoder
	formats  []string
	rec      decode.Record
}

func (h *fileHandler) Line(l tail.Line) {
	d := h.decoders[l.Spec]
	if d == nil {
		return
	}
	h.in.stats.add(func(s *Stats) { s.Lines++ })
	h.rec.Reset()
	err := d.Decode(l.Data, l.Path, &h.rec)
	switch {
	case errors.Is(err, decode.ErrIncomplete):
		h.in.stats.add(func(s *Stats) { s.Partial++ })
		return
	case err != nil:
		format := h.formats[l.Spec]
		h.in.stats.add(func(s *Stats) { s.DecodeErrors[format]++ })
	}
	h.in.evaluate(&h.rec)
}

func (h *fileHandler) Notice(n tail.Notice) {
	h.in.stats.add(func(s *Stats) { s.Notices[string(n.Kind)]++ })
	typ := ""
	switch n.Kind {
	case tail.NoticeTruncated, tail.NoticeShrunk:
		typ = decode.TypeLogTruncated
	case tail.NoticeRemoved:
		typ = decode.TypeLogRemoved
	case tail.NoticeLost:
		typ = decode.TypeLogLost
	default:
		return // rotations are the normal life of a log
	}
	h.rec.Reset()
	r := &h.rec
	r.Source, r.Format, r.Type, r.Path, r.FilePath = decode.SourceFile, "notice", typ, n.Path, n.Path
	r.SizeBefore, r.SizeAfter, r.Time, r.Host = n.OldSize, n.NewSize, n.Time, h.in.opts.host
	r.Message = fmt.Sprintf("%s %s (%d -> %d bytes)", n.Path, n.Kind, n.OldSize, n.NewSize)
	if n.Detail != "" {
		r.Message += ": " + n.Detail
	}
	r.Line = r.Message
	h.in.evaluate(r)
}

// journalReader builds the journal source.
func (in *Inspector) journalReader() *journalReader {
	o := in.opts
	dec := &decode.Journal{}
	var rec decode.Record
	jr := &journalReader{cfg: *o.journal, startAtEnd: o.startAtEnd, once: o.once, log: o.logger, stats: &in.stats}
	if o.stateDir != "" {
		jr.cursorPath = filepath.Join(o.stateDir, "journal.cursor")
	}
	jr.process = func(line []byte) string {
		in.stats.add(func(s *Stats) { s.JournalEntries++ })
		rec.Reset()
		if err := dec.Decode(line, "journal", &rec); err != nil {
			in.stats.add(func(s *Stats) { s.DecodeErrors["journal"]++ })
			return ""
		}
		in.evaluate(&rec)
		return dec.Cursor
	}
	return jr
}

// evaluate runs the rules over a record and hands the detections on.
func (in *Inspector) evaluate(r *decode.Record) {
	in.stats.add(func(s *Stats) { s.Records++ })
	ds, err := in.engine.Process(r)
	if err != nil {
		in.stats.add(func(s *Stats) { s.RuleErrors++ })
		in.opts.logger.Debug("log rule failed", "err", err)
	}
	if len(ds) == 0 {
		return
	}
	events := make([]model.Event, len(ds))
	for i := range ds {
		events[i] = ds[i].Event(in.opts.host)
	}
	in.emitMu.Lock()
	defer in.emitMu.Unlock()
	for _, ev := range events {
		in.stats.add(func(s *Stats) { s.Events++ })
		if in.opts.forwarder != nil {
			in.opts.forwarder.Send(ev)
		}
		if in.opts.handler == nil {
			continue
		}
		ctx := in.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		if err := in.opts.handler(ctx, ev); err != nil {
			in.stats.add(func(s *Stats) { s.HandlerErrors++ })
			in.opts.logger.Warn("log inspection event not delivered", "rule", ev.Rule.ID, "err", err)
		}
	}
}
