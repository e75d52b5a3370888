package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/drift"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/respond"
	"mamori/internal/runtime/rules"
	"mamori/internal/runtime/sensor"
)

// Runtime is the runtime security module: the sensor's events, attributed
// to their container (or the host), with drift decided on exec and the
// agent's context (ancestry, stdio kinds, the writer of an executed file,
// declared ports), through the rules of the rulesets in force; each match
// becomes an event, after its action (log, isolate, terminate) was carried
// out.
//
// Bounds: the sensor's reader only enqueues (a full queue drops and
// counts: the reader never waits, so the kernel ring buffer never backs up
// because of the rules); one worker evaluates in order (the process and
// writer tables need the order); actions run on their own workers; every
// table is bounded.
type Runtime struct {
	cfg  RuntimeConfig
	node string
	log  *slog.Logger

	rules  atomic.Pointer[ruleState]
	kinds  []event.Kind // what the sensor is asked for
	sens   *sensor.Sensor
	res    *container.Resolver
	drift  *drift.Detector
	ports  *portCache
	rports *runtimePorts
	acts   *actionRunner
	mitReq MitigationRequester
	local  *respond.Local
	// loadRep and loads forward containers' load events (loads.go).
	loadRep LoadReporter
	loads   *loadForwarder

	queue      chan *event.Event
	invalidate chan string // container IDs whose rule selection changed

	cancel context.CancelFunc
	wg     sync.WaitGroup
	sink   Sink

	received, dropped, processed, matches, exempted, emitDropped, evalErrors atomic.Uint64
	driftErrors, attrHost, attrContainer                                     atomic.Uint64
	worker                                                                   atomic.Pointer[workerStats]
	started                                                                  time.Time
}

var _ Module = (*Runtime)(nil)

// RuntimeOption configures NewRuntime.
type RuntimeOption func(*Runtime)

// WithMitigationRequester sets the server call that asks the cluster
// component to isolate or terminate a Kubernetes pod.
func WithMitigationRequester(m MitigationRequester) RuntimeOption {
	return func(r *Runtime) { r.mitReq = m }
}

// NewRuntime prepares the runtime module: the rules are loaded and
// checked here (a rule file with errors fails at once, naming file and
// line); the kernel side starts in Start.
func NewRuntime(cfg RuntimeConfig, node string, rc RuleConfig, log *slog.Logger, opts ...RuntimeOption) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := buildRules(rc)
	if err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, node: node, log: log.With("module", "runtime"),
		queue: make(chan *event.Event, cfg.Queue), invalidate: make(chan string, 1024)}
	for _, o := range opts {
		o(r)
	}
	r.rules.Store(st)
	r.kinds = sensorKinds(st.engine.Catalog())
	if r.loadRep != nil && !slices.Contains(r.kinds, event.KindLoad) {
		r.kinds = append(r.kinds, event.KindLoad)
	}
	r.worker.Store(&workerStats{})
	return r, nil
}

// SetRules replaces the rules and rulesets in force (the server's policy
// changed). On an error the previous rules stay in force.
func (r *Runtime) SetRules(rc RuleConfig) error {
	st, err := buildRules(rc)
	if err != nil {
		return err
	}
	missing := missingKinds(sensorKinds(st.engine.Catalog()), r.kinds)
	if len(missing) > 0 {
		r.log.Warn("new rules read event kinds the running sensor does not report; restart the agent for them", "kinds", missing)
	}
	r.rules.Store(st)
	r.log.Info("rules replaced", "origin", st.origin, "rulesets", st.names)
	return nil
}

func missingKinds(want, have []event.Kind) []event.Kind {
	var out []event.Kind
	for _, k := range want {
		if !slices.Contains(have, k) {
			out = append(out, k)
		}
	}
	return out
}

// Name implements Module.
func (r *Runtime) Name() string { return "runtime" }

