// Package agent is mamori agent, the node component (issue 11): the
// runtime security module (eBPF sensor or its fallback, attribution to
// containers and pods, drift detection, ATT&CK rules, isolate and
// terminate) and, as modules of the same agent and event pipeline, the
// host protection modules (issue 12). Events leave in the one envelope
// (model.Event): to mamori server over TLS through the typed API client,
// through a bounded on-disk spool (at least once), and/or as JSON lines to
// a file or stdout when the agent runs alone. docs/agent.md describes the
// configuration, the pipeline, its bounds and the deployment.
//
// The agent never imports the server side: it talks to the server through
// internal/api/client only (internal/archtest keeps it so).
package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/agent/spool"
	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/compliance/node"
	"mamori/internal/model"
	"mamori/internal/runtime/container"
)

// ServerAPI is what the agent calls on mamori server; *client.Client
// implements it.
type ServerAPI interface {
	RegisterAgent(ctx context.Context, r api.AgentReport) (api.Agent, error)
	AgentHeartbeat(ctx context.Context, r api.AgentReport) (api.Agent, error)
	AgentConfig(ctx context.Context) (api.ComponentConfig, error)
	IngestEvents(ctx context.Context, events []model.Event) (api.EventIngestResult, error)
}

var _ ServerAPI = (*client.Client)(nil)

// InventoryReporter is the server call that takes the node's running
// containers (issue 11 item 7: the runtime vulnerability view of hosts
// without Kubernetes): PUT /api/v1/agents/containers. *client.Client
// implements it.
type InventoryReporter interface {
	ReportContainers(ctx context.Context, r api.NodeContainersReport) (api.NodeContainersResult, error)
}

var _ InventoryReporter = (*client.Client)(nil)

// NodeContainersOf converts the resolver's inventory into the report of
// the node's running containers (pod sandboxes left out: the pause
// container is not a workload).
func NodeContainersOf(node string, inv container.Inventory) api.NodeContainersReport {
	out := api.NodeContainersReport{Node: node, Containers: make([]api.NodeContainer, 0, len(inv.Containers))}
	for _, c := range inv.Containers {
		if c.Sandbox {
			continue
		}
		ns := c.Namespace
		if ns == "" {
			ns = c.RuntimeNamespace
		}
		out.Containers = append(out.Containers, api.NodeContainer{ID: c.ID, Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest,
			Runtime: c.Runtime, Namespace: ns, Pod: c.Pod, Started: c.Started})
	}
	return out
}

// Agent is the node component.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	version  string
	host     string
	retryMin time.Duration // first delivery backoff

	server    ServerAPI          // nil: no server
	inventory node.InventoryFunc // WithHostInventory; nil: in process
	modules   []Module
	extra     []Module // WithModules
	runtime   *Runtime

	events  chan model.Event
	spool   *spool.Spool
	out     io.Writer // the events file / stdout; nil: none
	outFile *os.File

	emitted, emitDropped, invalid, written, writeErrors, spoolErrors atomic.Uint64
	delivery                                                         deliveryStats
	srvMu                                                            sync.Mutex
	srvState                                                         ServerState

	// The rulesets the server gives: the cluster policy's, else the host
	// group's (serverRules in rulesrc.go).
	rulesMu sync.Mutex
	rules   serverRules
}

// Option configures New.
type Option func(*Agent) error

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(a *Agent) error { a.log = l; return nil }
}

// WithVersion sets the version reported to the server.
func WithVersion(v string) Option {
	return func(a *Agent) error { a.version = v; return nil }
}

// WithServer sets the server client (instead of the one the
// configuration's server section makes).
func WithServer(s ServerAPI) Option {
	return func(a *Agent) error { a.server = s; return nil }
}

// WithOutput sets where JSON lines go (instead of the configuration's
// events file).
func WithOutput(w io.Writer) Option {
	return func(a *Agent) error { a.out = w; return nil }
}

// WithModules adds modules (the host protection modules of issue 12, or a
// test's) after the runtime module.
func WithModules(m ...Module) Option {
	return func(a *Agent) error { a.extra = append(a.extra, m...); return nil }
}

