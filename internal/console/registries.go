package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/service"
	"mamori/internal/service/registries"
	"mamori/internal/service/registries/regfilter"
	"mamori/internal/store"
)

type registriesData struct {
	Registries []store.Registry
	CanSync    bool
}

func (c *Console) registriesPage(w http.ResponseWriter, r *http.Request) {
	regs, err := c.opt.services.Registries.List(r.Context())
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
	d := registryFormData{ScheduleHours: "24", CanSeal: c.opt.services.Registries.CanSeal()}
	if idS := r.PathValue("id"); idS != "" {
		id, err := strconv.ParseInt(idS, 10, 64)
		if err != nil || id <= 0 {
			c.notFound(w, r, "Registry IDs are numbers; this one is not.")
			return
		}
		reg, err := c.opt.services.Registries.Get(r.Context(), id)
		if err != nil {
			c.storeError(w, r, "registry", err)
			return
		}
		d = formFromRegistry(reg, c.opt.services.Registries.CanSeal())
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
	if !c.readForm(w, r) {
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
		if existing, err = c.opt.services.Registries.Get(ctx, id); err != nil {
			c.storeError(w, r, "registry", err)
			return
		}
	}
	f := r.PostForm
	d := registryFormData{
		Edit: edit, ID: existing.ID, HasSecret: len(existing.Secret) > 0, CanSeal: c.opt.services.Registries.CanSeal(),
		Name:          strings.TrimSpace(f.Get("name")),
		URL:           strings.TrimSpace(f.Get("url")),
		Username:      strings.TrimSpace(f.Get("username")),
		RepoFilter:    strings.TrimSpace(f.Get("repository_filter")),
		TagFilter:     strings.TrimSpace(f.Get("tag_filter")),
		ScheduleHours: strings.TrimSpace(f.Get("schedule_hours")),
		Insecure:      f.Get("insecure") != "",
	}
	in, errs := registryInput(d, f.Get("password"), f.Get("clear_password") != "")
	d.Errors = errs
	if len(d.Errors) > 0 {
		// Show the service's objection too, so that one round trip shows all.
		if err := c.opt.services.Registries.Check(in); err != nil {
			d.Errors = append([]string{sentence(err.Error())}, d.Errors...)
		}
		c.renderRegistryForm(w, r, http.StatusUnprocessableEntity, d)
		return
	}
	var err error
	if edit {
		_, err = c.opt.services.Registries.Update(ctx, existing.ID, in)
	} else {
		_, err = c.opt.services.Registries.Create(ctx, in)
	}
	switch {
	case errors.Is(err, service.ErrInvalid):
		d.Errors = append(d.Errors, sentence(err.Error()))
		c.renderRegistryForm(w, r, http.StatusUnprocessableEntity, d)
		return
	case errors.Is(err, store.ErrConflict):
		d.Errors = append(d.Errors, "A registry named "+strconv.Quote(d.Name)+" already exists.")
		c.renderRegistryForm(w, r, http.StatusConflict, d)
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

// registryInput reads the form into the registry service's input. What
// the form alone can tell (the text syntax of the filters, the schedule as
// hours) is checked here; every rule of a registry is the service's, the
// same as the API's.
func registryInput(d registryFormData, password string, clearPassword bool) (registries.Input, []string) {
	var errs []string
	in := registries.Input{Name: d.Name, URL: d.URL, Username: d.Username, Insecure: d.Insecure}
	repos, err := regfilter.ParseRepositories(d.RepoFilter)
	if err != nil {
		errs = append(errs, "Repository filter: "+err.Error()+".")
	}
	in.Repositories = repos
	tags, err := regfilter.ParseTags(d.TagFilter)
	if err != nil {
		errs = append(errs, "Tag filter: "+err.Error()+".")
	}
	in.Tags = tags
	if d.ScheduleHours != "" && d.ScheduleHours != "0" {
		h, err := strconv.ParseFloat(d.ScheduleHours, 64)
		// A float64 of hours over a century would overflow the duration.
		if err != nil || h <= 0 || h > 24*365*100 || h != h {
			errs = append(errs, "Schedule: a number of hours between syncs (empty or 0: manual only).")
		} else {
			in.Schedule = time.Duration(h * float64(time.Hour)).Round(time.Minute)
		}
	}
	switch {
	case password != "":
		in.Password = &password
	case clearPassword:
		empty := ""
		in.Password = &empty
	}
	return in, errs
}

func (c *Console) registryDelete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Registry IDs are numbers; this one is not.")
		return
	}
	if err := c.opt.services.Registries.Delete(r.Context(), id); err != nil {
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
	if _, err := c.opt.services.Registries.Get(r.Context(), id); err != nil {
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