// Config implements Module.
func (r *Runtime) Config() any {
	st := r.rules.Load()
	return struct {
		RuntimeConfig
		Rulesets []string `json:"rulesets"`
		Origin   string   `json:"rulesOrigin"`
	}{r.cfg, st.names, st.origin}
}

// Start implements Module: the sensor, attribution, the rules worker and
// the action workers.
func (r *Runtime) Start(ctx context.Context, sink Sink) error {
	r.sink = sink
	r.started = time.Now()
	mode, err := sensor.ParseMode(r.cfg.Sensor)
	if err != nil {
		return err
	}
	hooks, err := sensor.ParseSyscallHooks(r.cfg.SyscallHooks)
	if err != nil {
		return err
	}
	sopts := []sensor.Option{sensor.WithMode(mode), sensor.WithSyscallHooks(hooks), sensor.WithKinds(r.kinds...), sensor.WithLogger(r.log)}
	if r.cfg.RingBufferBytes > 0 {
		sopts = append(sopts, sensor.WithRingBufferSize(r.cfg.RingBufferBytes))
	}
	s, err := sensor.New(sopts...)
	if err != nil {
		return fmt.Errorf("runtime: sensor: %w", err)
	}
	r.sens = s
	missing := missingKinds(r.kinds, s.Kinds())
	if len(missing) > 0 {
		r.log.Warn("the sensor cannot report these kinds in its mode: rules over them do not fire", "mode", s.Mode(), "kinds", missing)
	}

	var sources []container.Source
	ctrdAddr, dockerSock := r.runtimeSockets()
	if dockerSock != "" {
		d, err := container.NewDocker(dockerSock)
		if err != nil {
			s.Close()
			return fmt.Errorf("runtime: %w", err)
		}
		sources = append(sources, d)
	}
	if ctrdAddr != "" {
		var skip []string
		if dockerSock != "" {
			skip = append(skip, "moby")
		}
		c, err := container.NewContainerd(ctrdAddr, skip...)
		if err != nil {
			s.Close()
			return fmt.Errorf("runtime: %w", err)
		}
		sources = append([]container.Source{c}, sources...)
	}
	ropts := []container.Option{container.WithSources(sources...), container.WithLogger(r.log), container.WithProcRoot(r.cfg.ProcRoot)}
	if r.cfg.Cgroup2 != "" {
		ropts = append(ropts, container.WithCgroup2(r.cfg.Cgroup2))
	}
	r.res, err = container.New(ropts...)
	if err != nil {
		s.Close()
		return fmt.Errorf("runtime: attribution: %w", err)
	}
	dopts := []drift.Option{drift.WithProcRoot(r.cfg.ProcRoot)}
	if r.cfg.HostRoot != "" {
		dopts = append(dopts, drift.WithHostRoot(r.cfg.HostRoot))
	}
	r.drift, err = drift.New(dopts...)
	if err != nil {
		s.Close()
		return fmt.Errorf("runtime: drift: %w", err)
	}
	r.rports, err = newRuntimePorts(ctrdAddr, dockerSock)
	if err != nil {
		s.Close()
		return fmt.Errorf("runtime: %w", err)
	}
	r.ports = newPortCache(r.rports, 16384)

	var localErr error
	if r.cfg.MitigationEnabled() {
		var lopts []respond.LocalOption
		if ctrdAddr != "" {
			lopts = append(lopts, respond.WithContainerd(ctrdAddr))
		}
		if dockerSock != "" {
			lopts = append(lopts, respond.WithDocker(dockerSock))
		}
		lopts = append(lopts, respond.WithProcRoot(r.cfg.ProcRoot))
		r.local, localErr = respond.NewLocal(lopts...)
		if localErr != nil {
			r.log.Warn("plain-host mitigation unavailable: isolate and terminate will fail", "error", localErr)
		}
	}
	var localEx respond.Executor
	if r.local != nil {
		localEx = r.local
	}
	r.acts = newActionRunner(localEx, localErr, &serverExecutor{req: r.mitReq, node: r.node},
		r.cfg.ActionQueue, r.emit, r.log)

	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(5)
	go func() { defer r.wg.Done(); _ = r.res.Run(ctx) }()
	go func() { defer r.wg.Done(); r.work(ctx) }()
	go func() { defer r.wg.Done(); r.acts.run(ctx) }()
	go func() { defer r.wg.Done(); r.acts.run(ctx) }()
	go func() { defer r.wg.Done(); r.followInventory(ctx) }()
	if r.loadRep != nil {
		r.loads = newLoadForwarder(r.loadRep, r.node, r.res.Inventory, r.log)
		r.loads.sweeper = newSweeper(r.cfg.ProcRoot)
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.loads.run(ctx) }()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := s.Run(ctx, r.enqueue)
		if err != nil && ctx.Err() == nil {
			r.log.Error("sensor stopped", "error", err)
		}
	}()
	return nil
}

