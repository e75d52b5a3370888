package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/hostsettings"
)

// Sync is the module that keeps the host modules in step with the agent's
// host group on the server: it polls GET /api/v1/agents/host (every
// pollInterval of the group), applies changed settings, follows the
// allow-list's revision, and runs the pending requests one at a time,
// reporting each outcome. The last settings received are kept in the
// state directory and applied at the next start until the server answers.
type Sync struct {
	hub *hub

	mu       sync.Mutex
	group    string
	groupID  int64
	version  int
	settings api.HostSettings
	have     bool
	lastPoll time.Time
	lastErr  string
	source   string // "server", "cached", "" (none yet)
	inflight map[int64]bool

	polls, done, failed atomic.Uint64
	queue               chan api.HostRequest
	stop                func()
}

var _ agent.Module = (*Sync)(nil)

// Name implements agent.Module.
func (s *Sync) Name() string { return "hostsync" }

// cacheFile keeps the last settings received.
func (s *Sync) cacheFile() string { return filepath.Join(s.hub.deps.StateDir, "host-settings.json") }

type cached struct {
	Group    string           `json:"group"`
	GroupID  int64            `json:"groupId"`
	Version  int              `json:"settingsVersion"`
	Settings api.HostSettings `json:"settings"`
}

// Start implements agent.Module.
func (s *Sync) Start(ctx context.Context, _ agent.Sink) error {
	s.inflight = map[int64]bool{}
	s.queue = make(chan api.HostRequest, 64)
	if b, err := os.ReadFile(s.cacheFile()); err == nil {
		var c cached
		if err := json.Unmarshal(b, &c); err != nil {
			s.hub.deps.Logger.Warn("host settings cache not usable", "file", s.cacheFile(), "error", err)
		} else if err := s.apply(c.Group, c.GroupID, c.Version, c.Settings, "cached"); err != nil {
			s.hub.deps.Logger.Warn("cached host settings not applied", "error", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.loop(ctx) }()
	go func() { defer wg.Done(); s.worker(ctx) }()
	s.stop = func() { cancel(); wg.Wait() }
	return nil
}

// Stop implements agent.Module.
func (s *Sync) Stop(context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	return nil
}

// apply resolves and applies a group's settings to every module.
func (s *Sync) apply(group string, id int64, version int, set api.HostSettings, source string) error {
	cfg, err := hostsettings.ResolveAt(set, s.hub.deps.StateDir)
	if err != nil {
		return fmt.Errorf("settings of host group %s (version %d): %w", group, version, err)
	}
	var errs []error
	for _, m := range s.hub.modules() {
		if err := apply(m, set, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if rt := s.hub.deps.Runtime; rt != nil {
		rt.SetHostRulesets(group, version, set.RuntimeRulesets)
	}
	s.mu.Lock()
	s.group, s.groupID, s.version, s.settings, s.have, s.source = group, id, version, set, true, source
	s.mu.Unlock()
	s.hub.deps.Logger.Info("host settings applied", "group", group, "settingsVersion", version, "from", source)
	return errors.Join(errs...)
}

func (s *Sync) loop(ctx context.Context) {
	log := s.hub.deps.Logger
	srv := s.hub.deps.Server
	interval := api.DefaultHostPollInterval
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s.polls.Add(1)
		hc, err := srv.HostConfig(ctx, s.hub.deps.Node)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.lastErr = err.Error()
			s.mu.Unlock()
			if errors.Is(err, client.ErrNotFound) {
				// Not registered yet: the agent's server loop is at it.
				wait = time.Second
			} else {
				log.Warn("host settings not fetched", "error", err)
				wait = interval
			}
			continue
		}
		if d, err := time.ParseDuration(hc.PollInterval); err == nil && d >= hostsettings.MinPollInterval {
			interval = d
		}
		wait = interval
		s.mu.Lock()
		changed := !s.have || s.source != "server" || s.groupID != hc.GroupID || s.version != hc.SettingsVersion
		s.lastPoll, s.lastErr = now, ""
		s.mu.Unlock()
		if changed {
			if err := s.apply(hc.Group, hc.GroupID, hc.SettingsVersion, hc.Settings, "server"); err != nil {
				log.Error("host settings: a module did not start", "error", err)
			}
			s.save(hc)
		}
		s.hub.appcontrol.allowListChanged(ctx, hc.AllowListRevision)
		for _, r := range hc.Requests {
			s.mu.Lock()
			busy := s.inflight[r.ID]
			if !busy {
				s.inflight[r.ID] = true
			}
			s.mu.Unlock()
			if busy {
				continue
			}
			select {
			case s.queue <- r:
			default:
				s.mu.Lock()
				delete(s.inflight, r.ID) // picked up again at the next poll
				s.mu.Unlock()
			}
		}
	}
}

// save keeps the settings received for the next start.
func (s *Sync) save(hc api.HostConfig) {
	b, err := json.Marshal(cached{Group: hc.Group, GroupID: hc.GroupID, Version: hc.SettingsVersion, Settings: hc.Settings})
	if err == nil {
		if err = mkdirFor(s.hub.deps.StateDir); err == nil {
			tmp := s.cacheFile() + ".tmp"
			if err = os.WriteFile(tmp, b, 0o600); err == nil {
				err = os.Rename(tmp, s.cacheFile())
			}
		}
	}
	if err != nil {
		s.hub.deps.Logger.Warn("host settings not kept for the next start", "error", err)
	}
}

// worker runs requests one at a time and reports their outcome.
func (s *Sync) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.queue:
			s.run(ctx, r)
		}
	}
}

