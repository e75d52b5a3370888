package host

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/host/loginspect"
	"mamori/internal/host/loginspect/forward"
	"mamori/internal/host/loginspect/rules"
	"mamori/internal/hostsettings"
	"mamori/internal/model"
)

// LogInspect is the log inspection module: the host's logs (syslog files,
// the journal, container runtime and kubelet logs, the Kubernetes audit
// log, auditd) through the decoders and the log rules, every detection an
// event, optionally forwarded to a syslog collector (RFC 5424).
type LogInspect struct {
	base
	inst atomic.Pointer[loginspect.Inspector]
	cfg  atomic.Pointer[hostsettings.LogInspectConfig]
}

var _ agent.Module = (*LogInspect)(nil)

func (m *LogInspect) section(s api.HostSettings) any { return s.LogInspect }

// Start implements agent.Module.
func (m *LogInspect) Start(ctx context.Context, sink agent.Sink) error {
	return startModule(m, ctx, sink)
}

// Stop implements agent.Module.
func (m *LogInspect) Stop(ctx context.Context) error { return stopModule(m, ctx) }

func (m *LogInspect) start(ctx context.Context, full hostsettings.Config) (func(), error) {
	cfg := full.LogInspect
	opts := []loginspect.Option{loginspect.WithSources(cfg.Sources...), loginspect.WithStateDir(cfg.StateDir),
		loginspect.WithHost(m.hub.deps.Node), loginspect.WithLogger(m.log), loginspect.WithStartAtEnd(cfg.StartAtEnd),
		loginspect.WithHandler(func(_ context.Context, ev model.Event) error {
			m.emit(ev)
			return nil
		})}
	switch cfg.Journal {
	case "auto":
		if cfg.JournalDirectory != "" {
			opts = append(opts, loginspect.WithJournal(&loginspect.JournalConfig{Directory: cfg.JournalDirectory}))
		} else {
			opts = append(opts, loginspect.WithJournal(loginspect.DefaultJournal()))
		}
	case "on":
		opts = append(opts, loginspect.WithJournal(&loginspect.JournalConfig{Directory: cfg.JournalDirectory}))
	default:
		opts = append(opts, loginspect.WithJournal(nil))
	}
	for _, f := range cfg.Rules {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("rule file: %w", err)
		}
		opts = append(opts, loginspect.WithRules(rules.Source{Name: f, Data: data}))
	}
	if cfg.ForwardAddress != "" {
		fc := forward.Config{Network: cfg.ForwardProtocol, Address: cfg.ForwardAddress, Logger: m.log}
		if cfg.ForwardCAFile != "" {
			pem, err := os.ReadFile(cfg.ForwardCAFile)
			if err != nil {
				return nil, fmt.Errorf("forward: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("forward: CA file %s: no PEM certificate", cfg.ForwardCAFile)
			}
			fc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		fw, err := forward.NewSyslog(fc)
		if err != nil {
			return nil, err
		}
		opts = append(opts, loginspect.WithForwarder(fw))
	}
	if err := mkdirFor(cfg.StateDir); err != nil {
		return nil, err
	}
	in, err := loginspect.New(opts...)
	if err != nil {
		return nil, err
	}
	m.inst.Store(in)
	m.cfg.Store(&cfg)
	return background(ctx, m.log, func(ctx context.Context) {
		if err := in.Run(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("log inspection stopped", "error", err)
			m.mu.Lock()
			m.state, m.lastErr = "failed", err.Error()
			m.mu.Unlock()
		}
	}), nil
}

// LogInspectStats are the module's counters.
type LogInspectStats struct {
	Status
	Inspector *loginspect.Snapshot `json:"inspector,omitempty"`
}

// Stats implements agent.Module.
func (m *LogInspect) Stats() any {
	s := LogInspectStats{Status: m.status()}
	if in := m.inst.Load(); in != nil {
		snap := in.Stats()
		s.Inspector = &snap
	}
	return s
}

// Config implements agent.Module.
func (m *LogInspect) Config() any {
	c := m.cfg.Load()
	if c == nil {
		return nil
	}
	out := map[string]any{"sources": c.Sources, "journal": c.Journal, "rules": c.Rules, "stateDir": c.StateDir, "startAtEnd": c.StartAtEnd}
	if in := m.inst.Load(); in != nil {
		out["ruleCount"] = len(in.Engine().Catalog().Rules())
	}
	if c.ForwardAddress != "" {
		out["forward"] = c.ForwardProtocol + "://" + c.ForwardAddress
	}
	return out
}