// runtimeSockets resolves the configured runtime sockets: containerd by
// default at its stock socket, Docker when its socket exists.
func (r *Runtime) runtimeSockets() (ctrd, docker string) {
	ctrd = r.cfg.Containerd
	switch ctrd {
	case "":
		// The stock socket when it is there (an agent started before
		// containerd must name it in the configuration).
		if st, err := os.Stat(container.DefaultContainerdAddress); err == nil && st.Mode()&os.ModeSocket != 0 {
			ctrd = container.DefaultContainerdAddress
		}
	case "none":
		ctrd = ""
	}
	docker = r.cfg.Docker
	switch docker {
	case "":
		if st, err := os.Stat(container.DefaultDockerHost); err == nil && st.Mode()&os.ModeSocket != 0 {
			docker = container.DefaultDockerHost
		}
	case "none":
		docker = ""
	}
	return ctrd, docker
}

// Stop implements Module.
func (r *Runtime) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	var errs []error
	if r.sens != nil {
		errs = append(errs, r.sens.Close())
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("runtime: stop: %w", ctx.Err()))
	}
	if r.drift != nil {
		errs = append(errs, r.drift.Close())
	}
	if r.rports != nil {
		errs = append(errs, r.rports.close())
	}
	if r.local != nil {
		errs = append(errs, r.local.Close())
	}
	return errors.Join(errs...)
}

// enqueue is the sensor's callback: it never blocks.
func (r *Runtime) enqueue(e *event.Event) {
	r.received.Add(1)
	select {
	case r.queue <- e:
	default:
		r.dropped.Add(1)
	}
}

// Mode says which sensor runs ("ebpf" or "fallback"); "" before Start.
func (r *Runtime) Mode() sensor.Mode {
	if r.sens == nil {
		return ""
	}
	return r.sens.Mode()
}

// SensorInfo is the sensor as the heartbeat reports it: its mode, how its
// programs attach and the kinds the mode cannot report; nil before Start.
func (r *Runtime) SensorInfo() *api.AgentSensor {
	if r.sens == nil {
		return nil
	}
	m := r.sens.Mode()
	out := &api.AgentSensor{Mode: string(m), Hooks: sensorHooks(r.sens)}
	for _, k := range missingKinds(r.kinds, r.sens.Kinds()) {
		out.Missing = append(out.Missing, string(k))
	}
	return out
}

// sensorHooks says how a sensor's programs attach: the sensor's own word
// when it has one (a Hooks method), else what its mode attaches: the eBPF
// mode's programs are tp_btf (BTF-enabled raw tracepoints, link.AttachTracing
// in internal/runtime/sensor), the fallback reads the proc connector and
// fanotify.
func sensorHooks(s any) string {
	if h, ok := s.(interface{ Hooks() string }); ok {
		return h.Hooks()
	}
	m, ok := s.(interface{ Mode() sensor.Mode })
	if !ok {
		return ""
	}
	switch m.Mode() {
	case sensor.ModeEBPF:
		return "tp_btf"
	case sensor.ModeFallback:
		return "cn_proc+fanotify"
	}
	return ""
}

