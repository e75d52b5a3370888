package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
	"mamori/internal/runtime/respond"
)

// Actions: a rule match whose action is isolate or terminate is carried
// out before its event is emitted, so the event records what was done
// (action) or why it could not be (actionError). Actions run on workers of
// their own, behind a bounded queue, so a slow runtime never stalls the
// rules; a full queue records the action as failed (counted).
//
// Which executor: a Kubernetes container (runtime cri) is acted on by the
// cluster component, asked through the server (the agent holds no
// Kubernetes write permission, and kubelet would restart a container the
// agent killed); any other container by the Local executor of
// internal/runtime/respond (nftables in its network namespace, the
// runtime's kill).

// MitigationRequester is the server call of the Kubernetes executor (POST
// /api/v1/agents/mitigations): the server queues the request for the
// cluster component, which isolates (quarantine NetworkPolicy) or deletes
// the pod and records the outcome. *client.Client implements it. The
// server accepts requests only from an agent token bound to a cluster, for
// a pod its inventory places on the agent's node.
type MitigationRequester interface {
	RequestMitigation(ctx context.Context, r api.MitigationRequest) (api.Mitigation, error)
}

var _ MitigationRequester = (*client.Client)(nil)

// errNoServer says a Kubernetes pod cannot be acted on without a server.
const errNoServer = "a Kubernetes pod is isolated or terminated by the cluster component, asked through mamori server; this agent has no server"

// serverExecutor is the Kubernetes executor: it asks the server.
type serverExecutor struct {
	req  MitigationRequester // nil: not available
	node string
}

var _ respond.Executor = (*serverExecutor)(nil)

func (s *serverExecutor) Name() string { return "server" }

func (s *serverExecutor) Isolate(ctx context.Context, t respond.Target) respond.Result {
	return s.do(ctx, model.ActionIsolate, t)
}

func (s *serverExecutor) Unisolate(_ context.Context, _ respond.Target) respond.Result {
	return respond.Result{Action: respond.ActionUnisolate, Executor: s.Name(), At: time.Now(),
		Error: "un-isolating a pod is done by deleting its quarantine NetworkPolicy through the server"}
}

func (s *serverExecutor) Terminate(ctx context.Context, t respond.Target) respond.Result {
	return s.do(ctx, model.ActionTerminate, t)
}

func (s *serverExecutor) do(ctx context.Context, a model.Action, t respond.Target) respond.Result {
	start := time.Now()
	r := respond.Result{Action: a, Executor: s.Name(), At: start}
	if s.req == nil {
		r.Error = errNoServer
		return r
	}
	if t.Pod == "" || t.PodNamespace == "" {
		r.Error = "the container belongs to no known pod"
		return r
	}
	evID, _ := ctx.Value(eventIDKey{}).(string)
	rule, _ := ctx.Value(ruleIDKey{}).(string)
	m, err := s.req.RequestMitigation(ctx, api.MitigationRequest{EventID: evID, Action: a, Node: s.node,
		Namespace: t.PodNamespace, Pod: t.Pod, Container: t.ID, Rule: rule})
	r.Took = time.Since(start)
	if err != nil {
		r.Error = "the server refused the request: " + err.Error()
		return r
	}
	// The agent's part is done: the server queued the request; the
	// cluster component applies it and records the outcome (listed by
	// GET /api/v1/mitigations).
	r.Done = true
	r.Detail = fmt.Sprintf("requested from the server: mitigation %d (%s) of pod %s/%s, applied by the cluster component",
		m.ID, m.State, t.PodNamespace, t.Pod)
	return r
}

type eventIDKey struct{}
type ruleIDKey struct{}

// actionJob is one match waiting for its action.
type actionJob struct {
	ev     model.Event
	action model.Action
	info   *container.Info
}

// actionKey names an action on a container, for the result cache.
type actionKey struct {
	runtime, ns, id string
	action          model.Action
}

// actionCacheTTL: a container isolated or terminated is not acted on again
// for every further match within this time; those events record the same
// result.
const actionCacheTTL = time.Minute

// actionTimeout bounds one action (terminate waits for the task to exit).
const actionTimeout = 15 * time.Second

// ActionStats are the action workers' counters.
type ActionStats struct {
	Requested uint64 `json:"requested"`
	Done      uint64 `json:"done"`
	Failed    uint64 `json:"failed"`
	Cached    uint64 `json:"cached"`    // answered from an earlier action on the same container
	QueueFull uint64 `json:"queueFull"` // not carried out: the queue was full
	Disabled  uint64 `json:"disabled"`  // not carried out: mitigation is off
}

