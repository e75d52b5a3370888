package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/service/images"
	"mamori/internal/service/tokens"
	"mamori/internal/store"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if _, err := s.st.SchemaVersion(r.Context()); err != nil {
		s.log.Error("health check", "err", err)
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Version: s.cfg.Version})
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFromRequest(r)
	writeJSON(w, http.StatusOK, api.Whoami{TokenID: p.TokenID, Name: p.TokenName, Role: string(p.Role), Via: string(p.Via), Cluster: p.Cluster})
}

// ---------------------------------------------------------------------------
// Images

func (s *Server) handleListImages(w http.ResponseWriter, r *http.Request) {
	pg, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	f := store.ImageFilter{Query: q.Get("q"), Sort: store.ImageSort(q.Get("sort")), Page: pg}
	switch f.Sort {
	case "", store.ImageSortLastScanned, store.ImageSortName, store.ImageSortRisk:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid sort %q: want lastScanned, name or risk", f.Sort))
		return
	}
	if f.Reverse, err = boolParam(r, "reverse"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.images.ListImages(r.Context(), f)
	if err != nil {
		s.fail(w, r, "images", err)
		return
	}
	writeJSON(w, http.StatusOK, apiImagePage(res))
}

func (s *Server) handleGetImage(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	img, err := s.images.GetImage(r.Context(), id)
	if err != nil {
		s.fail(w, r, "image", err)
		return
	}
	writeJSON(w, http.StatusOK, apiImageDetail(img))
}

func (s *Server) handleDeleteImage(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.images.DeleteImage(r.Context(), id); err != nil {
		s.fail(w, r, "image", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleImageVulnerabilities(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vs, err := s.images.ImageVulnerabilities(r.Context(), id)
	if err != nil {
		s.fail(w, r, "image", err)
		return
	}
	if vs == nil {
		vs = []model.Vulnerability{}
	}
	writeJSON(w, http.StatusOK, api.ImageVulnerabilities{Vulnerabilities: vs, Total: len(vs)})
}

func (s *Server) handleImageFindings(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fs, err := s.images.ImageFindings(r.Context(), id, model.FindingKind(r.URL.Query().Get("kind")))
	if err != nil {
		s.fail(w, r, "image", err)
		return
	}
	if fs == nil {
		fs = []model.Finding{}
	}
	writeJSON(w, http.StatusOK, api.ImageFindings{Findings: fs, Total: len(fs)})
}

// ---------------------------------------------------------------------------
// Vulnerabilities

// vulnFilter reads the vulnerability list's query parameters: the
// filters as the images service parses them (the console's too), and the page.
func vulnFilter(r *http.Request) (store.VulnerabilityFilter, error) {
	pg, err := page(r)
	if err != nil {
		return store.VulnerabilityFilter{}, service.Invalid("%v", err)
	}
	f, err := images.ParseVulnerabilityFilter(r.URL.Query())
	f.Page = pg
	return f, err
}

func (s *Server) handleListVulnerabilities(w http.ResponseWriter, r *http.Request) {
	f, err := vulnFilter(r)
	if err != nil {
		s.fail(w, r, "vulnerabilities", err)
		return
	}
	res, err := s.images.ListVulnerabilities(r.Context(), f)
	if err != nil {
		s.fail(w, r, "vulnerabilities", err)
		return
	}
	writeJSON(w, http.StatusOK, apiVulnPage(res))
}

func (s *Server) handleGetVulnerability(w http.ResponseWriter, r *http.Request) {
	pg, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := s.images.GetVulnerability(r.Context(), r.PathValue("id"), pg)
	if err != nil {
		s.fail(w, r, "vulnerability", err)
		return
	}
	writeJSON(w, http.StatusOK, apiVulnDetail(d))
}

// ---------------------------------------------------------------------------
// Scans

func (s *Server) handleListScans(w http.ResponseWriter, r *http.Request) {
	pg, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.ScanFilter{Page: pg}
	if v := r.URL.Query().Get("image"); v != "" {
		if f.ImageID, err = strconv.ParseInt(v, 10, 64); err != nil || f.ImageID <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid image %q", v))
			return
		}
	}
	res, err := s.images.ListScans(r.Context(), f)
	if err != nil {
		s.fail(w, r, "scans", err)
		return
	}
	writeJSON(w, http.StatusOK, apiScanPage(res))
}

// ---------------------------------------------------------------------------
// Tokens

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.tokens.List(r.Context())
	if err != nil {
		s.fail(w, r, "tokens", err)
		return
	}
	out := api.TokenList{Tokens: make([]api.Token, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, apiToken(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var life time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid expiresIn %q: want a positive duration such as 720h", req.ExpiresIn))
			return
		}
		life = d
	}
	c, err := s.tokens.Create(r.Context(), tokens.Request{Name: req.Name, Role: auth.Role(req.Role), Cluster: req.Cluster, ExpiresIn: life})
	if err != nil {
		s.fail(w, r, "token", err)
		return
	}
	writeJSON(w, http.StatusCreated, apiTokenCreated(c))
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.tokens.Revoke(r.Context(), id); err != nil {
		s.fail(w, r, "token", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
