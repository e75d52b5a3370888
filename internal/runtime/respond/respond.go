// Package respond carries out the mitigations a runtime rule asks for:
// isolate (cut the container's network) and terminate (kill the
// container), and undoes an isolation. The Executor interface lets the
// agent choose how: Local acts on a plain host (nftables in the
// container's network namespace, the runtime's kill); on Kubernetes the
// agent holds no write permission and uses an executor that asks the
// server (a quarantine NetworkPolicy, a pod deletion), which lives with
// the agent. Every action returns a Result that says what happened, for
// the event.
package respond

import (
	"context"
	"fmt"
	"time"

	"mamori/internal/model"
	"mamori/internal/runtime/container"
)

// Target is the container an action is for.
type Target struct {
	Runtime   string // container.RuntimeContainerd, RuntimeCRI or RuntimeDocker
	Namespace string // containerd namespace ("" for Docker)
	ID        string
	// PID and PIDStart are the container's init process and its start
	// (USER_HZ ticks, /proc/PID/stat): isolate reaches the network
	// namespace through the PID, after checking it is still that process.
	PID      int
	PIDStart uint64
	// Pod and PodNamespace name the Kubernetes pod (executors that act
	// through the cluster use them).
	Pod, PodNamespace string
}

// TargetOf returns the Target of an attributed container.
func TargetOf(c *container.Info) Target {
	return Target{Runtime: c.Runtime, Namespace: c.RuntimeNamespace, ID: c.ID, PID: c.PID, PIDStart: c.PIDStart,
		Pod: c.Pod, PodNamespace: podNamespace(c)}
}

func podNamespace(c *container.Info) string {
	if c.Pod == "" {
		return ""
	}
	return c.Namespace
}

func (t Target) String() string {
	if t.Namespace != "" {
		return fmt.Sprintf("%s container %s/%s", t.Runtime, t.Namespace, t.ID)
	}
	return fmt.Sprintf("%s container %s", t.Runtime, t.ID)
}

// Result is what an action did. Done says the action took effect (an
// isolation in place, a container no longer running); Error says why not.
// Event converts it for the event envelope.
type Result struct {
	Action   model.Action  `json:"action"`
	Done     bool          `json:"done"`
	Detail   string        `json:"detail,omitempty"`
	Error    string        `json:"error,omitempty"`
	Executor string        `json:"executor"`
	At       time.Time     `json:"at"`
	Took     time.Duration `json:"took"`
}

// Event returns the action and action error of the event envelope
// (model.Event.Action, ActionError): the action when it took effect, else
// log (the event was recorded) with the reason the action failed.
func (r Result) Event() (model.Action, string) {
	if r.Done {
		return r.Action, ""
	}
	return model.ActionLog, fmt.Sprintf("%s failed: %s", r.Action, r.Error)
}

// Executor carries out mitigations. Implementations return a Result for
// every call, never an error: a failure is a Result with Done false.
type Executor interface {
	// Name names the executor in Results ("local", "kubernetes").
	Name() string
	// Isolate cuts the container's network, loopback excepted.
	Isolate(ctx context.Context, t Target) Result
	// Unisolate undoes Isolate (nothing to undo is Done).
	Unisolate(ctx context.Context, t Target) Result
	// Terminate kills the container.
	Terminate(ctx context.Context, t Target) Result
}

// Do carries out action a with ex: log needs nothing (Done), isolate and
// terminate call ex, anything else is refused.
func Do(ctx context.Context, ex Executor, a model.Action, t Target) Result {
	switch a {
	case model.ActionLog:
		return Result{Action: a, Done: true, Executor: ex.Name(), At: time.Now()}
	case model.ActionIsolate:
		return ex.Isolate(ctx, t)
	case model.ActionTerminate:
		return ex.Terminate(ctx, t)
	}
	return Result{Action: a, Error: fmt.Sprintf("action %q is not a runtime mitigation", a), Executor: ex.Name(), At: time.Now()}
}
