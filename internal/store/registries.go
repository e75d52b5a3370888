package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

func validateRegistry(r *Registry) error {
	c := &checker{}
	c.required("registry name", r.Name, maxTypeLen*4)
	c.required("registry url", r.URL, maxIDLen)
	c.str("registry username", r.Username)
	c.str("registry repository filter", r.RepositoryFilter)
	c.str("registry tag filter", r.TagFilter)
	if r.Schedule < 0 {
		c.fail("registry schedule %v is negative", r.Schedule)
	}
	return c.err
}

const registryCols = `id, name, url, username, secret, repo_filter, tag_filter, schedule_ns, insecure, created_at, updated_at,
	last_sync_at, last_sync_status, last_sync_error`

func scanRegistry(r rowScanner) (Registry, error) {
	var g Registry
	var sched, created, updated, synced int64
	if err := r.Scan(&g.ID, &g.Name, &g.URL, &g.Username, &g.Secret, &g.RepositoryFilter, &g.TagFilter, &sched, &g.Insecure,
		&created, &updated, &synced, &g.LastSync.Status, &g.LastSync.Error); err != nil {
		return g, err
	}
	g.Schedule = time.Duration(sched)
	g.CreatedAt, g.UpdatedAt, g.LastSync.At = fromTS(created), fromTS(updated), fromTS(synced)
	return g, nil
}

// CreateRegistry implements RegistryStore.
func (s *sqlStore) CreateRegistry(ctx context.Context, r Registry) (Registry, error) {
	if err := validateRegistry(&r); err != nil {
		return Registry{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	r.CreatedAt, r.UpdatedAt, r.LastSync = now, now, RegistrySync{}
	err := s.write(ctx, func(t *tx) error {
		return t.queryRow(ctx, `INSERT INTO registries (name, url, username, secret, repo_filter, tag_filter, schedule_ns, insecure,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Name, r.URL, r.Username, r.Secret, r.RepositoryFilter, r.TagFilter, int64(r.Schedule), b2i(r.Insecure),
			ts(now), ts(now)).Scan(&r.ID)
	})
	if isUniqueViolation(err) {
		return Registry{}, fmt.Errorf("store: registry %q: %w", r.Name, ErrConflict)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("store: create registry %q: %w", r.Name, err)
	}
	return r, nil
}

// GetRegistry implements RegistryStore.
func (s *sqlStore) GetRegistry(ctx context.Context, id int64) (Registry, error) {
	g, err := scanRegistry(s.db.QueryRowContext(ctx, s.q(`SELECT `+registryCols+` FROM registries WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Registry{}, fmt.Errorf("store: registry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("store: get registry %d: %w", id, err)
	}
	return g, nil
}

// ListRegistries implements RegistryStore.
func (s *sqlStore) ListRegistries(ctx context.Context) ([]Registry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+registryCols+` FROM registries ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list registries: %w", err)
	}
	defer rows.Close()
	out := []Registry{}
	for rows.Next() {
		g, err := scanRegistry(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list registries: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list registries: %w", err)
	}
	return out, nil
}

// UpdateRegistry implements RegistryStore.
func (s *sqlStore) UpdateRegistry(ctx context.Context, r Registry) (Registry, error) {
	if err := validateRegistry(&r); err != nil {
		return Registry{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var out Registry
	err := s.write(ctx, func(t *tx) error {
		set := `name = ?, url = ?, username = ?, repo_filter = ?, tag_filter = ?, schedule_ns = ?, insecure = ?, updated_at = ?`
		args := []any{r.Name, r.URL, r.Username, r.RepositoryFilter, r.TagFilter, int64(r.Schedule), b2i(r.Insecure), ts(now)}
		if r.Secret != nil {
			set += `, secret = ?`
			args = append(args, r.Secret)
		}
		res, err := t.exec(ctx, `UPDATE registries SET `+set+` WHERE id = ?`, append(args, r.ID)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("registry %d: %w", r.ID, ErrNotFound)
		}
		out, err = scanRegistry(t.queryRow(ctx, `SELECT `+registryCols+` FROM registries WHERE id = ?`, r.ID))
		return err
	})
	if isUniqueViolation(err) {
		return Registry{}, fmt.Errorf("store: registry %q: %w", r.Name, ErrConflict)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("store: update registry %d: %w", r.ID, err)
	}
	return out, nil
}

// DeleteRegistry implements RegistryStore.
func (s *sqlStore) DeleteRegistry(ctx context.Context, id int64) error {
	return s.execOne(ctx, fmt.Sprintf("registry %d", id), `DELETE FROM registries WHERE id = ?`, id)
}

// RecordRegistrySync implements RegistryStore.
func (s *sqlStore) RecordRegistrySync(ctx context.Context, id int64, st RegistrySync) error {
	c := &checker{}
	c.str("sync status", st.Status)
	if c.err != nil {
		return c.err
	}
	// A sync error can quote anything a registry sent: keep it storable.
	msg := strings.ReplaceAll(strings.ToValidUTF8(st.Error, "\uFFFD"), "\x00", "")
	return s.execOne(ctx, fmt.Sprintf("registry %d", id),
		`UPDATE registries SET last_sync_at = ?, last_sync_status = ?, last_sync_error = ? WHERE id = ?`,
		ts(st.At), st.Status, msg, id)
}

// execOne runs one write statement that must affect exactly one row.
func (s *sqlStore) execOne(ctx context.Context, what, query string, args ...any) error {
	err := s.write(ctx, func(t *tx) error {
		res, err := t.exec(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
