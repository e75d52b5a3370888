package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/server/regfilter"
	"mamori/internal/store"
)

// Registry limits, each with its reason.
const (
	maxRegistryName = 100
	maxUsernameLen  = 256
	// maxPasswordLen: cloud access tokens (JWTs) reach a few KiB.
	maxPasswordLen = 16 << 10
	// minSchedule: a registry scan lists every repository; more often than
	// every 5 minutes would hammer the registry for nothing.
	minSchedule = 5 * time.Minute
)

func (s *Server) view(r store.Registry) api.Registry {
	repos, err := regfilter.ParseRepositories(r.RepositoryFilter)
	if err != nil {
		s.log.Warn("registry repository filter unreadable", "registry", r.ID, "err", err)
	}
	tags, err := regfilter.ParseTags(r.TagFilter)
	if err != nil {
		s.log.Warn("registry tag filter unreadable", "registry", r.ID, "err", err)
	}
	if repos == nil {
		repos = []string{}
	}
	v := api.Registry{ID: r.ID, Name: r.Name, URL: r.URL, Username: r.Username, PasswordSet: len(r.Secret) > 0,
		Repositories: repos, Tags: api.TagFilter{Include: tags.Include, Regex: tags.Regex, Latest: tags.Latest},
		RepositoryFilter: r.RepositoryFilter, TagFilter: r.TagFilter, Insecure: r.Insecure, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		LastSync: apiRegistrySync(r.LastSync), Syncing: s.syncer.running(r.ID)}
	if r.Schedule > 0 {
		v.Schedule = r.Schedule.String()
	}
	return v
}

// registryHost validates a registry URL ("https://host[:port]",
// "http://host[:port]" or "host[:port]") and returns its host[:port] and
// whether plain HTTP was asked for.
func registryHost(raw string) (string, bool, error) {
	raw = strings.TrimSpace(raw)
	host, plain := raw, false
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", false, fmt.Errorf("url %q: %w", raw, err)
		}
		switch u.Scheme {
		case "https":
		case "http":
			plain = true
		default:
			return "", false, fmt.Errorf("url %q: scheme must be https or http", raw)
		}
		if u.User != nil {
			return "", false, fmt.Errorf("url must not carry credentials: use username and password")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", false, fmt.Errorf("url %q: give the registry's address only, without a path", raw)
		}
		host = u.Host
	}
	if host == "" {
		return "", false, fmt.Errorf("url is required")
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return "", false, fmt.Errorf("url %q: %w", raw, err)
	}
	return host, plain, nil
}

// toRegistry validates req into a store record (Secret nil: not touched).
func (s *Server) toRegistry(req api.RegistryRequest) (store.Registry, error) {
	var r store.Registry
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > maxRegistryName {
		return r, fmt.Errorf("name is required (at most %d characters)", maxRegistryName)
	}
	_, plain, err := registryHost(req.URL)
	if err != nil {
		return r, err
	}
	if plain && !req.Insecure {
		return r, fmt.Errorf("url %q is plain HTTP: set insecure to allow it", req.URL)
	}
	if len(req.Username) > maxUsernameLen {
		return r, fmt.Errorf("username is over %d characters", maxUsernameLen)
	}
	rf := regfilter.FormatRepositories(req.Repositories)
	if _, err := regfilter.ParseRepositories(rf); err != nil {
		return r, err
	}
	for _, g := range req.Repositories {
		if strings.Contains(g, ",") {
			return r, fmt.Errorf("repositories: pattern %q contains a comma", g)
		}
	}
	tags := regfilter.Tags{Include: req.Tags.Include, Regex: req.Tags.Regex, Latest: req.Tags.Latest}
	if err := tags.Validate(); err != nil {
		return r, err
	}
	tf := tags.String()
	var sched time.Duration
	if req.Schedule != "" && req.Schedule != "0" {
		if sched, err = time.ParseDuration(req.Schedule); err != nil || sched < minSchedule {
			return r, fmt.Errorf("schedule %q: want a duration of at least %v (\"6h\"), or \"\" for manual syncs", req.Schedule, minSchedule)
		}
	}
	return store.Registry{Name: req.Name, URL: strings.TrimSpace(req.URL), Username: req.Username,
		RepositoryFilter: rf, TagFilter: tf, Schedule: sched, Insecure: req.Insecure}, nil
}

// sealPassword encrypts a password for the store; "" gives an empty, non-nil secret (cleared).
func (s *Server) sealPassword(p *string) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	if *p == "" {
		return []byte{}, nil
	}
	if len(*p) > maxPasswordLen {
		return nil, fmt.Errorf("password is over %d bytes", maxPasswordLen)
	}
	return s.box.seal([]byte(*p))
}

func (s *Server) handleListRegistries(w http.ResponseWriter, r *http.Request) {
	rs, err := s.st.ListRegistries(r.Context())
	if err != nil {
		s.storeError(w, r, "registries", err)
		return
	}
	out := api.RegistryList{Registries: make([]api.Registry, 0, len(rs))}
	for _, x := range rs {
		out.Registries = append(out.Registries, s.view(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetRegistry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg, err := s.st.GetRegistry(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "registry", err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(reg))
}

func (s *Server) handleCreateRegistry(w http.ResponseWriter, r *http.Request) {
	var req api.RegistryRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg, err := s.toRegistry(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if reg.Secret, err = s.sealPassword(req.Password); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := s.st.CreateRegistry(r.Context(), reg)
	if err != nil {
		s.storeError(w, r, "registry", err)
		return
	}
	p, _ := auth.PrincipalFromRequest(r)
	s.log.Info("registry created", "registry", stored.ID, "name", stored.Name, "url", stored.URL, "by", p.TokenID)
	writeJSON(w, http.StatusCreated, s.view(stored))
}

func (s *Server) handleUpdateRegistry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var req api.RegistryRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg, err := s.toRegistry(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg.ID = id
	if reg.Secret, err = s.sealPassword(req.Password); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := s.st.UpdateRegistry(r.Context(), reg)
	if err != nil {
		s.storeError(w, r, "registry", err)
		return
	}
	p, _ := auth.PrincipalFromRequest(r)
	s.log.Info("registry updated", "registry", id, "by", p.TokenID, "passwordChanged", req.Password != nil)
	writeJSON(w, http.StatusOK, s.view(stored))
}

func (s *Server) handleDeleteRegistry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.DeleteRegistry(r.Context(), id); err != nil {
		s.storeError(w, r, "registry", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSyncRegistry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := s.st.GetRegistry(r.Context(), id); err != nil {
		s.storeError(w, r, "registry", err)
		return
	}
	started := s.syncer.start(id)
	status := "started"
	if !started {
		status = "running"
	}
	writeJSON(w, http.StatusAccepted, api.Started{Status: status, Registry: id})
}

func (s *Server) handleRematch(w http.ResponseWriter, r *http.Request) {
	if !s.vdb.available() {
		writeError(w, http.StatusConflict, "no vulnerability database: run `mamori db update` (or `mamori db import`) on the server")
		return
	}
	started := s.startRematch()
	status := "started"
	if !started {
		status = "running"
	}
	writeJSON(w, http.StatusAccepted, api.Started{Status: status})
}

func (s *Server) handleDB(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.vdb.info(r.Context(), s.st))
}

// registryCredentials decrypts a registry's password.
func (s *Server) registryCredentials(_ context.Context, r store.Registry) (string, error) {
	if len(r.Secret) == 0 {
		return "", nil
	}
	p, err := s.box.open(r.Secret)
	if err != nil {
		return "", fmt.Errorf("registry %s: %w", r.Name, err)
	}
	return string(p), nil
}
