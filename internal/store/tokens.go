package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const tokenCols = `id, name, role, cluster, hash, prefix, created_at, last_used_at, expires_at, revoked_at`

func scanToken(r rowScanner) (Token, error) {
	var t Token
	var created, used, expires, revoked int64
	if err := r.Scan(&t.ID, &t.Name, &t.Role, &t.Cluster, &t.Hash, &t.Prefix, &created, &used, &expires, &revoked); err != nil {
		return t, err
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt, t.RevokedAt = fromTS(created), fromTS(used), fromTS(expires), fromTS(revoked)
	return t, nil
}

// CreateToken implements TokenStore.
func (s *sqlStore) CreateToken(ctx context.Context, tk Token) (Token, error) {
	c := &checker{}
	c.required("token name", tk.Name, maxTypeLen*4)
	c.str("token prefix", tk.Prefix)
	c.required("token role", tk.Role, maxTypeLen)
	c.str("token cluster", tk.Cluster)
	if len(tk.Cluster) > maxTypeLen*4 {
		c.fail("token cluster is longer than %d bytes", maxTypeLen*4)
	}
	if len(tk.Hash) == 0 {
		c.fail("empty token hash")
	}
	if c.err != nil {
		return Token{}, c.err
	}
	if tk.CreatedAt.IsZero() {
		tk.CreatedAt = time.Now()
	}
	tk.CreatedAt = fromTS(ts(tk.CreatedAt))
	tk.ExpiresAt, tk.LastUsedAt, tk.RevokedAt = fromTS(ts(tk.ExpiresAt)), time.Time{}, time.Time{}
	err := s.write(ctx, func(t *tx) error {
		return t.queryRow(ctx, `INSERT INTO tokens (name, role, cluster, hash, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			RETURNING id`, tk.Name, tk.Role, tk.Cluster, tk.Hash, tk.Prefix, ts(tk.CreatedAt), ts(tk.ExpiresAt)).Scan(&tk.ID)
	})
	if isUniqueViolation(err) {
		return Token{}, fmt.Errorf("store: token hash: %w", ErrConflict)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: create token %q: %w", tk.Name, err)
	}
	return tk, nil
}

// GetTokenByHash implements TokenStore.
func (s *sqlStore) GetTokenByHash(ctx context.Context, hash []byte) (Token, error) {
	if len(hash) == 0 {
		return Token{}, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE hash = ? AND revoked_at = 0`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: get token: %w", err)
	}
	return t, nil
}

// GetToken implements TokenStore.
func (s *sqlStore) GetToken(ctx context.Context, id int64) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenCols+` FROM tokens WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("store: token %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: get token %d: %w", id, err)
	}
	return t, nil
}

// ListTokens implements TokenStore.
func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	return out, nil
}

// TouchToken implements TokenStore.
func (s *sqlStore) TouchToken(ctx context.Context, id int64, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("token %d", id), `UPDATE tokens SET last_used_at = ? WHERE id = ?`, ts(at), id)
}

// RevokeToken implements TokenStore.
func (s *sqlStore) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.write(ctx, func(t *tx) error {
		res, err := t.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var one int
			if err := t.queryRow(ctx, `SELECT 1 FROM tokens WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("token %d: %w", id, ErrNotFound)
			} else if err != nil {
				return err
			}
			// Already revoked: revoking again changes nothing.
		}
		_, err = t.exec(ctx, `DELETE FROM sessions WHERE token_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke token %d: %w", id, err)
	}
	return nil
}

// CreateSession implements SessionStore.
func (s *sqlStore) CreateSession(ctx context.Context, se Session) error {
	c := &checker{}
	if len(se.IDHash) == 0 {
		c.fail("empty session ID hash")
	}
	if len(se.CSRFSecret) == 0 {
		c.fail("empty CSRF secret")
	}
	c.required("session role", se.Role, maxTypeLen)
	if se.ExpiresAt.IsZero() {
		c.fail("session without expiry")
	}
	if c.err != nil {
		return c.err
	}
	if se.CreatedAt.IsZero() {
		se.CreatedAt = time.Now()
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO sessions (id_hash, token_id, role, csrf_secret, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, se.IDHash, se.TokenID, se.Role, se.CSRFSecret, ts(se.CreatedAt), ts(se.ExpiresAt))
		return err
	})
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("store: session: %w", ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("store: session for token %d: %w", se.TokenID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// GetSession implements SessionStore.
func (s *sqlStore) GetSession(ctx context.Context, idHash []byte, now time.Time) (Session, error) {
	var se Session
	var role string
	var created, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id_hash, token_id, role, csrf_secret, created_at, expires_at FROM sessions
		WHERE id_hash = ? AND expires_at > ?`), idHash, ts(now)).Scan(&se.IDHash, &se.TokenID, &role, &se.CSRFSecret, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: %w", err)
	}
	se.Role, se.CreatedAt, se.ExpiresAt = role, fromTS(created), fromTS(expires)
	return se, nil
}

// DeleteSession implements SessionStore.
func (s *sqlStore) DeleteSession(ctx context.Context, idHash []byte) error {
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions implements SessionStore.
func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *tx) error {
		res, err := t.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ts(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return n, nil
}

// GetMeta implements MetaStore.
func (s *sqlStore) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM meta WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: meta %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: get meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta implements MetaStore.
func (s *sqlStore) SetMeta(ctx context.Context, key, value string) error {
	c := &checker{}
	c.required("meta key", key, maxIDLen)
	c.str("meta value", value)
	if c.err != nil {
		return c.err
	}
	err := s.write(ctx, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set meta %q: %w", key, err)
	}
	return nil
}
