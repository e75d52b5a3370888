// Package registries is the registry service: the one set of rules for a
// registry's configuration (address, credentials, filters, schedule) and
// the audit lines of its changes. The API (/api/v1/registries) and the
// console's registry form both call it, so a registry refused through one
// is refused through the other.
package registries

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"

	"mamori/internal/service"
	"mamori/internal/service/registries/regfilter"
	"mamori/internal/store"
)

// Limits, each with its reason.
const (
	MaxNameLen     = 100
	MaxUsernameLen = 256
	// MaxPasswordLen: cloud access tokens (JWTs) reach a few KiB.
	MaxPasswordLen = 16 << 10
	// MaxURLLen: the practical URL limit of browsers and proxies.
	MaxURLLen = 2048
	// MinSchedule: a registry scan lists every repository; more often than
	// every 5 minutes would hammer the registry for nothing.
	MinSchedule = 5 * time.Minute
)

// SealFunc encrypts a registry password with the server key.
type SealFunc func(plaintext []byte) ([]byte, error)

// Service manages registry configurations.
type Service struct {
	st   store.RegistryStore
	seal SealFunc
	log  *slog.Logger
}

// New returns the service. seal encrypts passwords; without it a password
// is refused rather than stored in the clear.
func New(st store.RegistryStore, seal SealFunc, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, seal: seal, log: log}
}

// CanSeal reports whether the service can store passwords.
func (s *Service) CanSeal() bool { return s.seal != nil }

// Input is a registry's configuration as a caller gives it.
type Input struct {
	Name, URL, Username string
	// Password: nil keeps the stored one (on update), "" clears it.
	Password *string
	// Repositories are globs (none: every repository).
	Repositories []string
	Tags         regfilter.Tags
	// Schedule is the interval between syncs; 0 = manual syncs only.
	Schedule time.Duration
	// Insecure allows plain HTTP and unverified TLS certificates.
	Insecure bool
}

// Host validates a registry URL ("https://host[:port]", "http://host[:port]"
// or "host[:port]") and returns its host[:port] and whether plain HTTP was
// asked for.
func Host(raw string) (string, bool, error) {
	raw = strings.TrimSpace(raw)
	if len(raw) > MaxURLLen {
		return "", false, service.Invalid("url: at most %d characters", MaxURLLen)
	}
	host, plain := raw, false
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", false, service.Invalid("url %q: %v", raw, err)
		}
		switch u.Scheme {
		case "https":
		case "http":
			plain = true
		default:
			return "", false, service.Invalid("url %q: scheme must be https or http", raw)
		}
		if u.User != nil {
			return "", false, service.Invalid("url must not carry credentials: use username and password")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", false, service.Invalid("url %q: give the registry's address only, without a path", raw)
		}
		host = u.Host
	}
	if host == "" {
		return "", false, service.Invalid("url is required")
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return "", false, service.Invalid("url %q: %v", raw, err)
	}
	return host, plain, nil
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// check validates in and returns the store record (Secret nil: not touched).
func (s *Service) check(in Input) (store.Registry, error) {
	var r store.Registry
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > MaxNameLen || hasControl(in.Name) {
		return r, service.Invalid("name is required: at most %d characters, no control characters", MaxNameLen)
	}
	_, plain, err := Host(in.URL)
	if err != nil {
		return r, err
	}
	if plain && !in.Insecure {
		return r, service.Invalid("url %q is plain HTTP: set insecure to allow it", strings.TrimSpace(in.URL))
	}
	if len(in.Username) > MaxUsernameLen || hasControl(in.Username) {
		return r, service.Invalid("username: at most %d characters, no control characters", MaxUsernameLen)
	}
	for _, g := range in.Repositories {
		if strings.Contains(g, ",") {
			return r, service.Invalid("repositories: pattern %q contains a comma", g)
		}
	}
	rf := regfilter.FormatRepositories(in.Repositories)
	if _, err := regfilter.ParseRepositories(rf); err != nil {
		return r, service.Invalid("%v", err)
	}
	if err := in.Tags.Validate(); err != nil {
		return r, service.Invalid("%v", err)
	}
	if in.Schedule != 0 && in.Schedule < MinSchedule {
		return r, service.Invalid("schedule %v: at least %v between syncs (or none: manual syncs only)", in.Schedule, MinSchedule)
	}
	return store.Registry{Name: in.Name, URL: strings.TrimSpace(in.URL), Username: in.Username,
		RepositoryFilter: rf, TagFilter: in.Tags.String(), Schedule: in.Schedule, Insecure: in.Insecure}, nil
}

