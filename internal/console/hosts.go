package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"mamori/internal/api"
	"mamori/internal/hostsettings"
	"mamori/internal/service"
	"mamori/internal/store"
)

// Host protection (issue 12): the Hosts page (host groups with their
// module settings, the agents and their group), a group's page (its
// settings document, members, deletion), its allow-list, the quarantine
// and the integrity baselines agents report, with the requests to agents
// (restore, delete, rebuild, compare) — all through service/hosts, as the
// API. Each module's events are the Events page filtered by source host
// and module.

// hostModuleTab is one module's filtered view of the Events page.
type hostModuleTab struct {
	Module, Label, Href string
}

// hostModuleTabs are the per-module event pages: links to the one Events
// page with source=host&module=<name>.
func hostModuleTabs() []hostModuleTab {
	labels := map[string]string{hostsettings.Antimalware: "Anti-malware", hostsettings.Integrity: "Integrity",
		hostsettings.LogInspect: "Log inspection", hostsettings.AppControl: "Application control", hostsettings.Firewall: "Firewall"}
	out := make([]hostModuleTab, 0, len(hostsettings.Modules))
	for _, m := range hostsettings.Modules {
		q := url.Values{api.EventParamSource: {"host"}, api.EventParamModule: {m}}
		out = append(out, hostModuleTab{Module: m, Label: labels[m], Href: "/events?" + q.Encode()})
	}
	return out
}

// maxSettingsFormBytes bounds a settings form (the document URL-encoded).
const maxSettingsFormBytes = 3*hostsettings.MaxDocument + 4096

// hostsData is the Hosts page.
type hostsData struct {
	Groups  []hostGroupRow
	Agents  []hostAgentRow
	Tabs    []hostModuleTab
	Form    hostGroupForm
	Errors  []string
	Summary hostSummary
}

type hostSummary struct{ Quarantined, Baselines int }

type hostGroupRow struct {
	api.HostGroup
	Modes []moduleMode
}

// moduleMode is one module's switch and mode in a group's settings.
type moduleMode struct{ Module, State string }

type hostAgentRow struct {
	api.HostMember
	Group   string
	GroupID int64
}

// hostGroupForm is the create / edit form, refilled with its errors.
type hostGroupForm struct {
	Name, Description, Cluster, Settings string
}

func modes(s api.HostSettings) []moduleMode {
	c, err := hostsettings.Resolve(s)
	if err != nil {
		return []moduleMode{{Module: "settings", State: "not valid for this mamori"}}
	}
	state := func(on bool, mode string) string {
		if !on {
			return "off"
		}
		return mode
	}
	return []moduleMode{
		{hostsettings.Antimalware, state(c.Antimalware.Enabled, string(c.Antimalware.Mode))},
		{hostsettings.Integrity, state(c.Integrity.Enabled, api.ModeLog)},
		{hostsettings.LogInspect, state(c.LogInspect.Enabled, api.ModeLog)},
		{hostsettings.AppControl, state(c.AppControl.Enabled, string(c.AppControl.Mode))},
		{hostsettings.Firewall, state(c.Firewall.Enabled, c.Firewall.Mode)},
	}
}

func (c *Console) hostsPage(w http.ResponseWriter, r *http.Request) {
	c.renderHosts(w, r, http.StatusOK, hostsData{})
}

func (c *Console) renderHosts(w http.ResponseWriter, r *http.Request, status int, d hostsData) {
	ctx := r.Context()
	hs := c.opt.services.Hosts
	gs, err := hs.ListGroups(ctx)
	if err != nil {
		c.storeError(w, r, "host groups", err)
		return
	}
	for _, g := range gs {
		d.Groups = append(d.Groups, hostGroupRow{HostGroup: g, Modes: modes(g.Settings)})
		for _, m := range g.Members {
			d.Agents = append(d.Agents, hostAgentRow{HostMember: m, Group: g.Name, GroupID: g.ID})
		}
	}
	sort.Slice(d.Agents, func(i, j int) bool {
		if d.Agents[i].Cluster != d.Agents[j].Cluster {
			return d.Agents[i].Cluster < d.Agents[j].Cluster
		}
		return d.Agents[i].Node < d.Agents[j].Node
	})
	if q, err := hs.Quarantine(ctx, 0); err == nil {
		d.Summary.Quarantined = len(q)
	}
	if b, err := hs.Baselines(ctx); err == nil {
		d.Summary.Baselines = len(b)
	}
	d.Tabs = hostModuleTabs()
	p := c.newPage(r, "hosts", "Hosts", crumb{Label: "Hosts"})
	p.Data = d
	p.Flash = hostFlash(r)
	c.render(w, r, status, "hosts", p)
}