// New prepares an agent: the configuration is checked, the rules loaded
// (errors name the file and line), the outputs and the server client made.
// Run starts it.
func New(cfg Config, opts ...Option) (*Agent, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler), version: "dev", retryMin: deliverRetryMin}
	a.host, _ = os.Hostname()
	for _, o := range opts {
		if err := o(a); err != nil {
			return nil, err
		}
	}
	if a.server == nil && cfg.Server.URL != "" {
		c, err := NewClient(cfg.Server, a.version, a.log)
		if err != nil {
			return nil, err
		}
		a.server = c
	}
	if cfg.RuntimeEnabled() {
		var rc RuleConfig
		if a.server == nil {
			var err error
			if rc, err = LoadRuleConfig(cfg.Modules.Runtime.Rules, cfg.Modules.Runtime.Policy); err != nil {
				return nil, err
			}
		} else {
			// With a server the rulesets come from the policy it assigns
			// (fetched after registration); until then the default ruleset.
			rc = RuleConfig{Origin: "default (until the server's policy is loaded)"}
		}
		var ropts []RuntimeOption
		if m, ok := a.server.(MitigationRequester); ok {
			ropts = append(ropts, WithMitigationRequester(m))
		}
		if l, ok := a.server.(LoadReporter); ok {
			ropts = append(ropts, WithLoadReporter(l))
		}
		rt, err := NewRuntime(cfg.Modules.Runtime, cfg.Node, rc, a.log, ropts...)
		if err != nil {
			return nil, err
		}
		a.runtime = rt
		a.modules = append(a.modules, rt)
	}
	a.modules = append(a.modules, a.extra...)
	if len(a.modules) == 0 {
		return nil, fmt.Errorf("%w: every module is off", ErrConfig)
	}
	a.events = make(chan model.Event, cfg.Events.Queue)
	// The outputs are opened here (an unwritable events file or spool
	// fails at once) and closed when Run returns.
	if err := a.openOutputs(); err != nil {
		return nil, err
	}
	return a, nil
}

// NewClient makes the typed API client from the server section (the
// agent's own, unless WithServer gives one; the command shares it with the
// host modules).
func NewClient(sc ServerConfig, version string, log *slog.Logger) (*client.Client, error) {
	token := os.Getenv(client.EnvToken)
	if sc.TokenFile != "" {
		b, err := os.ReadFile(sc.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("agent token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("%w: server.url is set but there is no token (server.tokenFile or $%s)", ErrConfig, client.EnvToken)
	}
	opts := []client.Option{client.WithUserAgent("mamori-agent/" + version), client.WithLogger(log)}
	if sc.CAFile != "" {
		opts = append(opts, client.WithCAFile(sc.CAFile))
	}
	if sc.CertSHA256 != "" {
		opts = append(opts, client.WithPinnedCertificate(sc.CertSHA256))
	}
	c, err := client.New(sc.URL, token, opts...)
	if err != nil {
		return nil, fmt.Errorf("agent: server: %w", err)
	}
	return c, nil
}

// Runtime returns the runtime module (nil when it is off).
func (a *Agent) Runtime() *Runtime { return a.runtime }

// Emit implements Sink: it stamps the event and queues it for the outputs,
// never blocking.
func (a *Agent) Emit(e model.Event) bool {
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Node == "" {
		e.Node = a.cfg.Node
	}
	if e.Host == "" {
		e.Host = a.host
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case a.events <- e:
		a.emitted.Add(1)
		return true
	default:
		a.emitDropped.Add(1)
		return false
	}
}

var _ Sink = (*Agent)(nil)

// Run runs the agent until ctx ends: outputs, server delivery, modules.
// On the way out it stops the modules, writes or spools every event they
// emitted, and closes the outputs.
func (a *Agent) Run(ctx context.Context) error {
	outDone := make(chan struct{})
	outCtx, stopOut := context.WithCancel(context.Background())
	go func() { defer close(outDone); a.writeLoop(outCtx) }()

	started := []Module{}
	var startErr error
	for _, m := range a.modules {
		if err := m.Start(ctx, a); err != nil {
			startErr = fmt.Errorf("module %s: %w", m.Name(), err)
			break
		}
		started = append(started, m)
	}
	if a.runtime != nil && a.runtime.sens != nil {
		a.log.Info("agent started", "node", a.cfg.Node, "sensor", a.runtime.Mode(), "syscallHooks", a.runtime.sens.SyscallHooks(),
			"rulesets", a.runtime.rules.Load().names, "server", a.cfg.Server.URL != "")
	}

	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	if startErr == nil {
		if a.server != nil {
			bg.Add(3)
			go func() { defer bg.Done(); a.deliverLoop(bgCtx) }()
			go func() { defer bg.Done(); a.serverLoop(bgCtx) }()
			go func() { defer bg.Done(); a.postureLoop(bgCtx, started) }()
		}
		if a.cfg.StatsListen != "" {
			srv, err := a.serveStats(bgCtx)
			if err != nil {
				startErr = err
			} else {
				bg.Add(1)
				go func() { defer bg.Done(); <-bgCtx.Done(); srv.Close() }()
			}
		}
		if startErr == nil {
			<-ctx.Done()
		}
	}

	// Shut down: modules first (no new events), then the outputs drain.
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", started[i].Name(), err))
		}
	}
	stopOut()
	<-outDone
	// A last delivery attempt of what is spooled, bounded.
	stopBg()
	bg.Wait()
	if a.server != nil && a.spool != nil {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		a.deliverPending(dctx)
		dcancel()
	}
	errs = append(errs, a.closeOutputs())
	if startErr != nil {
		return errors.Join(append([]error{startErr}, errs...)...)
	}
	a.log.Info("agent stopped", "emitted", a.emitted.Load(), "dropped", a.emitDropped.Load())
	return errors.Join(errs...)
}

