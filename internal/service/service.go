// Package service holds what every domain service of mamori server shares.
// A domain service (service/images, service/registries, service/tokens,
// service/events, service/identities) sits between the transports (the
// JSON API in internal/server, the console in internal/console) and the
// store: every rule of its domain and every audit line is in it, once, so
// the API and the console behave alike. A service takes its caller from
// the context (auth.PrincipalFromContext) for its audit lines and, for
// machine identities, for the scope it enforces.
package service

import (
	"context"
	"errors"
	"fmt"

	"mamori/internal/auth"
)

// ErrInvalid is wrapped by every error a service returns for input it
// refuses; the message says what is wrong, for a person. Transports answer
// it with 400 (API) or the form with the message (console). Store errors
// (store.ErrNotFound, store.ErrConflict) pass through wrapped.
var ErrInvalid = errors.New("invalid")

// Invalid returns an error wrapping ErrInvalid with a message.
func Invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Actor names the caller for audit lines: the token's name and ID, or
// "system" for the server's own work.
func Actor(ctx context.Context) []any {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok {
		return []any{"by", "system"}
	}
	return []any{"by", p.TokenName, "byTokenID", p.TokenID}
}