// readGroupForm reads the create / edit form; the settings document is
// YAML or JSON, checked by the service (every problem by field).
func readGroupForm(w http.ResponseWriter, r *http.Request) (hostGroupForm, api.HostGroupRequest, []string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSettingsFormBytes)
	if err := r.ParseForm(); err != nil {
		return hostGroupForm{}, api.HostGroupRequest{}, nil, false
	}
	f := hostGroupForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Description: r.PostForm.Get("description"),
		Cluster: strings.TrimSpace(r.PostForm.Get("cluster")), Settings: strings.ReplaceAll(r.PostForm.Get("settings"), "\r\n", "\n")}
	req := api.HostGroupRequest{Name: f.Name, Description: f.Description, Cluster: f.Cluster}
	if strings.TrimSpace(f.Settings) != "" {
		s, err := hostsettings.Parse("settings", []byte(f.Settings))
		if err != nil {
			var se *hostsettings.Error
			if errors.As(err, &se) {
				return f, req, se.Problems, true
			}
			return f, req, []string{err.Error()}, true
		}
		req.Settings = s
	}
	return f, req, nil, true
}

func splitProblems(err error) []string {
	return strings.Split(err.Error(), "; ")
}

func (c *Console) hostGroupCreate(w http.ResponseWriter, r *http.Request) {
	f, req, problems, ok := readGroupForm(w, r)
	if !ok {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read (settings are at most 1 MiB).")
		return
	}
	if len(problems) > 0 {
		c.renderHosts(w, r, http.StatusBadRequest, hostsData{Form: f, Errors: problems})
		return
	}
	g, err := c.opt.services.Hosts.CreateGroup(r.Context(), req)
	switch {
	case errors.Is(err, service.ErrInvalid):
		c.renderHosts(w, r, http.StatusBadRequest, hostsData{Form: f, Errors: splitProblems(err)})
		return
	case errors.Is(err, store.ErrConflict):
		c.renderHosts(w, r, http.StatusConflict, hostsData{Form: f, Errors: []string{"A group of that name, or a group of that cluster, exists already."}})
		return
	case err != nil:
		c.storeError(w, r, "host group", err)
		return
	}
	redirectFlash(w, r, "/hosts/groups/"+strconv.FormatInt(g.ID, 10), "group-created")
}

// hostGroupData is a group's page.
type hostGroupData struct {
	api.HostGroup
	Modes    []moduleMode
	Form     hostGroupForm
	Errors   []string
	Tabs     []hostModuleTab
	Settings string // the settings as a YAML document
}

func (c *Console) groupFromPath(w http.ResponseWriter, r *http.Request) (api.HostGroup, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Host groups are numbered from 1; this one is not.")
		return api.HostGroup{}, false
	}
	g, err := c.opt.services.Hosts.GetGroup(r.Context(), id)
	if err != nil {
		c.storeError(w, r, "host group", err)
		return api.HostGroup{}, false
	}
	return g, true
}

func (c *Console) hostGroupPage(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	c.renderHostGroup(w, r, http.StatusOK, g, hostGroupForm{}, nil)
}

func (c *Console) renderHostGroup(w http.ResponseWriter, r *http.Request, status int, g api.HostGroup, f hostGroupForm, errs []string) {
	doc, err := hostsettings.Format(g.Settings)
	if err != nil {
		c.storeError(w, r, "host group", err)
		return
	}
	if f.Name == "" {
		f = hostGroupForm{Name: g.Name, Description: g.Description, Cluster: g.Cluster, Settings: string(doc)}
	}
	d := hostGroupData{HostGroup: g, Modes: modes(g.Settings), Form: f, Errors: errs, Tabs: hostModuleTabs(), Settings: string(doc)}
	p := c.newPage(r, "hosts", "Host group "+g.Name, crumb{Label: "Hosts", Href: "/hosts"}, crumb{Label: g.Name})
	p.Data = d
	p.Flash = hostFlash(r)
	c.render(w, r, status, "hostgroup", p)
}

func (c *Console) hostGroupUpdate(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	f, req, problems, ok := readGroupForm(w, r)
	if !ok {
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read (settings are at most 1 MiB).")
		return
	}
	f.Name, req.Name = g.Name, g.Name
	if len(problems) > 0 {
		c.renderHostGroup(w, r, http.StatusBadRequest, g, f, problems)
		return
	}
	_, err := c.opt.services.Hosts.UpdateGroup(r.Context(), g.ID, req)
	switch {
	case errors.Is(err, service.ErrInvalid):
		c.renderHostGroup(w, r, http.StatusBadRequest, g, f, splitProblems(err))
		return
	case errors.Is(err, store.ErrConflict):
		c.renderHostGroup(w, r, http.StatusConflict, g, f, []string{"Another group takes that cluster's hosts already (one group per cluster); the default group takes none."})
		return
	case err != nil:
		c.storeError(w, r, "host group", err)
		return
	}
	redirectFlash(w, r, "/hosts/groups/"+strconv.FormatInt(g.ID, 10), "group-updated")
}

