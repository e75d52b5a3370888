package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/store"
)

// Registry form limits, each with its reason.
const (
	maxRegistryName   = 100  // a display name
	maxRegistryURL    = 2048 // the practical URL limit of browsers and proxies
	maxRegistryField  = 512  // user names and filters
	maxRegistrySecret = 8192 // registry tokens (JWTs, cloud access tokens) are a few KiB
	// maxScheduleHours: a schedule longer than four weeks is a mistake, not a schedule.
	maxScheduleHours = 24 * 28
)

type registriesData struct {
	Registries []store.Registry
	CanSync    bool
}

func (c *Console) registriesPage(w http.ResponseWriter, r *http.Request) {
	regs, err := c.st.ListRegistries(r.Context())
	if err != nil {
		c.storeError(w, r, "registry list", err)
		return
	}
	p := c.newPage(r, "registries", "Registries", crumb{Label: "Registries"})
	p.Data = registriesData{Registries: regs, CanSync: c.opt.sync != nil}
	p.Flash = flashFromQuery(r)
	c.render(w, r, http.StatusOK, "registries", p)
}

// registryFormData is the add/edit form. The password is write-only: the
// form never shows it, only whether one is stored.
type registryFormData struct {
	Edit          bool
	ID            int64
	Name          string
	URL           string
	Username      string
	HasSecret     bool
	RepoFilter    string
	TagFilter     string
	ScheduleHours string
	Insecure      bool
	CanSeal       bool
	Errors        []string
}

func (c *Console) registryForm(w http.ResponseWriter, r *http.Request) {
	d := registryFormData{ScheduleHours: "24", CanSeal: c.opt.seal != nil}
	if idS := r.PathValue("id"); idS != "" {
		id, err := strconv.ParseInt(idS, 10, 64)
		if err != nil || id <= 0 {
			c.notFound(w, r, "Registry IDs are numbers; this one is not.")
			return
		}
		reg, err := c.st.GetRegistry(r.Context(), id)
		if err != nil {
			c.storeError(w, r, "registry", err)
			return
		}
		d = formFromRegistry(reg, c.opt.seal != nil)
	}
	c.renderRegistryForm(w, r, http.StatusOK, d)
}

func formFromRegistry(reg store.Registry, canSeal bool) registryFormData {
	sched := ""
	if reg.Schedule > 0 {
		sched = strconv.FormatFloat(reg.Schedule.Hours(), 'f', -1, 64)
	}
	return registryFormData{
		Edit: true, ID: reg.ID, Name: reg.Name, URL: reg.URL, Username: reg.Username,
		HasSecret: len(reg.Secret) > 0, RepoFilter: reg.RepositoryFilter, TagFilter: reg.TagFilter,
		ScheduleHours: sched, Insecure: reg.Insecure, CanSeal: canSeal,
	}
}

func (c *Console) renderRegistryForm(w http.ResponseWriter, r *http.Request, status int, d registryFormData) {
	title := "Add registry"
	if d.Edit {
		title = "Edit registry"
	}
	p := c.newPage(r, "registries", title, crumb{Label: "Registries", Href: "/registries"}, crumb{Label: title})
	p.Data = d
	c.render(w, r, status, "registry_form", p)
}

func (c *Console) registrySave(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ctx := r.Context()
	var existing store.Registry
	edit := r.PathValue("id") != ""
	if edit {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			c.notFound(w, r, "Registry IDs are numbers; this one is not.")
			return
		}
		if existing, err = c.st.GetRegistry(ctx, id); err != nil {
			c.storeError(w, r, "registry", err)
			return
		}
	}
	f := r.PostForm
	d := registryFormData{
		Edit: edit, ID: existing.ID, HasSecret: len(existing.Secret) > 0, CanSeal: c.opt.seal != nil,
		Name:          strings.TrimSpace(f.Get("name")),
		URL:           strings.TrimSpace(f.Get("url")),
		Username:      strings.TrimSpace(f.Get("username")),
		RepoFilter:    strings.TrimSpace(f.Get("repository_filter")),
		TagFilter:     strings.TrimSpace(f.Get("tag_filter")),
		ScheduleHours: strings.TrimSpace(f.Get("schedule_hours")),
		Insecure:      f.Get("insecure") != "",
	}
	password := f.Get("password")
	clearSecret := f.Get("clear_password") != ""

	reg := existing
	reg.Name, reg.URL, reg.Username = d.Name, d.URL, d.Username
	reg.RepositoryFilter, reg.TagFilter, reg.Insecure = d.RepoFilter, d.TagFilter, d.Insecure
	d.Errors = validateRegistry(&reg, d.ScheduleHours, len(password))
	switch {
	case password != "" && c.opt.seal == nil:
		d.Errors = append(d.Errors, "This server cannot store registry passwords: it has no encryption key configured.")
	case password != "":
		sealed, err := c.opt.seal([]byte(password))
		if err != nil {
			c.opt.logger.Error("console: seal registry secret", "registry", reg.Name, "err", err)
			d.Errors = append(d.Errors, "The password could not be encrypted; the server log has the details.")
		}
		reg.Secret = sealed
	case clearSecret:
		reg.Secret = []byte{}
	default:
		reg.Secret = nil // keep the stored one
	}
	if len(d.Errors) > 0 {
		c.renderRegistryForm(w, r, http.StatusUnprocessableEntity, d)
		return
	}
	var err error
	if edit {
		_, err = c.st.UpdateRegistry(ctx, reg)
	} else {
		_, err = c.st.CreateRegistry(ctx, reg)
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		d.Errors = append(d.Errors, "A registry named "+strconv.Quote(reg.Name)+" already exists.")
		c.renderRegistryForm(w, r, http.StatusConflict, d)
		return
	case errors.Is(err, store.ErrInvalid):
		d.Errors = append(d.Errors, "The store refused this registry: "+err.Error())
		c.renderRegistryForm(w, r, http.StatusUnprocessableEntity, d)
		return
	case err != nil:
		c.storeError(w, r, "registry", err)
		return
	}
	msg := "saved"
	if !edit {
		msg = "added"
	}
	redirectFlash(w, r, "/registries", msg)
}

