package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
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
	res, err := s.st.ListImages(r.Context(), f)
	if err != nil {
		s.storeError(w, r, "images", err)
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
	img, err := s.st.GetImage(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "image", err)
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
	if err := s.st.DeleteImage(r.Context(), id); err != nil {
		s.storeError(w, r, "image", err)
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
	if _, err := s.st.GetImage(r.Context(), id); err != nil {
		s.storeError(w, r, "image", err)
		return
	}
	vs, err := s.st.ListImageVulnerabilities(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "image", err)
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
	kind := model.FindingKind(r.URL.Query().Get("kind"))
	switch kind {
	case "", model.KindSecret, model.KindMalware, model.KindMisconfig:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid kind %q: want secret, malware or misconfig", kind))
		return
	}
	if _, err := s.st.GetImage(r.Context(), id); err != nil {
		s.storeError(w, r, "image", err)
		return
	}
	fs, err := s.st.ListFindings(r.Context(), id, kind)
	if err != nil {
		s.storeError(w, r, "image", err)
		return
	}
	if fs == nil {
		fs = []model.Finding{}
	}
	writeJSON(w, http.StatusOK, api.ImageFindings{Findings: fs, Total: len(fs)})
}

// ---------------------------------------------------------------------------
// Vulnerabilities

// vulnFilter reads the vulnerability list's query parameters.
func vulnFilter(r *http.Request) (store.VulnerabilityFilter, error) {
	q := r.URL.Query()
	pg, err := page(r)
	if err != nil {
		return store.VulnerabilityFilter{}, err
	}
	f := store.VulnerabilityFilter{Query: q.Get("q"), Package: q.Get("package"), Sort: store.VulnerabilitySort(q.Get("sort")), Page: pg}
	switch f.Sort {
	case "", store.VulnSortSeverity, store.VulnSortID, store.VulnSortPackage, store.VulnSortImages, store.VulnSortCVSS:
	default:
		return f, fmt.Errorf("invalid sort %q: want severity, id, package, images or cvss", f.Sort)
	}
	for _, v := range q["severity"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			sev, err := model.ParseSeverity(name)
			if err != nil {
				return f, err
			}
			f.Severities = append(f.Severities, sev)
		}
	}
	for _, b := range []struct {
		name string
		dst  **float64
	}{{"cvssMin", &f.CVSSMin}, {"cvssMax", &f.CVSSMax}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x > 10 {
			return f, fmt.Errorf("invalid %s %q: want a number from 0 to 10", b.name, v)
		}
		*b.dst = &x
	}
	if f.CVSSMin != nil && f.CVSSMax != nil && *f.CVSSMin > *f.CVSSMax {
		return f, errors.New("cvssMin is above cvssMax")
	}
	if f.FixableOnly, err = boolParam(r, "fixable"); err != nil {
		return f, err
	}
	if f.Reverse, err = boolParam(r, "reverse"); err != nil {
		return f, err
	}
	if v := q.Get("image"); v != "" {
		if f.ImageID, err = strconv.ParseInt(v, 10, 64); err != nil || f.ImageID <= 0 {
			return f, fmt.Errorf("invalid image %q", v)
		}
	}
	return f, nil
}

func (s *Server) handleListVulnerabilities(w http.ResponseWriter, r *http.Request) {
	f, err := vulnFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.st.ListVulnerabilities(r.Context(), f)
	if err != nil {
		s.storeError(w, r, "vulnerabilities", err)
		return
	}
	writeJSON(w, http.StatusOK, apiVulnPage(res))
}

func (s *Server) handleGetVulnerability(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		writeError(w, http.StatusBadRequest, "invalid vulnerability id")
		return
	}
	pg, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := s.st.GetVulnerability(r.Context(), id, pg)
	if err != nil {
		s.storeError(w, r, "vulnerability", err)
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
	res, err := s.st.ListScans(r.Context(), f)
	if err != nil {
		s.storeError(w, r, "scans", err)
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