func (a *Agent) openOutputs() error {
	if a.out == nil {
		switch f := a.cfg.Events.File; {
		case f == "-" || (f == "" && a.server == nil):
			a.out = os.Stdout
		case f != "":
			file, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return fmt.Errorf("events file: %w", err)
			}
			a.outFile, a.out = file, file
		}
	}
	if a.server != nil {
		sp, err := spool.Open(spool.Options{Dir: a.cfg.Spool.Dir, MaxBytes: a.cfg.Spool.MaxBytes,
			SegmentBytes: a.cfg.Spool.SegmentBytes, Fsync: a.cfg.Spool.Fsync,
			FsyncInterval: a.cfg.Spool.FsyncInterval, Logger: a.log})
		if err != nil {
			if a.outFile != nil {
				a.outFile.Close()
			}
			return err
		}
		a.spool = sp
	}
	return nil
}

func (a *Agent) closeOutputs() error {
	var errs []error
	if a.spool != nil {
		errs = append(errs, a.spool.Close())
	}
	if a.outFile != nil {
		errs = append(errs, a.outFile.Close())
	}
	return errors.Join(errs...)
}

// writeLoop takes events off the queue in batches: each is encoded once,
// written as a JSON line and appended to the spool. When ctx ends it
// drains what is queued.
func (a *Agent) writeLoop(ctx context.Context) {
	var bw *bufio.Writer
	if a.out != nil {
		bw = bufio.NewWriterSize(a.out, 64<<10)
	}
	batch := make([]model.Event, 0, 256)
	payloads := make([][]byte, 0, 256)
	flush := func() {
		payloads = payloads[:0]
		for i := range batch {
			e := &batch[i]
			b, err := json.Marshal(e)
			if err != nil {
				a.invalid.Add(1)
				continue
			}
			if bw != nil {
				bw.Write(b)
				if err := bw.WriteByte('\n'); err != nil {
					a.writeErrors.Add(1)
				} else {
					a.written.Add(1)
				}
			}
			if a.spool != nil {
				if err := e.Validate(); err != nil {
					// The server would refuse it: count and keep it local.
					a.invalid.Add(1)
					a.log.Warn("event fails validation: not sent to the server", "id", e.ID, "rule", e.Rule.ID, "error", err)
					continue
				}
				payloads = append(payloads, b)
			}
		}
		if bw != nil {
			if err := bw.Flush(); err != nil {
				a.writeErrors.Add(1)
				a.log.Error("events output", "error", err)
			}
		}
		if len(payloads) > 0 {
			if err := a.spool.Append(payloads...); err != nil {
				a.spoolErrors.Add(uint64(len(payloads)))
				a.log.Error("spool append", "error", err)
			}
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-a.events:
			batch = append(batch, e)
		fill:
			for len(batch) < cap(batch) {
				select {
				case e := <-a.events:
					batch = append(batch, e)
				default:
					break fill
				}
			}
			flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-a.events:
					batch = append(batch, e)
					if len(batch) == cap(batch) {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// hostReport is what the agent reports of itself at registration and in
// heartbeats.
func (a *Agent) hostReport() api.AgentReport {
	r := api.AgentReport{Node: a.cfg.Node, Hostname: a.host, Version: a.version, OS: runtime.GOOS, Arch: runtime.GOARCH}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if a.runtime != nil {
		r.Sensor = a.runtime.SensorInfo()
	}
	return r
}