// Inventory returns what runs on the node and a channel closed at the next
// change (nil before Start).
func (r *Runtime) Inventory() (container.Inventory, <-chan struct{}) {
	if r.res == nil {
		return container.Inventory{}, nil
	}
	return r.res.Inventory()
}

// drainBurst bounds the events the worker takes in a row before it looks
// at its other inputs (container invalidations, the stats tick, ctx).
const drainBurst = 256

// workerStats are the worker's own tables, published for Stats.
type workerStats struct {
	Rules      rules.Stats `json:"rules"`
	Procs      int         `json:"procs"`
	ProcEvict  uint64      `json:"procsEvicted"`
	ProcReads  uint64      `json:"procReads"`
	Writers    int         `json:"writers"`
	WriteEvict uint64      `json:"writersEvicted"`
}

// work is the rules worker: events in sensor order.
func (r *Runtime) work(ctx context.Context) {
	procs := newProcTable(r.cfg.ProcRoot, r.cfg.MaxProcs)
	writers := newWriterTable(r.cfg.MaxWriters)
	st := r.rules.Load()
	ev := st.engine.NewEvaluator()
	var total rules.Stats // counts of evaluators replaced by a rules change
	publish := func() {
		s := total
		s.Events += ev.Stats.Events
		s.Evaluations += ev.Stats.Evaluations
		s.Matches += ev.Stats.Matches
		s.Errors += ev.Stats.Errors
		s.Audited += ev.Stats.Audited
		r.worker.Store(&workerStats{Rules: s, Procs: procs.procs.len(), ProcEvict: procs.procs.evicted,
			ProcReads: procs.procReads, Writers: writers.files.len(), WriteEvict: writers.files.evicted})
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	defer publish()
	in := &rules.Input{}
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-r.invalidate:
			ev.Invalidate(id)
		case <-tick.C:
			publish()
		case e := <-r.queue:
			if cur := r.rules.Load(); cur != st {
				total.Events += ev.Stats.Events
				total.Evaluations += ev.Stats.Evaluations
				total.Matches += ev.Stats.Matches
				total.Errors += ev.Stats.Errors
				total.Audited += ev.Stats.Audited
				st, ev = cur, cur.engine.NewEvaluator()
			}
			r.process(ctx, e, st, ev, in, procs, writers)
			// Under load, take what is queued without the select above
			// (one consumer: a receive with len > 0 does not block).
			for i := 0; i < drainBurst && len(r.queue) > 0; i++ {
				r.process(ctx, <-r.queue, st, ev, in, procs, writers)
			}
		}
	}
}

// process takes one event through attribution, the agent's tables, drift,
// the rules and the actions.
func (r *Runtime) process(ctx context.Context, e *event.Event, st *ruleState, ev *rules.Evaluator, in *rules.Input,
	procs *procTable, writers *writerTable) {
	r.processed.Add(1)
	info := r.res.Attribute(e)
	if info == nil {
		r.attrHost.Add(1)
	} else {
		r.attrContainer.Add(1)
	}
	if e.Kind == event.KindLoad {
		// No rule reads loads: they go to the server (in use at run time).
		if r.loads != nil {
			r.loads.observe(e, info)
		}
		return
	}
	*in = rules.Input{Event: e}
	in.Ctx.Ancestors = procs.observe(e, info != nil)
	writers.observe(e)
	if e.Kind == event.KindExec {
		if info != nil {
			if _, err := r.drift.Apply(e, info); err != nil {
				r.driftErrors.Add(1)
			}
		}
		in.Ctx.ExeWriter = writers.writer(e)
		// read from /proc only when a rule asks (the reverse-shell rule, for shells)
		root, pid, start := r.cfg.ProcRoot, e.Process.PID, e.Process.StartTime
		in.Ctx.Stdio = func() (string, string) { return stdioKinds(root, pid, start) }
	}
	if info != nil {
		if e.Kind == event.KindListen {
			in.Ctx.DeclaredPorts = r.ports.get(ctx, info)
		} else {
			in.Ctx.DeclaredPorts, _ = r.ports.known(info.ID)
		}
	}
	matches, err := ev.Eval(in)
	if err != nil {
		r.evalErrors.Add(1)
	}
	for _, m := range matches {
		r.matches.Add(1)
		r.matched(m, in, info, st)
	}
}

