// Package tokens is the API token service: creating (the secret shown
// once), listing and revoking tokens of every role, human and machine. The
// API's /api/v1/tokens and the console's token page both call it.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"mamori/internal/auth"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Limits, each with its reason.
const (
	// MaxNameLen bounds a token's display name.
	MaxNameLen = 100
	// MaxLifetime: a year; longer-lived credentials should be re-issued.
	MaxLifetime = 366 * 24 * time.Hour
)

// Store is what the service needs of the store.
type Store interface {
	store.TokenStore
	GetClusterByName(ctx context.Context, name string) (store.Cluster, error)
}

// Service creates, lists and revokes tokens.
type Service struct {
	st  Store
	log *slog.Logger
	now func() time.Time
}

// New returns the service over st.
func New(st Store, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, log: log, now: now}
}

// Request asks for a token.
type Request struct {
	Name string
	Role auth.Role
	// Cluster binds a cluster token (required) or an agent token
	// (optional) to an existing cluster; human roles take none.
	Cluster string
	// ExpiresIn is the token's lifetime (0 = never, at most MaxLifetime).
	ExpiresIn time.Duration
}

// Created is a new token: the stored record and, this once, the secret.
type Created struct {
	Token  store.Token
	Secret string
}

// CheckName is the rule for a token's name.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return service.Invalid("name is required: at most %d characters, no control characters", MaxNameLen)
	}
	return nil
}

// Create checks req and creates the token.
func (s *Service) Create(ctx context.Context, req Request) (Created, error) {
	req.Name = strings.TrimSpace(req.Name)
	if err := CheckName(req.Name); err != nil {
		return Created{}, err
	}
	if !req.Role.Valid() {
		return Created{}, service.Invalid("role %q: want viewer, operator, admin, cluster or agent", req.Role)
	}
	if req.ExpiresIn < 0 || req.ExpiresIn > MaxLifetime {
		return Created{}, service.Invalid("expiry: a positive duration of at most %d days (none: never)", MaxLifetime/(24*time.Hour))
	}
	switch {
	case req.Role.Human() && req.Cluster != "":
		return Created{}, service.Invalid("cluster: a %s token is not bound to a cluster (only cluster and agent tokens are)", req.Role)
	case req.Role == auth.RoleCluster && req.Cluster == "":
		return Created{}, service.Invalid("cluster: a cluster token needs the cluster it belongs to")
	case req.Cluster != "":
		if _, err := s.st.GetClusterByName(ctx, req.Cluster); errors.Is(err, store.ErrNotFound) {
			return Created{}, service.Invalid("cluster %q does not exist: create it first", req.Cluster)
		} else if err != nil {
			return Created{}, err
		}
	}
	var expires time.Time
	if req.ExpiresIn > 0 {
		expires = s.now().Add(req.ExpiresIn).UTC()
	}
	secret, rec, err := auth.NewToken(req.Name, req.Role, req.Cluster, expires)
	if err != nil {
		return Created{}, service.Invalid("%v", err)
	}
	rec.CreatedAt = s.now().UTC()
	stored, err := s.st.CreateToken(ctx, rec)
	if err != nil {
		return Created{}, fmt.Errorf("token: %w", err)
	}
	s.log.Info("token created", append([]any{"tokenID", stored.ID, "name", stored.Name, "role", stored.Role, "cluster", stored.Cluster}, service.Actor(ctx)...)...)
	return Created{Token: stored, Secret: secret}, nil
}

// List lists every token, revoked ones included, oldest first.
func (s *Service) List(ctx context.Context) ([]store.Token, error) {
	return s.st.ListTokens(ctx)
}

// Revoke revokes a token and ends its console sessions.
func (s *Service) Revoke(ctx context.Context, id int64) error {
	t, err := s.st.GetToken(ctx, id)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if err := s.st.RevokeToken(ctx, id, s.now().UTC()); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	s.log.Info("token revoked", append([]any{"tokenID", id, "name", t.Name, "role", t.Role}, service.Actor(ctx)...)...)
	return nil
}
