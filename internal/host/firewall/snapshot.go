package firewall

import (
	"context"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Snapshot is mamori's table as the kernel held it: what SafeApply
// restores. Only mamori's own table is ever captured.
type Snapshot struct {
	// Exists is false when there was no table.
	Exists bool
	chains []snapChain
}

type snapChain struct {
	chain nftables.Chain
	rules []rulePlan
}

// Rules returns the number of rules in the snapshot.
func (s *Snapshot) Rules() int {
	n := 0
	for _, c := range s.chains {
		n += len(c.rules)
	}
	return n
}

// Snapshot captures mamori's table. A foreign table of that name is
// ErrForeignTable.
func (m *Manager) Snapshot(ctx context.Context) (*Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := m.conn()
	if err != nil {
		return nil, err
	}
	return m.snapshot(c)
}

// Restore puts a snapshot back in one batch (deleting the table when the
// snapshot has none).
func (m *Manager) Restore(ctx context.Context, s *Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.conn()
	if err != nil {
		return err
	}
	if _, err := m.owned(c); err != nil {
		return err
	}
	return m.restore(c, s)
}

func (m *Manager) snapshot(c *nftables.Conn) (*Snapshot, error) {
	if _, err := m.owned(c); err != nil {
		return nil, err
	}
	chains, exists, err := m.chains(c)
	if err != nil || !exists {
		return &Snapshot{}, err
	}
	t := m.table()
	s := &Snapshot{Exists: true}
	for _, ch := range chains {
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("firewall: list rules of inet %s %s: %w", m.o.table, ch.Name, err)
		}
		sc := snapChain{chain: *ch}
		for _, r := range rules {
			sc.rules = append(sc.rules, rulePlan{exprs: cloneExprs(r.Exprs), userData: append([]byte(nil), r.UserData...)})
		}
		s.chains = append(s.chains, sc)
	}
	// Regular chains first: a base chain's rules may jump to them.
	sortChains(s.chains)
	return s, nil
}

// cloneExprs resets the counters, so a restore does not carry old counts
// as if they were new.
func cloneExprs(in []expr.Any) []expr.Any {
	out := make([]expr.Any, len(in))
	for i, e := range in {
		if _, ok := e.(*expr.Counter); ok {
			e = &expr.Counter{}
		}
		out[i] = e
	}
	return out
}

func sortChains(cs []snapChain) {
	j := 0
	for i := range cs {
		if cs[i].chain.Hooknum == nil {
			cs[i], cs[j] = cs[j], cs[i]
			j++
		}
	}
}

func (m *Manager) restore(c *nftables.Conn, s *Snapshot) error {
	t := m.table()
	c.AddTable(t)
	c.DelTable(t)
	if s.Exists {
		c.AddTable(t)
		for _, sc := range s.chains {
			ch := sc.chain
			ch.Table = t
			c.AddChain(&ch)
			for _, r := range sc.rules {
				c.AddRule(&nftables.Rule{Table: t, Chain: &ch, Exprs: r.exprs, UserData: r.userData})
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: restore table inet %s: %w", m.o.table, err)
	}
	return nil
}