// validateRegistry checks the form's fields and sets reg.Schedule.
func validateRegistry(reg *store.Registry, schedule string, secretLen int) []string {
	var errs []string
	if reg.Name == "" || len(reg.Name) > maxRegistryName || hasControl(reg.Name) {
		errs = append(errs, fmt.Sprintf("Name: required, at most %d characters, no control characters.", maxRegistryName))
	}
	if reg.URL == "" || len(reg.URL) > maxRegistryURL || hasControl(reg.URL) || strings.ContainsAny(reg.URL, " \t") {
		errs = append(errs, "URL: required, e.g. https://registry.example.com or registry.example.com:5000.")
	} else {
		u := reg.URL
		if !strings.Contains(u, "://") {
			u = "https://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") || pu.User != nil {
			errs = append(errs, "URL: not a registry address (https://HOST[:PORT], without credentials in it).")
		}
	}
	for _, fv := range []struct{ name, v string }{
		{"User name", reg.Username}, {"Repository filter", reg.RepositoryFilter}, {"Tag filter", reg.TagFilter},
	} {
		if len(fv.v) > maxRegistryField || hasControl(fv.v) {
			errs = append(errs, fmt.Sprintf("%s: at most %d characters, no control characters.", fv.name, maxRegistryField))
		}
	}
	if secretLen > maxRegistrySecret {
		errs = append(errs, fmt.Sprintf("Password: at most %d bytes.", maxRegistrySecret))
	}
	reg.Schedule = 0
	if schedule != "" && schedule != "0" {
		h, err := strconv.ParseFloat(schedule, 64)
		if err != nil || h < 0.25 || h > maxScheduleHours {
			errs = append(errs, fmt.Sprintf("Schedule: hours between syncs, from 0.25 to %d (empty or 0: manual only).", maxScheduleHours))
		} else {
			reg.Schedule = time.Duration(h * float64(time.Hour)).Round(time.Minute)
		}
	}
	return errs
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

func (c *Console) registryDelete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Registry IDs are numbers; this one is not.")
		return
	}
	if err := c.st.DeleteRegistry(r.Context(), id); err != nil {
		c.storeError(w, r, "registry", err)
		return
	}
	redirectFlash(w, r, "/registries", "deleted")
}

func (c *Console) registrySync(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Registry IDs are numbers; this one is not.")
		return
	}
	if c.opt.sync == nil {
		c.errorPage(w, r, http.StatusNotImplemented, "Sync not available", "This server does not run registry syncs.")
		return
	}
	if _, err := c.st.GetRegistry(r.Context(), id); err != nil {
		c.storeError(w, r, "registry", err)
		return
	}
	if err := c.opt.sync(r.Context(), id); err != nil {
		c.opt.logger.Error("console: start registry sync", "registry", id, "err", err)
		redirectFlash(w, r, "/registries", "sync-failed")
		return
	}
	redirectFlash(w, r, "/registries", "sync-started")
}

// Flash messages travel as a fixed code in the redirect's query ("done"),
// never as free text, so a crafted link cannot put words on the page.
var flashCodes = map[string]flash{
	"added":        {Kind: "ok", Text: "Registry added."},
	"saved":        {Kind: "ok", Text: "Registry saved."},
	"deleted":      {Kind: "ok", Text: "Registry deleted."},
	"sync-started": {Kind: "info", Text: "Sync started. The status column shows its progress; reload the page to update it."},
	"sync-failed":  {Kind: "error", Text: "The sync could not be started; the server log has the details."},
	"revoked":      {Kind: "ok", Text: "Token revoked. Its console sessions were ended."},
}

func redirectFlash(w http.ResponseWriter, r *http.Request, path, code string) {
	http.Redirect(w, r, path+"?done="+url.QueryEscape(code), http.StatusSeeOther)
}

func flashFromQuery(r *http.Request) *flash {
	if f, ok := flashCodes[r.URL.Query().Get("done")]; ok {
		return &f
	}
	return nil
}