func (c *Console) hostGroupDelete(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	err := c.opt.services.Hosts.DeleteGroup(r.Context(), g.ID)
	if errors.Is(err, store.ErrConflict) {
		redirectFlash(w, r, "/hosts/groups/"+strconv.FormatInt(g.ID, 10), "default-kept")
		return
	}
	if err != nil {
		c.storeError(w, r, "host group", err)
		return
	}
	redirectFlash(w, r, "/hosts", "group-deleted")
}

// allowListData is a group's allow-list page.
type allowListData struct {
	Group   api.HostGroup
	List    api.AllowList
	Entries []api.AllowListEntry
	Query   string
	Shown   int
	Error   string
}

// maxAllowRows bounds the rows of the allow-list page (filter to see others).
const maxAllowRows = 500

func (c *Console) allowListPage(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	c.renderAllowList(w, r, http.StatusOK, g, "")
}

func (c *Console) renderAllowList(w http.ResponseWriter, r *http.Request, status int, g api.HostGroup, errMsg string) {
	l, err := c.opt.services.Hosts.AllowList(r.Context(), g.ID)
	if err != nil {
		c.storeError(w, r, "allow-list", err)
		return
	}
	d := allowListData{Group: g, List: l, Error: errMsg, Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if len(d.Query) > maxQueryLen {
		d.Query = d.Query[:maxQueryLen]
	}
	for _, e := range l.List.Entries {
		if d.Query != "" && !strings.Contains(e.SHA256, strings.ToLower(d.Query)) && !strings.Contains(e.Path, d.Query) && !strings.Contains(e.Package, d.Query) {
			continue
		}
		d.Shown++
		if len(d.Entries) < maxAllowRows {
			d.Entries = append(d.Entries, e)
		}
	}
	p := c.newPage(r, "hosts", "Allow-list of "+g.Name, crumb{Label: "Hosts", Href: "/hosts"},
		crumb{Label: g.Name, Href: "/hosts/groups/" + strconv.FormatInt(g.ID, 10)}, crumb{Label: "Allow-list"})
	p.Data = d
	p.Flash = hostFlash(r)
	c.render(w, r, status, "allowlist", p)
}

func (c *Console) allowListAdd(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	if !c.readForm(w, r) {
		return
	}
	e := api.AllowListEntry{SHA256: strings.TrimSpace(r.PostForm.Get("sha256")), Path: strings.TrimSpace(r.PostForm.Get("path")),
		Kind: r.PostForm.Get("kind")}
	_, err := c.opt.services.Hosts.AddAllowEntries(r.Context(), g.ID, []api.AllowListEntry{e})
	if errors.Is(err, service.ErrInvalid) {
		c.renderAllowList(w, r, http.StatusBadRequest, g, err.Error())
		return
	}
	if err != nil {
		c.storeError(w, r, "allow-list", err)
		return
	}
	redirectFlash(w, r, "/hosts/groups/"+strconv.FormatInt(g.ID, 10)+"/allowlist", "allowed")
}

func (c *Console) allowListRemove(w http.ResponseWriter, r *http.Request) {
	g, ok := c.groupFromPath(w, r)
	if !ok {
		return
	}
	if !c.readForm(w, r) {
		return
	}
	_, err := c.opt.services.Hosts.RemoveAllowEntry(r.Context(), g.ID, r.PostForm.Get("sha256"))
	if errors.Is(err, service.ErrInvalid) {
		c.renderAllowList(w, r, http.StatusBadRequest, g, err.Error())
		return
	}
	if err != nil {
		c.storeError(w, r, "allow-list entry", err)
		return
	}
	redirectFlash(w, r, "/hosts/groups/"+strconv.FormatInt(g.ID, 10)+"/allowlist", "removed")
}

func (c *Console) placeAgent(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Agents are numbered from 1; this one is not.")
		return
	}
	if !c.readForm(w, r) {
		return
	}
	_, err = c.opt.services.Hosts.PlaceAgent(r.Context(), id, r.PostForm.Get("group"))
	if errors.Is(err, service.ErrInvalid) {
		c.renderHosts(w, r, http.StatusBadRequest, hostsData{Errors: []string{err.Error()}})
		return
	}
	if err != nil {
		c.storeError(w, r, "agent", err)
		return
	}
	redirectFlash(w, r, "/hosts", "placed")
}

// quarantineData is the quarantine page.
type quarantineData struct {
	Entries []api.QuarantineRecord
	// Requests are the recent requests to the agents listed, newest first.
	Requests []api.HostRequest
	Tabs     []hostModuleTab
	Error    string
}