func (s *Sync) run(ctx context.Context, r api.HostRequest) {
	log := s.hub.deps.Logger.With("request", r.ID, "kind", r.Kind)
	var msg string
	var err error
	switch r.Kind {
	case api.RequestQuarantineRestore, api.RequestQuarantineDelete, api.RequestScan:
		msg, err = s.hub.antimalware.handle(ctx, r)
	case api.RequestBaselineRebuild, api.RequestIntegrityCompare:
		msg, err = s.hub.integrity.handle(ctx, r)
	default:
		err = fmt.Errorf("this agent does not know request %q", r.Kind)
	}
	if ctx.Err() != nil {
		return // stopping: the request stays pending and runs at the next start
	}
	res := api.HostRequestResult{OK: err == nil, Message: msg}
	if err != nil {
		res.Message = err.Error()
		s.failed.Add(1)
		log.Warn("host request failed", "error", err)
	} else {
		s.done.Add(1)
		log.Info("host request done", "result", msg)
	}
	for attempt := 1; attempt <= 5; attempt++ {
		_, rerr := s.hub.deps.Server.HostRequestResult(ctx, s.hub.deps.Node, r.ID, res)
		if rerr == nil || errors.Is(rerr, client.ErrRejected) {
			break // recorded (a 409: by an earlier attempt whose answer was lost)
		}
		log.Warn("request outcome not reported; retrying", "error", rerr)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * 2 * time.Second):
		}
	}
	s.mu.Lock()
	delete(s.inflight, r.ID)
	s.mu.Unlock()
}

// SyncStats are the sync module's counters.
type SyncStats struct {
	Group           string    `json:"group,omitempty"`
	GroupID         int64     `json:"groupId,omitempty"`
	SettingsVersion int       `json:"settingsVersion,omitempty"`
	From            string    `json:"from,omitempty"`
	LastPoll        time.Time `json:"lastPoll,omitzero"`
	LastError       string    `json:"lastError,omitempty"`
	Polls           uint64    `json:"polls"`
	RequestsDone    uint64    `json:"requestsDone"`
	RequestsFailed  uint64    `json:"requestsFailed"`
}

// Stats implements agent.Module.
func (s *Sync) Stats() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SyncStats{Group: s.group, GroupID: s.groupID, SettingsVersion: s.version, From: s.source, LastPoll: s.lastPoll,
		LastError: s.lastErr, Polls: s.polls.Load(), RequestsDone: s.done.Load(), RequestsFailed: s.failed.Load()}
}

// Config implements agent.Module: the group's settings in force.
func (s *Sync) Config() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.have {
		return nil
	}
	return s.settings
}
