package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"mamori/internal/agent/spool"
)

// Stats is everything the agent counts, as GET /stats serves it.
type Stats struct {
	Node    string `json:"node"`
	Version string `json:"version"`
	// Emitted events were queued for the outputs; EmitDropped found the
	// queue full (lost, counted).
	Emitted     uint64 `json:"emitted"`
	EmitDropped uint64 `json:"emitDropped"`
	Queued      int    `json:"queued"`
	// Written JSON lines; Invalid events failed model validation (kept out
	// of the spool: the server would refuse them).
	Written     uint64 `json:"written"`
	WriteErrors uint64 `json:"writeErrors"`
	Invalid     uint64 `json:"invalid"`
	SpoolErrors uint64 `json:"spoolErrors"`

	Spool    *spool.Stats   `json:"spool,omitempty"`
	Delivery *DeliveryStats `json:"delivery,omitempty"`
	Server   *ServerState   `json:"server,omitempty"`
	Modules  map[string]any `json:"modules"`
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := Stats{Node: a.cfg.Node, Version: a.version, Emitted: a.emitted.Load(), EmitDropped: a.emitDropped.Load(),
		Queued: len(a.events), Written: a.written.Load(), WriteErrors: a.writeErrors.Load(), Invalid: a.invalid.Load(),
		SpoolErrors: a.spoolErrors.Load(), Modules: map[string]any{}}
	if a.spool != nil {
		st := a.spool.Stats()
		s.Spool = &st
	}
	if a.server != nil {
		d := a.delivery.snapshot()
		s.Delivery = &d
		a.srvMu.Lock()
		st := a.srvState
		a.srvMu.Unlock()
		s.Server = &st
	}
	for _, m := range a.modules {
		s.Modules[m.Name()] = m.Stats()
	}
	return s
}

// loopbackAddr checks that a listen address is on loopback: the stats
// carry no secret, but they are the node's internals.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1:PORT, [::1]:PORT) or a unix socket path", addr)
	}
	return nil
}

// serveStats serves /stats (JSON), /metrics (Prometheus text) and /healthz.
func (a *Agent) serveStats(ctx context.Context) (*http.Server, error) {
	network := "tcp"
	if strings.HasPrefix(a.cfg.StatsListen, "/") {
		network = "unix"
		os.Remove(a.cfg.StatsListen)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, a.cfg.StatsListen)
	if err != nil {
		return nil, fmt.Errorf("stats listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.Stats())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, a.Stats())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.log.Info("stats served", "address", a.cfg.StatsListen)
	return srv, nil
}

// writeMetrics renders the main counters in the Prometheus text format.
func writeMetrics(w interface{ Write([]byte) (int, error) }, s Stats) {
	type m struct {
		name, help string
		v          float64
		labels     string
	}
	ms := []m{
		{"mamori_agent_events_emitted_total", "Events queued for the outputs.", float64(s.Emitted), ""},
		{"mamori_agent_events_dropped_total", "Events dropped because the output queue was full.", float64(s.EmitDropped), ""},
		{"mamori_agent_events_written_total", "Events written as JSON lines.", float64(s.Written), ""},
		{"mamori_agent_events_invalid_total", "Events that failed validation.", float64(s.Invalid), ""},
	}
	if s.Spool != nil {
		ms = append(ms,
			m{"mamori_agent_spool_pending", "Events in the spool not yet delivered.", float64(s.Spool.Pending), ""},
			m{"mamori_agent_spool_bytes", "Bytes in the spool.", float64(s.Spool.Bytes), ""},
			m{"mamori_agent_spool_dropped_total", "Events dropped at the spool's size cap.", float64(s.Spool.Dropped), ""})
	}
	if s.Delivery != nil {
		ms = append(ms,
			m{"mamori_agent_delivered_total", "Events delivered to the server.", float64(s.Delivery.Sent), ""},
			m{"mamori_agent_delivery_failures_total", "Failed delivery batches.", float64(s.Delivery.Failures), ""})
	}
	if rt, ok := s.Modules["runtime"].(RuntimeStats); ok {
		mode := fmt.Sprintf(`{mode=%q,syscall_hooks=%q}`, rt.Mode, rt.Sensor.SyscallHooks)
		ms = append(ms,
			m{"mamori_agent_runtime_sensor_info", "The sensor mode (ebpf or fallback) and its system call hooks (raw or tracepoint).", 1, mode},
			m{"mamori_agent_runtime_received_total", "Sensor events received.", float64(rt.Received), ""},
			m{"mamori_agent_runtime_dropped_total", "Sensor events dropped (queue full).", float64(rt.Dropped), ""},
			m{"mamori_agent_runtime_sensor_lost_total", "Events the kernel could not deliver (ring buffer full).", float64(rt.Sensor.Lost), ""},
			m{"mamori_agent_runtime_processed_total", "Sensor events evaluated.", float64(rt.Processed), ""},
			m{"mamori_agent_runtime_matches_total", "Rule matches.", float64(rt.Matches), ""},
			m{"mamori_agent_runtime_actions_failed_total", "Actions that failed.", float64(rt.Actions.Failed), ""})
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	for _, x := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n%s%s %g\n", x.name, x.help, x.name, x.labels, x.v)
	}
}