func (c *Console) quarantinePage(w http.ResponseWriter, r *http.Request) {
	c.renderQuarantine(w, r, http.StatusOK, "")
}

func (c *Console) renderQuarantine(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	ctx := r.Context()
	q, err := c.opt.services.Hosts.Quarantine(ctx, 0)
	if err != nil {
		c.storeError(w, r, "quarantine", err)
		return
	}
	d := quarantineData{Entries: q, Tabs: hostModuleTabs(), Error: errMsg}
	d.Requests = c.recentRequests(r, agentsOf(q, nil), api.RequestQuarantineRestore, api.RequestQuarantineDelete, api.RequestScan)
	p := c.newPage(r, "hosts", "Quarantine", crumb{Label: "Hosts", Href: "/hosts"}, crumb{Label: "Quarantine"})
	p.Data = d
	p.Flash = hostFlash(r)
	c.render(w, r, status, "quarantine", p)
}

func agentsOf(q []api.QuarantineRecord, b []api.BaselineRecord) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, e := range q {
		if !seen[e.AgentID] {
			seen[e.AgentID] = true
			out = append(out, e.AgentID)
		}
	}
	for _, e := range b {
		if !seen[e.AgentID] {
			seen[e.AgentID] = true
			out = append(out, e.AgentID)
		}
	}
	return out
}

// recentRequests lists the last requests of kinds to the agents.
func (c *Console) recentRequests(r *http.Request, agents []int64, kinds ...string) []api.HostRequest {
	var out []api.HostRequest
	for _, a := range agents {
		rs, err := c.opt.services.Hosts.Requests(r.Context(), a)
		if err != nil {
			continue
		}
		for _, x := range rs {
			for _, k := range kinds {
				if x.Kind == k {
					out = append(out, x)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > 20 {
		out = out[:20]
	}
	return out
}

// baselinesData is the integrity baselines page.
type baselinesData struct {
	Baselines []api.BaselineRecord
	Requests  []api.HostRequest
	Tabs      []hostModuleTab
}

func (c *Console) baselinesPage(w http.ResponseWriter, r *http.Request) {
	bs, err := c.opt.services.Hosts.Baselines(r.Context())
	if err != nil {
		c.storeError(w, r, "baselines", err)
		return
	}
	d := baselinesData{Baselines: bs, Tabs: hostModuleTabs()}
	d.Requests = c.recentRequests(r, agentsOf(nil, bs), api.RequestBaselineRebuild, api.RequestIntegrityCompare)
	p := c.newPage(r, "hosts", "Integrity baselines", crumb{Label: "Hosts", Href: "/hosts"}, crumb{Label: "Baselines"})
	p.Data = d
	p.Flash = hostFlash(r)
	c.render(w, r, http.StatusOK, "baselines", p)
}

// hostRequest asks an agent to do something (restore, delete, rebuild,
// compare) and goes back to the page it came from.
func (c *Console) hostRequest(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Agents are numbered from 1; this one is not.")
		return
	}
	if !c.readForm(w, r) {
		return
	}
	back := "/hosts/quarantine"
	if r.PostForm.Get("back") == "baselines" {
		back = "/hosts/baselines"
	}
	req := api.HostRequestCreate{Kind: r.PostForm.Get("kind"), Entry: r.PostForm.Get("entry"), Allow: r.PostForm.Get("allow") != ""}
	_, err = c.opt.services.Hosts.CreateRequest(r.Context(), id, req)
	if errors.Is(err, service.ErrInvalid) {
		if back == "/hosts/quarantine" {
			c.renderQuarantine(w, r, http.StatusBadRequest, err.Error())
			return
		}
		c.errorPage(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	if err != nil {
		c.storeError(w, r, "agent", err)
		return
	}
	redirectFlash(w, r, back, "requested")
}

var hostFlashes = map[string]flash{
	"group-created": {Kind: "ok", Text: "Host group created: its agents take its settings at their next poll."},
	"group-updated": {Kind: "ok", Text: "Settings saved: the group's agents apply them at their next poll."},
	"group-deleted": {Kind: "ok", Text: "Host group deleted: its hosts went back to their cluster's group or the default."},
	"default-kept":  {Kind: "error", Text: "The default group takes the hosts no other group takes: it cannot be deleted."},
	"allowed":       {Kind: "ok", Text: "Added to the allow-list: the group's agents take it at their next poll."},
	"removed":       {Kind: "ok", Text: "Removed from the allow-list."},
	"placed":        {Kind: "ok", Text: "Agent placed: it takes its new group's settings at its next poll."},
	"requested":     {Kind: "ok", Text: "Request queued: the agent runs it at its next poll and reports the outcome below."},
}

func hostFlash(r *http.Request) *flash {
	if f, ok := hostFlashes[r.URL.Query().Get("done")]; ok {
		return &f
	}
	return nil
}
