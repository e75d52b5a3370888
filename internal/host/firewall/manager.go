package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/nftables"
)

// Defaults.
const (
	// DefaultTable is the name of mamori's table (family inet, so one table
	// covers IPv4 and IPv6).
	DefaultTable = "mamori"
	// DefaultConfirmTimeout bounds how long SafeApply waits for the
	// confirmation: long enough for a TLS handshake to a distant server over
	// a slow link, short enough that a lock-out ends quickly.
	DefaultConfirmTimeout = 30 * time.Second
)

// ConfirmFunc proves the host still reaches what it must (the agent's
// server) after a change. It should open a NEW connection (an
// established one survives a stateful ruleset that would refuse a new one)
// and return nil on success. ctx carries the confirmation deadline.
type ConfirmFunc func(ctx context.Context) error

// Option configures a Manager.
type Option func(*options) error

type options struct {
	statePath string
	table     string
	netns     int // -1: the caller's network namespace
	timeout   time.Duration
	log       *slog.Logger
}

// WithTable sets the table name (family inet); default DefaultTable.
func WithTable(name string) Option {
	return func(o *options) error {
		if !validName(name) {
			return fmt.Errorf("firewall: table name %q must be 1-%d characters of A-Z a-z 0-9 . _ -", name, maxNameLen)
		}
		o.table = name
		return nil
	}
}

// WithNetNS makes the manager work in the network namespace of the open
// file descriptor fd (/run/netns/NAME or /proc/PID/ns/net) instead of the
// caller's. The caller keeps fd open while the manager is used.
func WithNetNS(fd int) Option {
	return func(o *options) error {
		if fd < 0 {
			return fmt.Errorf("firewall: bad namespace descriptor %d", fd)
		}
		o.netns = fd
		return nil
	}
}

// WithConfirmTimeout sets how long SafeApply waits for its confirmation;
// default DefaultConfirmTimeout.
func WithConfirmTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("firewall: confirm timeout %v must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithLogger sets the logger; default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("firewall: nil logger")
		}
		o.log = l
		return nil
	}
}

