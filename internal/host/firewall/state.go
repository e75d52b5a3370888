package firewall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The state file makes the safe apply survive the agent itself: a change
// is recorded as pending before it is applied, and Recover, called when
// the agent starts, undoes a change that was never confirmed because the
// agent died (or was killed) waiting for its confirmation.
//
//	{"version":1,"confirmed":{…ruleset…},"pending":{…ruleset…}}
//
// "confirmed" is the last ruleset applied and kept (null: no table);
// "pending", when present, was applied and not yet confirmed.

const stateVersion = 1

type stateFile struct {
	Version   int      `json:"version"`
	Confirmed *Ruleset `json:"confirmed"`
	Pending   *Ruleset `json:"pending,omitempty"`
}

// maxStateFile bounds the state file read (two rulesets of MaxRules
// rules).
const maxStateFile = 16 << 20

// WithStateFile records applied and pending rulesets in path (see
// Recover). Without it a change pending when the agent dies stays until
// the agent applies again.
func WithStateFile(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("firewall: empty state file path")
		}
		o.statePath = path
		return nil
	}
}

func (m *Manager) loadState() (*stateFile, error) {
	b, err := os.ReadFile(m.o.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return &stateFile{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firewall: read state: %w", err)
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("firewall: state file %s is larger than %d bytes", m.o.statePath, maxStateFile)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion {
		return nil, fmt.Errorf("firewall: state file %s is not a version %d state: %v", m.o.statePath, stateVersion, err)
	}
	return &st, nil
}

func (m *Manager) saveState(st *stateFile) error {
	if m.o.statePath == "" {
		return nil
	}
	st.Version = stateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(m.o.statePath)
	tmp, err := os.CreateTemp(dir, ".firewall-state-*")
	if err != nil {
		return fmt.Errorf("firewall: save state: %w", err)
	}
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), m.o.statePath)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("firewall: save state: %w", werr)
	}
	return nil
}

// Recover undoes a change left pending by an agent that stopped before
// confirming it: the last confirmed ruleset is applied again, or mamori's
// table removed when none was ever confirmed (failing open: the host's
// other firewalls still apply). It reports whether it undid something. The
// agent calls it once at start, before any apply.
func (m *Manager) Recover(ctx context.Context) (bool, error) {
	if m.o.statePath == "" {
		return false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.loadState()
	if err != nil || st.Pending == nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c, err := m.conn()
	if err != nil {
		return false, err
	}
	exists, err := m.owned(c)
	if err != nil {
		return false, err
	}
	m.o.log.Warn("firewall: a change was applied and never confirmed (the agent stopped); restoring the last confirmed ruleset", "table", m.o.table)
	switch {
	case st.Confirmed != nil:
		rules, err := parse(*st.Confirmed)
		if err != nil {
			return false, fmt.Errorf("firewall: confirmed ruleset in the state file: %w", err)
		}
		if err := m.replace(c, compile(*st.Confirmed, rules)); err != nil {
			return false, fmt.Errorf("firewall: restore the confirmed ruleset: %w", err)
		}
	case exists:
		c.DelTable(m.table())
		if err := c.Flush(); err != nil {
			return false, fmt.Errorf("firewall: delete table inet %s: %w", m.o.table, err)
		}
	}
	st.Pending = nil
	return true, m.saveState(st)
}
