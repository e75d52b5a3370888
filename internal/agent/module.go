package agent

import (
	"context"

	"mamori/internal/model"
)

// Module is one protection module of the agent: the runtime module here,
// the host protection modules of issue 12 (anti-malware, integrity, log
// inspection, application control, firewall) the same way. The agent
// starts each enabled module with the one event sink, stops it at the end,
// and reports its counters and configuration (stats endpoint, logs).
type Module interface {
	// Name is the module's name in the configuration, logs and stats
	// ("runtime", "antimalware" ...).
	Name() string
	// Start starts the module's work and returns once it runs (or failed
	// to start). The module runs until Stop is called or ctx ends, sending
	// every event it produces to sink.
	Start(ctx context.Context, sink Sink) error
	// Stop stops the module and releases what it holds (kernel objects,
	// marks, sockets); ctx bounds the wait.
	Stop(ctx context.Context) error
	// Stats returns a snapshot of the module's counters (JSON-encodable):
	// what it saw, did and dropped.
	Stats() any
	// Config returns the module's effective configuration (JSON-encodable,
	// no secrets).
	Config() any
}

// Sink receives the events of every module: the one envelope
// (model.Event, docs/events.md). The agent stamps what a module does not
// know (the event ID when empty, the node, the host) and delivers it to
// the outputs (the server through the spool, the events file).
type Sink interface {
	// Emit hands one event over. It never blocks: false means the outputs'
	// queue was full and the event was dropped (counted by the agent).
	Emit(e model.Event) bool
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(model.Event) bool

// Emit implements Sink.
func (f SinkFunc) Emit(e model.Event) bool { return f(e) }
