package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/policy"
)

// policyFile is where the last policy fetched is kept in the data
// directory, so that a component restarted while the server is away keeps
// enforcing it.
const policyFile = "policy.json"

// Policy is the policy the component enforces.
type Policy struct {
	Name    string
	Version int
	Digest  string
	Eval    *policy.Evaluator
}

// policyState is what the component knows of its cluster's policy.
type policyState struct {
	// known: the server answered (or a saved policy was loaded). A known
	// state without a policy means the cluster has none: nothing is enforced.
	known bool
	p     *Policy
}

// policies holds the current policy; refresh fetches a new version.
type policies struct {
	cur  atomic.Pointer[policyState]
	dir  string // "" = not saved
	log  *slog.Logger
	load func(ctx context.Context) (api.ComponentPolicy, error)
}

func newPolicies(dir string, load func(ctx context.Context) (api.ComponentPolicy, error), log *slog.Logger) *policies {
	p := &policies{dir: dir, log: log, load: load}
	p.cur.Store(&policyState{})
	return p
}

// current returns the state (never nil).
func (p *policies) current() *policyState { return p.cur.Load() }

// loadSaved loads the policy saved in the data directory, if any.
func (p *policies) loadSaved() error {
	if p.dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(p.dir, policyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: saved policy: %w", err)
	}
	var cp api.ComponentPolicy
	if err := json.Unmarshal(b, &cp); err != nil {
		return fmt.Errorf("cluster: saved policy %s: %w", filepath.Join(p.dir, policyFile), err)
	}
	st, err := compile(cp)
	if err != nil {
		return fmt.Errorf("cluster: saved policy: %w", err)
	}
	p.cur.Store(st)
	p.log.Info("enforcing the saved policy until the server answers", "policy", cp.Name, "version", cp.Version)
	return nil
}

func compile(cp api.ComponentPolicy) (*policyState, error) {
	if cp.Name == "" {
		return &policyState{known: true}, nil
	}
	doc, err := policy.Parse(cp.Name+".yaml", []byte(cp.Document))
	if err != nil {
		return nil, fmt.Errorf("policy %s version %d: %w", cp.Name, cp.Version, err)
	}
	ev, err := policy.Compile(doc)
	if err != nil {
		return nil, fmt.Errorf("policy %s version %d: %w", cp.Name, cp.Version, err)
	}
	return &policyState{known: true, p: &Policy{Name: cp.Name, Version: cp.Version, Digest: cp.Digest, Eval: ev}}, nil
}

// refresh brings the policy to what the server's configuration names
// (name and version; "" = none).
func (p *policies) refresh(ctx context.Context, name string, version int) error {
	cur := p.current()
	if cur.known && ((name == "" && cur.p == nil) || (cur.p != nil && cur.p.Name == name && cur.p.Version == version)) {
		return nil
	}
	cp := api.ComponentPolicy{}
	if name != "" {
		var err error
		cp, err = p.load(ctx)
		if errors.Is(err, client.ErrNotFound) {
			cp = api.ComponentPolicy{} // unassigned meanwhile
		} else if err != nil {
			return fmt.Errorf("cluster: fetch the policy: %w", err)
		}
	}
	st, err := compile(cp)
	if err != nil {
		// Keep enforcing the previous version: a policy this mamori cannot
		// load (written for a newer one) must not switch enforcement off.
		return fmt.Errorf("cluster: %w (keeping the previous policy)", err)
	}
	p.cur.Store(st)
	if st.p == nil {
		p.log.Info("the cluster has no policy: admission allows everything")
	} else {
		p.log.Info("policy loaded", "policy", st.p.Name, "version", st.p.Version)
	}
	if p.dir != "" {
		b, err := json.Marshal(cp)
		if err != nil {
			return fmt.Errorf("cluster: save policy: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(p.dir, policyFile), b); err != nil {
			return fmt.Errorf("cluster: save policy: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