// matched turns one match into its event, with its action.
func (r *Runtime) matched(m rules.Match, in *rules.Input, info *container.Info, st *ruleState) {
	action := m.Action
	if st.policy != nil {
		hit := &policy.RuntimeHit{Ruleset: rulesetName(st, m.Ruleset), Rule: m.Rule.ID, Action: m.Action}
		if info != nil {
			hit.Image = info.Image
			if info.Pod != "" {
				hit.Namespace, hit.PodLabels = info.Namespace, info.Labels
			}
		}
		d := st.policy.Evaluate(hit, time.Now())
		if len(d.Exempted) > 0 && len(d.Violations) == 0 {
			r.exempted.Add(1)
			return
		}
	}
	me := m.ModelEvent(in, newEventID())
	if in.Event.Drift {
		me.Details = map[string]string{"drift": "true"}
	}
	if st.policy != nil {
		// The policy decided which rulesets run here: the event names it
		// (and its version on the server), and the ruleset in details.
		if me.Details == nil {
			me.Details = map[string]string{}
		}
		me.Details["ruleset"] = rulesetName(st, m.Ruleset)
		me.Rule.Policy, me.Rule.PolicyVersion = st.policy.Name(), st.policyVersion
	}
	switch action {
	case model.ActionIsolate, model.ActionTerminate:
		if !r.cfg.MitigationEnabled() {
			r.acts.disabled.Add(1)
			me.Action = model.ActionLog
			if me.Details == nil {
				me.Details = map[string]string{}
			}
			me.Details["actionConfigured"] = string(action)
			me.ActionError = string(action) + " not carried out: mitigation is off in the agent's configuration"
			r.emit(me)
			return
		}
		r.acts.submit(actionJob{ev: me, action: action, info: info})
	default:
		me.Action = model.ActionLog
		r.emit(me)
	}
}

// rulesetName is the policy's name of an engine ruleset.
func rulesetName(st *ruleState, engineName string) string {
	if n, ok := st.refName[engineName]; ok {
		return n
	}
	return engineName
}

func (r *Runtime) emit(e model.Event) {
	if !r.sink.Emit(e) {
		r.emitDropped.Add(1)
	}
}

// followInventory keeps the caches in step with the containers: when a
// container stops running, its drift layers, declared ports and rule
// selection are forgotten (after a delay: its last events may still be in
// the queue).
func (r *Runtime) followInventory(ctx context.Context) {
	const forgetDelay = 10 * time.Second
	type pending struct {
		key container.Key
		at  time.Time
	}
	var queue []pending
	prev := map[container.Key]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		inv, changed := r.res.Inventory()
		now := make(map[container.Key]bool, len(inv.Containers))
		for _, c := range inv.Containers {
			k := container.Key{Runtime: c.Runtime, Namespace: c.RuntimeNamespace, ID: c.ID}
			if c.Runtime == container.RuntimeCRI {
				k.Runtime = container.RuntimeContainerd // one id space (see container.Key)
			}
			now[k] = true
		}
		for k := range prev {
			if !now[k] {
				queue = append(queue, pending{k, time.Now().Add(forgetDelay)})
			}
		}
		prev = now
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				break wait
			case t := <-tick.C:
				i := 0
				for ; i < len(queue) && !queue[i].at.After(t); i++ {
					k := queue[i].key
					if now[k] {
						continue // running again (restarted)
					}
					r.drift.Forget(k)
					r.ports.forget(k.ID)
					select {
					case r.invalidate <- k.ID:
					default: // the worker is busy: its cache is bounded anyway
					}
				}
				queue = queue[i:]
			}
		}
	}
}

