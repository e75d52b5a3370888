package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mamori/internal/auth"
	"mamori/internal/store"
)

// bootstrapTokenName names the first admin token.
const bootstrapTokenName = "bootstrap-admin"

// bootstrap creates the first admin token when the store has no active
// token: the one in MAMORI_BOOTSTRAP_TOKEN, or a generated one printed once
// to Stderr — the only place it ever appears. The environment token is
// ignored (with a warning) once any active token exists.
func (s *Server) bootstrap(ctx context.Context) error {
	toks, err := s.st.ListTokens(ctx)
	if err != nil {
		return fmt.Errorf("server: list tokens: %w", err)
	}
	env := strings.TrimSpace(s.cfg.Getenv(EnvBootstrapToken))
	for _, t := range toks {
		if t.RevokedAt.IsZero() {
			if env != "" {
				s.log.Warn(EnvBootstrapToken + " ignored: the store already has tokens")
			}
			return nil
		}
	}
	var token string
	if env != "" {
		if err := auth.CheckToken(env); err != nil {
			return fmt.Errorf("server: %s: %w", EnvBootstrapToken, err)
		}
		token = env
	} else if token, err = auth.GenerateToken(); err != nil {
		return err
	}
	rec := store.Token{Name: bootstrapTokenName, Role: string(auth.RoleAdmin), Hash: auth.HashToken(token), Prefix: auth.DisplayPrefix(token)}
	for i := 2; ; i++ {
		_, err = s.st.CreateToken(ctx, rec)
		if !errors.Is(err, store.ErrConflict) || i > 100 {
			break
		}
		rec.Name = fmt.Sprintf("%s-%d", bootstrapTokenName, i) // an earlier bootstrap token was revoked
	}
	if err != nil {
		return fmt.Errorf("server: create bootstrap token: %w", err)
	}
	if env != "" {
		s.log.Info("created the admin token from "+EnvBootstrapToken, "prefix", rec.Prefix)
		return nil
	}
	fmt.Fprintf(s.cfg.Stderr, "\nmamori server: created the first admin token. It is shown only this once; store it now:\n\n    %s\n\nUse it with: mamori image REF --server URL (token in MAMORI_TOKEN), or log in to the console.\n\n", token)
	return nil
}