// Check applies the rules of Create and Update to in without storing
// anything, for a form that shows every problem at once.
func (s *Service) Check(in Input) error {
	_, err := s.check(in)
	return err
}

// sealPassword encrypts a password for the store; "" gives an empty,
// non-nil secret (cleared), nil keeps the stored one.
func (s *Service) sealPassword(p *string) ([]byte, error) {
	switch {
	case p == nil:
		return nil, nil
	case *p == "":
		return []byte{}, nil
	case len(*p) > MaxPasswordLen:
		return nil, service.Invalid("password: at most %d bytes", MaxPasswordLen)
	case s.seal == nil:
		return nil, service.Invalid("this server cannot store registry passwords: it has no encryption key configured")
	}
	b, err := s.seal([]byte(*p))
	if err != nil {
		return nil, fmt.Errorf("registry: encrypt password: %w", err)
	}
	return b, nil
}

// Create checks in and stores a new registry; store.ErrConflict when the
// name is taken.
func (s *Service) Create(ctx context.Context, in Input) (store.Registry, error) {
	r, err := s.check(in)
	if err != nil {
		return store.Registry{}, err
	}
	if r.Secret, err = s.sealPassword(in.Password); err != nil {
		return store.Registry{}, err
	}
	stored, err := s.st.CreateRegistry(ctx, r)
	if err != nil {
		return store.Registry{}, fmt.Errorf("registry: %w", err)
	}
	s.log.Info("registry created", append([]any{"registry", stored.ID, "name", stored.Name, "url", stored.URL,
		"insecure", stored.Insecure, "schedule", stored.Schedule}, service.Actor(ctx)...)...)
	return stored, nil
}

// Update checks in and replaces registry id's configuration.
func (s *Service) Update(ctx context.Context, id int64, in Input) (store.Registry, error) {
	r, err := s.check(in)
	if err != nil {
		return store.Registry{}, err
	}
	r.ID = id
	if r.Secret, err = s.sealPassword(in.Password); err != nil {
		return store.Registry{}, err
	}
	stored, err := s.st.UpdateRegistry(ctx, r)
	if err != nil {
		return store.Registry{}, fmt.Errorf("registry: %w", err)
	}
	s.log.Info("registry updated", append([]any{"registry", id, "name", stored.Name, "url", stored.URL,
		"insecure", stored.Insecure, "passwordChanged", in.Password != nil}, service.Actor(ctx)...)...)
	return stored, nil
}

// Delete removes a registry (its scanned images stay).
func (s *Service) Delete(ctx context.Context, id int64) error {
	if err := s.st.DeleteRegistry(ctx, id); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	s.log.Info("registry deleted", append([]any{"registry", id}, service.Actor(ctx)...)...)
	return nil
}

// Get returns one registry.
func (s *Service) Get(ctx context.Context, id int64) (store.Registry, error) {
	r, err := s.st.GetRegistry(ctx, id)
	if err != nil {
		return store.Registry{}, fmt.Errorf("registry: %w", err)
	}
	return r, nil
}

// List lists the registries by name.
func (s *Service) List(ctx context.Context) ([]store.Registry, error) {
	return s.st.ListRegistries(ctx)
}