type actionRunner struct {
	local    respond.Executor // nil: none (then every local action fails, saying why)
	localErr error
	cluster  respond.Executor
	queue    chan actionJob
	emit     func(model.Event)
	log      *slog.Logger

	mu    sync.Mutex
	cache *lru[actionKey, respond.Result]

	requested, done, failed, cached, queueFull, disabled atomic.Uint64
}

func newActionRunner(local respond.Executor, localErr error, cluster respond.Executor, queue int,
	emit func(model.Event), log *slog.Logger) *actionRunner {
	return &actionRunner{local: local, localErr: localErr, cluster: cluster, queue: make(chan actionJob, queue),
		emit: emit, log: log, cache: newLRU[actionKey, respond.Result](4096)}
}

// run works the queue until ctx ends; call it from n goroutines.
func (a *actionRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.queue:
			a.carryOut(ctx, j)
		}
	}
}

// submit queues a job; when the queue is full the event is emitted at once
// with the action failed.
func (a *actionRunner) submit(j actionJob) {
	a.requested.Add(1)
	select {
	case a.queue <- j:
	default:
		a.queueFull.Add(1)
		a.record(j, respond.Result{Action: j.action, Error: "the action queue is full (too many actions at once)", At: time.Now()})
	}
}

func (a *actionRunner) carryOut(ctx context.Context, j actionJob) {
	if j.info == nil {
		a.record(j, respond.Result{Action: j.action, At: time.Now(),
			Error: "the process runs on the host, not in a container: nothing to " + string(j.action)})
		return
	}
	t := respond.TargetOf(j.info)
	k := actionKey{t.Runtime, t.Namespace, t.ID, j.action}
	a.mu.Lock()
	prev, ok := a.cache.get(k)
	a.mu.Unlock()
	if ok && prev.Done && time.Since(prev.At) < actionCacheTTL {
		a.cached.Add(1)
		prev.Detail = fmt.Sprintf("already done at %s: %s", prev.At.UTC().Format(time.RFC3339Nano), prev.Detail)
		a.record(j, prev)
		return
	}
	ex := a.local
	if t.Runtime == container.RuntimeCRI {
		ex = a.cluster
	}
	var r respond.Result
	if ex == nil {
		r = respond.Result{Action: j.action, At: time.Now(), Error: fmt.Sprintf("no executor: %v", a.localErr)}
	} else {
		actx, cancel := context.WithTimeout(ctx, actionTimeout)
		actx = context.WithValue(actx, eventIDKey{}, j.ev.ID)
		actx = context.WithValue(actx, ruleIDKey{}, j.ev.Rule.ID)
		r = respond.Do(actx, ex, j.action, t)
		cancel()
	}
	if r.Done {
		a.mu.Lock()
		a.cache.put(k, r)
		a.mu.Unlock()
	}
	a.record(j, r)
}

// record puts the result into the event and emits it.
func (a *actionRunner) record(j actionJob, r respond.Result) {
	if r.Done {
		a.done.Add(1)
	} else {
		a.failed.Add(1)
		a.log.Warn("action failed", "action", j.action, "rule", j.ev.Rule.ID, "container", containerName(j.ev), "error", r.Error)
	}
	j.ev.Action, j.ev.ActionError = r.Event()
	if j.ev.Details == nil {
		j.ev.Details = map[string]string{}
	}
	if r.Executor != "" {
		j.ev.Details["actionExecutor"] = r.Executor
	}
	if r.Detail != "" {
		j.ev.Details["actionDetail"] = fitDetail(r.Detail)
	}
	if r.Took > 0 {
		j.ev.Details["actionTook"] = r.Took.String()
	}
	a.emit(j.ev)
}

func (a *actionRunner) stats() ActionStats {
	return ActionStats{Requested: a.requested.Load(), Done: a.done.Load(), Failed: a.failed.Load(),
		Cached: a.cached.Load(), QueueFull: a.queueFull.Load(), Disabled: a.disabled.Load()}
}

func containerName(e model.Event) string {
	if e.Container == nil {
		return "host"
	}
	return e.Container.Name
}

// fitDetail keeps a detail within the envelope's text limit.
func fitDetail(s string) string {
	return event.Sanitize(s, model.MaxEventTextLen/8)
}