// RuntimeStats are the runtime module's counters.
type RuntimeStats struct {
	Mode         sensor.Mode  `json:"mode"`
	Kinds        []event.Kind `json:"kinds"`
	MissingKinds []event.Kind `json:"missingKinds,omitempty"`
	Rulesets     []string     `json:"rulesets"`
	RulesOrigin  string       `json:"rulesOrigin"`
	Hooks        string       `json:"hooks,omitempty"`
	Uptime       string       `json:"uptime"`

	Sensor sensor.Stats `json:"sensor"`
	// Received: events the sensor delivered; Dropped: of those, the ones
	// the full queue could not take (never evaluated).
	Received  uint64 `json:"received"`
	Dropped   uint64 `json:"dropped"`
	Queued    int    `json:"queued"`
	QueueCap  int    `json:"queueCap"`
	Processed uint64 `json:"processed"`
	// Host and Container count attributions.
	Host      uint64 `json:"host"`
	Container uint64 `json:"container"`
	Matches   uint64 `json:"matches"`
	Exempted  uint64 `json:"exempted"` // matches a policy exception waived
	// EmitDropped counts events the outputs' full queue dropped.
	EmitDropped uint64 `json:"emitDropped"`
	EvalErrors  uint64 `json:"evalErrors"`
	DriftErrors uint64 `json:"driftErrors"`
	PortErrors  uint64 `json:"portErrors"`

	Worker      workerStats     `json:"worker"`
	Actions     ActionStats     `json:"actions"`
	Attribution container.Stats `json:"attribution"`
	Drift       drift.Stats     `json:"drift"`
	// Loads are the load events forwarded to the server (nil: not asked for).
	Loads *LoadStats `json:"loads,omitempty"`
}

// Stats implements Module (a RuntimeStats).
func (r *Runtime) Stats() any { return r.RuntimeStats() }

// RuntimeStats returns the counters.
func (r *Runtime) RuntimeStats() RuntimeStats {
	st := r.rules.Load()
	s := RuntimeStats{Kinds: r.kinds, Rulesets: st.names, RulesOrigin: st.origin,
		Received: r.received.Load(), Dropped: r.dropped.Load(), Queued: len(r.queue), QueueCap: cap(r.queue),
		Processed: r.processed.Load(), Host: r.attrHost.Load(), Container: r.attrContainer.Load(),
		Matches: r.matches.Load(), Exempted: r.exempted.Load(), EmitDropped: r.emitDropped.Load(),
		EvalErrors: r.evalErrors.Load(), DriftErrors: r.driftErrors.Load(), Worker: *r.worker.Load()}
	if !r.started.IsZero() {
		s.Uptime = time.Since(r.started).Round(time.Second).String()
	}
	if r.sens != nil {
		s.Mode = r.sens.Mode()
		s.Hooks = sensorHooks(r.sens)
		s.MissingKinds = missingKinds(r.kinds, r.sens.Kinds())
		if ss, err := r.sens.Stats(); err == nil {
			s.Sensor = ss
		}
	}
	if r.acts != nil {
		s.Actions = r.acts.stats()
	}
	if r.res != nil {
		s.Attribution = r.res.Stats()
	}
	if r.drift != nil {
		s.Drift = r.drift.Stats()
	}
	if r.loads != nil {
		ls := r.loads.stats()
		s.Loads = &ls
	}
	if r.ports != nil {
		r.ports.mu.Lock()
		s.PortErrors = r.ports.errors
		r.ports.mu.Unlock()
	}
	return s
}
