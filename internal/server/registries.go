package server

import (
	"net/http"
	"time"

	"mamori/internal/api"
	"mamori/internal/service"
	"mamori/internal/service/registries"
	"mamori/internal/service/registries/regfilter"
	"mamori/internal/store"
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
		LastSync: apiRegistrySync(r.LastSync), Syncing: s.syncer.Running(r.ID)}
	if r.Schedule > 0 {
		v.Schedule = r.Schedule.String()
	}
	return v
}

// registryInput reads an API registry request into the service's input.
func registryInput(req api.RegistryRequest) (registries.Input, error) {
	in := registries.Input{Name: req.Name, URL: req.URL, Username: req.Username, Password: req.Password,
		Repositories: req.Repositories, Tags: regfilter.Tags{Include: req.Tags.Include, Regex: req.Tags.Regex, Latest: req.Tags.Latest},
		Insecure: req.Insecure}
	if req.Schedule != "" && req.Schedule != "0" {
		d, err := time.ParseDuration(req.Schedule)
		if err != nil || d <= 0 {
			return in, service.Invalid("schedule %q: want a duration of at least %v (\"6h\"), or \"\" for manual syncs", req.Schedule, registries.MinSchedule)
		}
		in.Schedule = d
	}
	return in, nil
}

func (s *Server) handleListRegistries(w http.ResponseWriter, r *http.Request) {
	rs, err := s.registries.List(r.Context())
	if err != nil {
		s.fail(w, r, "registries", err)
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
	reg, err := s.registries.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, "registry", err)
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
	in, err := registryInput(req)
	if err != nil {
		s.fail(w, r, "registry", err)
		return
	}
	stored, err := s.registries.Create(r.Context(), in)
	if err != nil {
		s.fail(w, r, "registry", err)
		return
	}
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
	in, err := registryInput(req)
	if err != nil {
		s.fail(w, r, "registry", err)
		return
	}
	stored, err := s.registries.Update(r.Context(), id, in)
	if err != nil {
		s.fail(w, r, "registry", err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(stored))
}

func (s *Server) handleDeleteRegistry(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.registries.Delete(r.Context(), id); err != nil {
		s.fail(w, r, "registry", err)
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
	if _, err := s.registries.Get(r.Context(), id); err != nil {
		s.fail(w, r, "registry", err)
		return
	}
	started := s.syncer.Start(id)
	s.log.Info("registry sync requested", append([]any{"registry", id, "started", started}, service.Actor(r.Context())...)...)
	status := "started"
	if !started {
		status = "running"
	}
	writeJSON(w, http.StatusAccepted, api.Started{Status: status, Registry: id})
}

func (s *Server) handleRematch(w http.ResponseWriter, r *http.Request) {
	// A database imported or updated since the last scheduler tick is
	// opened first: the re-match uses it at once.
	if _, err := s.matcher.Reload(r.Context()); err != nil {
		s.log.Warn("vulnerability DB", "err", err)
	}
	if !s.matcher.VulnDBAvailable() {
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
	writeJSON(w, http.StatusOK, s.matcher.DBInfo(r.Context()))
}