func makeOptions(opts []Option) (options, error) {
	o := options{table: DefaultTable, netns: -1, timeout: DefaultConfirmTimeout, log: slog.Default()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// Manager installs rulesets into mamori's table. Its methods are safe for
// concurrent use; changes are serialised.
type Manager struct {
	o  options
	mu sync.Mutex
}

// New returns a manager. It does not touch the kernel.
func New(opts ...Option) (*Manager, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Manager{o: o}, nil
}

// Table returns the name of the manager's table.
func (m *Manager) Table() string { return m.o.table }

func (m *Manager) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if m.o.netns >= 0 {
		opts = append(opts, nftables.WithNetNSFd(m.o.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("firewall: netlink: %w", err)
	}
	return c, nil
}

func (m *Manager) table() *nftables.Table {
	return &nftables.Table{Name: m.o.table, Family: nftables.TableFamilyINet}
}

// Apply validates rs and replaces mamori's table with it in one netlink
// batch. Nothing changes when validation or the kernel refuses it.
func (m *Manager) Apply(ctx context.Context, rs Ruleset) error {
	rules, err := parse(rs)
	if err != nil {
		return err
	}
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
	if err := m.replace(c, compile(rs, rules)); err != nil {
		return fmt.Errorf("firewall: apply to table inet %s: %w", m.o.table, err)
	}
	return m.saveState(&stateFile{Confirmed: &rs})
}

// SafeApply applies rs, then calls confirm with a deadline of the
// manager's confirm timeout. When confirm fails or the deadline passes, the
// table as it was before (absent included) is restored and the error wraps
// ErrRolledBack. When ctx is cancelled during the confirmation, the change
// is rolled back too: an unconfirmed change never stays.
func (m *Manager) SafeApply(ctx context.Context, rs Ruleset, confirm ConfirmFunc) error {
	if confirm == nil {
		return errors.New("firewall: SafeApply needs a confirm function")
	}
	rules, err := parse(rs)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.conn()
	if err != nil {
		return err
	}
	prev, err := m.snapshot(c)
	if err != nil {
		return err
	}
	st := &stateFile{}
	if m.o.statePath != "" {
		if st, err = m.loadState(); err != nil {
			return err
		}
		// Record the change as pending first: if the agent dies before the
		// confirmation, Recover undoes it.
		st.Pending = &rs
		if err := m.saveState(st); err != nil {
			return err
		}
	}
	if err := m.replace(c, compile(rs, rules)); err != nil {
		st.Pending = nil
		return errors.Join(fmt.Errorf("firewall: apply to table inet %s: %w", m.o.table, err), m.saveState(st))
	}
	cctx, cancel := context.WithTimeout(ctx, m.o.timeout)
	cerr := runConfirm(cctx, confirm)
	cancel()
	if cerr == nil {
		return m.saveState(&stateFile{Confirmed: &rs})
	}
	m.o.log.Warn("firewall change not confirmed; restoring the previous table", "table", m.o.table, "err", cerr)
	if rerr := m.restore(c, prev); rerr != nil {
		return fmt.Errorf("firewall: confirmation failed (%v) and the previous table could not be restored: %w", cerr, rerr)
	}
	st.Pending = nil
	return errors.Join(fmt.Errorf("%w: %w", ErrRolledBack, cerr), m.saveState(st))
}

// runConfirm calls confirm and waits for it at most until ctx is done, so a
// confirm function that ignores its context cannot hold the rollback.
func runConfirm(ctx context.Context, confirm ConfirmFunc) error {
	done := make(chan error, 1)
	go func() { done <- confirm(ctx) }()
	select {
	case err := <-done:
		if err == nil && ctx.Err() != nil {
			return fmt.Errorf("confirmation came after the deadline: %w", ctx.Err())
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("no confirmation: %w", ctx.Err())
	}
}

// Remove deletes mamori's table. A missing table is not an error; a
// foreign table of that name is ErrForeignTable and stays.
func (m *Manager) Remove(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.conn()
	if err != nil {
		return err
	}
	exists, err := m.owned(c)
	if err != nil {
		return err
	}
	if exists {
		c.DelTable(m.table())
		if err := c.Flush(); err != nil {
			return fmt.Errorf("firewall: delete table inet %s: %w", m.o.table, err)
		}
	}
	return m.saveState(&stateFile{})
}

// owned reports whether mamori's table exists, and fails with
// ErrForeignTable when it exists without the marker chain.
func (m *Manager) owned(c *nftables.Conn) (bool, error) {
	chains, exists, err := m.chains(c)
	if err != nil || !exists {
		return false, err
	}
	for _, ch := range chains {
		if ch.Name == MarkerChain && ch.Hooknum == nil {
			return true, nil
		}
	}
	return true, fmt.Errorf("%w: inet %s has no %s chain", ErrForeignTable, m.o.table, MarkerChain)
}

// chains lists the chains of mamori's table and whether it exists.
func (m *Manager) chains(c *nftables.Conn) ([]*nftables.Chain, bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("firewall: list tables: %w", err)
	}
	found := false
	for _, t := range tables {
		found = found || t.Name == m.o.table
	}
	if !found {
		return nil, false, nil
	}
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("firewall: list chains: %w", err)
	}
	var out []*nftables.Chain
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == m.o.table {
			out = append(out, ch)
		}
	}
	return out, true, nil
}

// replace swaps the table for plan in one batch: "add table" (creates it
// when missing, so the delete that follows cannot fail), "delete table",
// then the new table, its chains and rules.
func (m *Manager) replace(c *nftables.Conn, plan []chainPlan) error {
	t := m.table()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, cp := range plan {
		ch := &nftables.Chain{Name: cp.name, Table: t}
		if cp.hook != nil {
			pol := cp.policy
			ch.Hooknum, ch.Priority, ch.Type, ch.Policy = cp.hook, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &pol
		}
		c.AddChain(ch)
		for _, r := range cp.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs, UserData: r.userData})
		}
	}
	return c.Flush()
}
