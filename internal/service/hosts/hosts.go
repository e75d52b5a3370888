// Package hosts is the host protection service (issue 12): host groups
// and their module settings, agents' placement in them, the application
// control allow-list of each group, the quarantine and integrity baselines
// agents report, and the requests the server passes to agents (restore or
// delete a quarantined file, rebuild a baseline, run a scan). Settings are
// checked with internal/hostsettings, allow-list entries with
// internal/host/appcontrol's import, so that the server refuses what an
// agent would. The API (/api/v1/hostgroups, /quarantine, /baselines,
// /agents/...), the console's Hosts pages and the agents all call it.
//
// The service speaks the API's types (package api): its answers are what
// the routes return.
package hosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/host/appcontrol"
	"mamori/internal/hostsettings"
	"mamori/internal/service"
	"mamori/internal/service/identities"
	"mamori/internal/store"
)

// Store is what the service needs of the store.
type Store interface {
	store.HostStore
	GetAgent(ctx context.Context, id int64) (store.Agent, error)
}

// Service manages host groups, allow-lists, agents' reports and requests.
type Service struct {
	st  Store
	log *slog.Logger
	now func() time.Time
}

// New returns the service over st.
func New(st Store, log *slog.Logger, now func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, log: log, now: now}
}

// groupNameRE: a group's name is a label people type (as cluster names).
var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// maxDescription bounds a group's description.
const maxDescription = 1024

// actorName names the caller in stored "by" columns.
func actorName(ctx context.Context) string {
	if p, ok := auth.PrincipalFromContext(ctx); ok {
		return p.TokenName
	}
	return "system"
}

// checkSettings checks settings and returns their stored form (JSON).
func checkSettings(s api.HostSettings) (string, error) {
	if err := hostsettings.Validate(s); err != nil {
		var se *hostsettings.Error
		if errors.As(err, &se) {
			return "", service.Invalid("%s", strings.Join(se.Problems, "; "))
		}
		return "", service.Invalid("%v", err)
	}
	b, err := json.Marshal(hostsettings.Normalize(s))
	if err != nil {
		return "", fmt.Errorf("host settings: %w", err)
	}
	if len(b) > hostsettings.MaxDocument {
		return "", service.Invalid("settings: %d bytes of JSON, at most %d", len(b), hostsettings.MaxDocument)
	}
	return string(b), nil
}

func decodeSettings(s string) api.HostSettings {
	var out api.HostSettings
	// Stored by checkSettings: it decodes. A document a newer server wrote
	// with fields this one does not know decodes to what it knows.
	_ = json.Unmarshal([]byte(s), &out)
	return out
}

func checkGroupRequest(req *api.HostGroupRequest) error {
	req.Name, req.Cluster = strings.TrimSpace(req.Name), strings.TrimSpace(req.Cluster)
	if !groupNameRE.MatchString(req.Name) {
		return service.Invalid("host group name %q: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(req.Name))
	}
	if len(req.Description) > maxDescription || !utf8.ValidString(req.Description) || strings.IndexByte(req.Description, 0) >= 0 {
		return service.Invalid("description: at most %d bytes of text", maxDescription)
	}
	if req.Cluster != "" {
		if err := identities.CheckClusterName(req.Cluster); err != nil {
			return err
		}
	}
	return nil
}

// apiGroup converts a group with its members (of all agents' hosts).
func apiGroup(g store.HostGroup, hosts []store.AgentHost) api.HostGroup {
	out := api.HostGroup{ID: g.ID, Name: g.Name, Description: g.Description, Cluster: g.Cluster, Default: g.Name == store.DefaultHostGroup,
		Settings: decodeSettings(g.Settings), SettingsVersion: g.SettingsVersion, AllowListRevision: g.AllowListRevision,
		AllowListEntries: g.AllowListEntries, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, UpdatedBy: g.UpdatedBy, Members: []api.HostMember{}}
	for _, h := range hosts {
		if h.Group.ID == g.ID {
			out.Members = append(out.Members, api.HostMember{AgentID: h.Agent.ID, Cluster: h.Agent.Cluster, Node: h.Agent.Node,
				Placement: h.Placement, LastContact: h.Agent.LastContact, Sensor: api.SensorOf(h.Agent.Sensor.Mode, h.Agent.Sensor.Hooks, h.Agent.Sensor.Missing)})
		}
	}
	return out
}

// ListGroups lists the host groups (the default first) with their members.
func (s *Service) ListGroups(ctx context.Context) ([]api.HostGroup, error) {
	gs, err := s.st.ListHostGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("host groups: %w", err)
	}
	hosts, err := s.st.ListAgentHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("host groups: %w", err)
	}
	out := make([]api.HostGroup, 0, len(gs))
	for _, g := range gs {
		out = append(out, apiGroup(g, hosts))
	}
	return out, nil
}

// GetGroup returns one group with its members.
func (s *Service) GetGroup(ctx context.Context, id int64) (api.HostGroup, error) {
	g, err := s.st.GetHostGroup(ctx, id)
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	hosts, err := s.st.ListAgentHosts(ctx)
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	return apiGroup(g, hosts), nil
}

// GroupByName returns a group by its name.
func (s *Service) GroupByName(ctx context.Context, name string) (api.HostGroup, error) {
	g, err := s.st.GetHostGroupByName(ctx, name)
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	return s.GetGroup(ctx, g.ID)
}

// CreateGroup creates a host group.
func (s *Service) CreateGroup(ctx context.Context, req api.HostGroupRequest) (api.HostGroup, error) {
	if err := checkGroupRequest(&req); err != nil {
		return api.HostGroup{}, err
	}
	settings, err := checkSettings(req.Settings)
	if err != nil {
		return api.HostGroup{}, err
	}
	g, err := s.st.CreateHostGroup(ctx, store.HostGroup{Name: req.Name, Description: req.Description, Cluster: req.Cluster,
		Settings: settings, CreatedAt: s.now().UTC(), UpdatedBy: actorName(ctx)})
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	s.log.Info("host group created", append([]any{"group", g.Name, "groupID", g.ID, "cluster", g.Cluster}, service.Actor(ctx)...)...)
	return s.GetGroup(ctx, g.ID)
}

// UpdateGroup replaces a group's description, cluster and settings; a
// group is not renamed.
func (s *Service) UpdateGroup(ctx context.Context, id int64, req api.HostGroupRequest) (api.HostGroup, error) {
	cur, err := s.st.GetHostGroup(ctx, id)
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	if strings.TrimSpace(req.Name) == "" {
		req.Name = cur.Name
	}
	if err := checkGroupRequest(&req); err != nil {
		return api.HostGroup{}, err
	}
	if req.Name != cur.Name {
		return api.HostGroup{}, service.Invalid("host group %q: a group is not renamed (create another and place its hosts there)", cur.Name)
	}
	settings, err := checkSettings(req.Settings)
	if err != nil {
		return api.HostGroup{}, err
	}
	g, err := s.st.UpdateHostGroup(ctx, store.HostGroup{ID: id, Name: cur.Name, Description: req.Description, Cluster: req.Cluster,
		Settings: settings, UpdatedAt: s.now().UTC(), UpdatedBy: actorName(ctx)})
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("host group: %w", err)
	}
	s.log.Info("host group updated", append([]any{"group", g.Name, "groupID", g.ID, "cluster", g.Cluster,
		"settingsVersion", g.SettingsVersion}, service.Actor(ctx)...)...)
	return s.GetGroup(ctx, id)
}

// DeleteGroup deletes a group (not the default); its hosts go back to
// their cluster's group or the default.
func (s *Service) DeleteGroup(ctx context.Context, id int64) error {
	g, err := s.st.GetHostGroup(ctx, id)
	if err != nil {
		return fmt.Errorf("host group: %w", err)
	}
	if err := s.st.DeleteHostGroup(ctx, id); err != nil {
		return fmt.Errorf("host group: %w", err)
	}
	s.log.Info("host group deleted", append([]any{"group", g.Name, "groupID", id}, service.Actor(ctx)...)...)
	return nil
}

// PlaceAgent puts an agent in the named group ("" takes it out: back to
// its cluster's group or the default) and returns the group it is in now.
func (s *Service) PlaceAgent(ctx context.Context, agentID int64, group string) (api.HostGroup, error) {
	var gid int64
	if group = strings.TrimSpace(group); group != "" {
		g, err := s.st.GetHostGroupByName(ctx, group)
		if errors.Is(err, store.ErrNotFound) {
			return api.HostGroup{}, service.Invalid("host group %q does not exist", truncate(group))
		}
		if err != nil {
			return api.HostGroup{}, fmt.Errorf("host group: %w", err)
		}
		gid = g.ID
	}
	h, err := s.st.PlaceAgent(ctx, agentID, gid)
	if err != nil {
		return api.HostGroup{}, fmt.Errorf("agent placement: %w", err)
	}
	s.log.Info("agent placed", append([]any{"agentID", agentID, "node", h.Agent.Node, "group", h.Group.Name, "placement", h.Placement}, service.Actor(ctx)...)...)
	return s.GetGroup(ctx, h.Group.ID)
}

// ---------------------------------------------------------------------------
// Allow-lists

// checkEntries checks entries as the agent's import will (digests,
// sources, kinds, lengths) and returns them in the store's form.
// defaultSource fills a missing source; sources, when not empty, are the
// only ones allowed.
func (s *Service) checkEntries(es []api.AllowListEntry, defaultSource string, sources ...string) ([]store.AllowEntry, error) {
	if len(es) > api.MaxAllowListBatch {
		return nil, service.Invalid("%d entries in one request: at most %d", len(es), api.MaxAllowListBatch)
	}
	now := s.now().UTC()
	doc := api.AllowListDocument{Format: appcontrol.FormatName, Version: appcontrol.FormatVersion, Generated: now, Entries: make([]api.AllowListEntry, len(es))}
	for i, e := range es {
		if e.Source == "" {
			e.Source = defaultSource
		}
		if len(sources) > 0 && !slices.Contains(sources, e.Source) {
			return nil, service.Invalid("entry %d: source %q: want %s", i, truncate(e.Source), strings.Join(sources, ", "))
		}
		if e.Added.IsZero() || e.Added.After(now) {
			e.Added = now
		}
		doc.Entries[i] = e
	}
	list, err := importDocument(doc)
	if err != nil {
		return nil, err
	}
	out := make([]store.AllowEntry, 0, list.Len())
	for _, e := range list.Entries() {
		out = append(out, store.AllowEntry{SHA256: e.SHA256, Path: e.Path, Kind: string(e.Kind), Source: string(e.Source), Package: e.Package, Added: e.Added.UTC()})
	}
	return out, nil
}

// importDocument checks a document with the engine's import.
func importDocument(doc api.AllowListDocument) (*appcontrol.List, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("allow-list: %w", err)
	}
	l, err := appcontrol.Import(bytes.NewReader(b))
	if err != nil {
		return nil, service.Invalid("%s", strings.TrimPrefix(err.Error(), "appcontrol: bad allow-list: "))
	}
	return l, nil
}

// AllowList returns a group's allow-list.
func (s *Service) AllowList(ctx context.Context, groupID int64) (api.AllowList, error) {
	g, err := s.st.GetHostGroup(ctx, groupID)
	if err != nil {
		return api.AllowList{}, fmt.Errorf("allow-list: %w", err)
	}
	rev, es, err := s.st.AllowList(ctx, groupID)
	if err != nil {
		return api.AllowList{}, fmt.Errorf("allow-list: %w", err)
	}
	out := api.AllowList{Group: g.Name, Revision: rev, List: api.AllowListDocument{Format: appcontrol.FormatName,
		Version: appcontrol.FormatVersion, Generated: s.now().UTC(), Entries: make([]api.AllowListEntry, 0, len(es))}}
	for _, e := range es {
		out.List.Entries = append(out.List.Entries, api.AllowListEntry{SHA256: e.SHA256, Path: e.Path, Kind: e.Kind, Source: e.Source, Package: e.Package, Added: e.Added})
	}
	return out, nil
}

func (s *Service) allowChange(ctx context.Context, g store.HostGroup, ch store.AllowListChange, what string) api.AllowListChange {
	if ch.Added > 0 || ch.Removed > 0 {
		s.log.Info("allow-list "+what, append([]any{"group", g.Name, "groupID", g.ID, "added", ch.Added, "removed", ch.Removed,
			"entries", ch.Entries, "revision", ch.Revision}, service.Actor(ctx)...)...)
	}
	return api.AllowListChange{Group: g.Name, Revision: ch.Revision, Added: ch.Added, Removed: ch.Removed, Entries: ch.Entries}
}

// ReplaceAllowList makes doc (the allow-list format) a group's whole list.
func (s *Service) ReplaceAllowList(ctx context.Context, groupID int64, doc api.AllowListDocument) (api.AllowListChange, error) {
	g, err := s.st.GetHostGroup(ctx, groupID)
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	if len(doc.Entries) > api.MaxAllowListEntries {
		return api.AllowListChange{}, service.Invalid("%d entries: at most %d", len(doc.Entries), api.MaxAllowListEntries)
	}
	list, err := importDocument(doc)
	if err != nil {
		return api.AllowListChange{}, err
	}
	es := make([]store.AllowEntry, 0, list.Len())
	for _, e := range list.Entries() {
		es = append(es, store.AllowEntry{SHA256: e.SHA256, Path: e.Path, Kind: string(e.Kind), Source: string(e.Source), Package: e.Package, Added: e.Added.UTC()})
	}
	ch, err := s.st.ReplaceAllowList(ctx, groupID, es, s.now().UTC(), actorName(ctx))
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	return s.allowChange(ctx, g, ch, "replaced"), nil
}

// AddAllowEntries adds entries to a group's list (source manual unless given).
func (s *Service) AddAllowEntries(ctx context.Context, groupID int64, entries []api.AllowListEntry) (api.AllowListChange, error) {
	g, err := s.st.GetHostGroup(ctx, groupID)
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	es, err := s.checkEntries(entries, string(appcontrol.SourceManual))
	if err != nil {
		return api.AllowListChange{}, err
	}
	ch, err := s.st.AddAllowEntries(ctx, groupID, es, s.now().UTC(), actorName(ctx))
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	return s.allowChange(ctx, g, ch, "entries added"), nil
}

// sha256RE is a lower-case SHA-256 in hex.
var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// RemoveAllowEntry removes every entry of a digest from a group's list.
func (s *Service) RemoveAllowEntry(ctx context.Context, groupID int64, sha256 string) (api.AllowListChange, error) {
	sha256 = strings.ToLower(strings.TrimSpace(sha256))
	if !sha256RE.MatchString(sha256) {
		return api.AllowListChange{}, service.Invalid("%q is not a SHA-256 (64 hex digits)", truncate(sha256))
	}
	g, err := s.st.GetHostGroup(ctx, groupID)
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	ch, err := s.st.RemoveAllowEntries(ctx, groupID, sha256, s.now().UTC(), actorName(ctx))
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	if ch.Removed == 0 {
		return api.AllowListChange{}, fmt.Errorf("allow-list of %s: %s: %w", g.Name, sha256, store.ErrNotFound)
	}
	return s.allowChange(ctx, g, ch, "entry removed"), nil
}

// ---------------------------------------------------------------------------
// Views of what agents report, and requests

func apiQuarantine(e store.QuarantineEntry) api.QuarantineRecord {
	r := api.QuarantineRecord{AgentID: e.AgentID, Cluster: e.Cluster, Node: e.Node, ReportedAt: e.ReportedAt,
		Entry: api.QuarantineEntry{ID: e.ID, Time: e.Time, Path: e.Path, Root: e.Root, ContainerPID: e.ContainerPID, Size: e.Size,
			SHA256: e.SHA256, Removed: e.Removed, Hits: []api.QuarantineHit{}}}
	_ = json.Unmarshal([]byte(e.Hits), &r.Entry.Hits) // stored by AgentQuarantine: it decodes
	return r
}

// Quarantine lists the quarantined files agents reported, newest first:
// one agent's, or every agent's when agentID is 0.
func (s *Service) Quarantine(ctx context.Context, agentID int64) ([]api.QuarantineRecord, error) {
	es, err := s.st.ListQuarantine(ctx, agentID)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	out := make([]api.QuarantineRecord, 0, len(es))
	for _, e := range es {
		out = append(out, apiQuarantine(e))
	}
	return out, nil
}

// Baselines lists every agent's last integrity baseline summary.
func (s *Service) Baselines(ctx context.Context) ([]api.BaselineRecord, error) {
	bs, err := s.st.ListBaselines(ctx)
	if err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	out := make([]api.BaselineRecord, 0, len(bs))
	for _, b := range bs {
		r := api.BaselineRecord{AgentID: b.AgentID, Cluster: b.Cluster, Node: b.Node, ReportedAt: b.ReportedAt}
		_ = json.Unmarshal([]byte(b.Body), &r.Baseline) // stored by AgentBaseline: it decodes
		out = append(out, r)
	}
	return out, nil
}

// requestArgs are a request's stored arguments.
type requestArgs struct {
	Entry      string   `json:"entry,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	Containers bool     `json:"containers,omitempty"`
	Container  string   `json:"container,omitempty"`
}

func apiRequest(r store.HostRequest) api.HostRequest {
	var a requestArgs
	_ = json.Unmarshal([]byte(r.Args), &a) // stored by CreateRequest: it decodes
	return api.HostRequest{ID: r.ID, AgentID: r.AgentID, Kind: r.Kind, Entry: a.Entry, Paths: a.Paths, Containers: a.Containers, Container: a.Container,
		State: r.State, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, Result: r.Result}
}

// containerIDRE: a container ID or its prefix (12 to 64 hex digits).
var containerIDRE = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// quarantineIDRE: quarantine entry IDs are 32 lower-case hex digits.
var quarantineIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// CreateRequest asks an agent to do something: restore or delete a
// quarantined file it reported, rebuild its baseline, compare or scan now.
// A restore with Allow first adds the file's SHA-256 to the agent's
// group's anti-malware allow-list, so that the restored file is not
// detected again.
func (s *Service) CreateRequest(ctx context.Context, agentID int64, req api.HostRequestCreate) (api.HostRequest, error) {
	a, err := s.st.GetAgent(ctx, agentID)
	if err != nil {
		return api.HostRequest{}, fmt.Errorf("agent: %w", err)
	}
	args := requestArgs{}
	switch req.Kind {
	case api.RequestQuarantineRestore, api.RequestQuarantineDelete:
		if !quarantineIDRE.MatchString(req.Entry) {
			return api.HostRequest{}, service.Invalid("entry %q: want a quarantine entry ID (32 hex digits)", truncate(req.Entry))
		}
		e, err := s.st.GetQuarantineEntry(ctx, agentID, req.Entry)
		if errors.Is(err, store.ErrNotFound) {
			return api.HostRequest{}, service.Invalid("agent %s has not reported a quarantine entry %s", a.Node, req.Entry)
		}
		if err != nil {
			return api.HostRequest{}, fmt.Errorf("quarantine: %w", err)
		}
		if req.Allow && req.Kind == api.RequestQuarantineDelete {
			return api.HostRequest{}, service.Invalid("allow goes with quarantine.restore, not .delete")
		}
		if req.Allow {
			if err := s.allowMalwareHash(ctx, a, e.SHA256); err != nil {
				return api.HostRequest{}, err
			}
		}
		args.Entry = req.Entry
	case api.RequestScan:
		if len(req.Paths) == 0 && !req.Containers && req.Container == "" {
			return api.HostRequest{}, service.Invalid("antimalware.scan: give paths, containers, a container or several")
		}
		if req.Container != "" && !containerIDRE.MatchString(req.Container) {
			return api.HostRequest{}, service.Invalid("antimalware.scan: container %q: want 12 to 64 lower-case hex digits of its ID", truncate(req.Container))
		}
		if len(req.Paths) > 256 {
			return api.HostRequest{}, service.Invalid("antimalware.scan: %d paths, at most 256", len(req.Paths))
		}
		// The same checks as the scheduled scan's paths.
		probe := api.HostSettings{Antimalware: api.AntimalwareSettings{Scheduled: api.AntimalwareSchedule{Paths: req.Paths}}}
		if _, err := checkSettings(probe); err != nil {
			return api.HostRequest{}, service.Invalid("antimalware.scan: %s", strings.ReplaceAll(err.Error(), "antimalware.scheduled.", ""))
		}
		args.Paths, args.Containers, args.Container = req.Paths, req.Containers, req.Container
	case api.RequestBaselineRebuild, api.RequestIntegrityCompare:
	default:
		return api.HostRequest{}, service.Invalid("kind %q: want %s", truncate(req.Kind), strings.Join([]string{api.RequestQuarantineRestore,
			api.RequestQuarantineDelete, api.RequestBaselineRebuild, api.RequestIntegrityCompare, api.RequestScan}, ", "))
	}
	if req.Kind != api.RequestQuarantineRestore && req.Kind != api.RequestQuarantineDelete && (req.Entry != "" || req.Allow) {
		return api.HostRequest{}, service.Invalid("%s takes no entry or allow", req.Kind)
	}
	if req.Kind != api.RequestScan && (len(req.Paths) > 0 || req.Containers || req.Container != "") {
		return api.HostRequest{}, service.Invalid("%s takes no paths or containers", req.Kind)
	}
	b, err := json.Marshal(args)
	if err != nil {
		return api.HostRequest{}, fmt.Errorf("request: %w", err)
	}
	r, err := s.st.CreateHostRequest(ctx, store.HostRequest{AgentID: agentID, Kind: req.Kind, Args: string(b), CreatedAt: s.now().UTC(), CreatedBy: actorName(ctx)})
	if err != nil {
		return api.HostRequest{}, fmt.Errorf("request: %w", err)
	}
	s.log.Info("request to agent", append([]any{"agentID", agentID, "node", a.Node, "request", r.ID, "kind", r.Kind, "entry", args.Entry}, service.Actor(ctx)...)...)
	return apiRequest(r), nil
}

// allowMalwareHash adds sum to the anti-malware allow-list of the agent's group.
func (s *Service) allowMalwareHash(ctx context.Context, a store.Agent, sum string) error {
	if !sha256RE.MatchString(sum) {
		return service.Invalid("the quarantined file has no SHA-256 to allow")
	}
	h, err := s.st.AgentHost(ctx, a.Cluster, a.Node)
	if err != nil {
		return fmt.Errorf("host group of agent: %w", err)
	}
	set := decodeSettings(h.Group.Settings)
	x := &set.Antimalware.Exclusions
	if slices.Contains(x.AllowSHA256, sum) {
		return nil
	}
	x.AllowSHA256 = append(x.AllowSHA256, sum)
	_, err = s.UpdateGroup(ctx, h.Group.ID, api.HostGroupRequest{Name: h.Group.Name, Description: h.Group.Description, Cluster: h.Group.Cluster, Settings: set})
	return err
}

// Requests lists an agent's requests, newest first.
func (s *Service) Requests(ctx context.Context, agentID int64) ([]api.HostRequest, error) {
	if _, err := s.st.GetAgent(ctx, agentID); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	rs, err := s.st.ListHostRequests(ctx, agentID, false, 200)
	if err != nil {
		return nil, fmt.Errorf("requests: %w", err)
	}
	out := make([]api.HostRequest, 0, len(rs))
	for _, r := range rs {
		out = append(out, apiRequest(r))
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// The calling agent's side

// caller returns the calling agent's registration and group.
func (s *Service) caller(ctx context.Context, node string) (store.AgentHost, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleAgent {
		return store.AgentHost{}, fmt.Errorf("%w: only an agent token may do this", auth.ErrForbidden)
	}
	node = strings.TrimSpace(node)
	if node == "" {
		return store.AgentHost{}, service.Invalid("no node: say which agent asks (?%s=NODE)", api.HostParamNode)
	}
	if len(node) > 253 {
		return store.AgentHost{}, service.Invalid("node: at most 253 characters")
	}
	h, err := s.st.AgentHost(ctx, p.Cluster, node)
	if err != nil {
		// ErrNotFound: the agent registers (again).
		return store.AgentHost{}, fmt.Errorf("agent %q: %w", truncate(node), err)
	}
	return h, nil
}

// AgentHost returns the calling agent's group, settings and pending requests.
func (s *Service) AgentHost(ctx context.Context, node string) (api.HostConfig, error) {
	h, err := s.caller(ctx, node)
	if err != nil {
		return api.HostConfig{}, err
	}
	set := decodeSettings(h.Group.Settings)
	poll := api.DefaultHostPollInterval
	if c, err := hostsettings.Resolve(set); err == nil {
		poll = c.PollInterval
	}
	rs, err := s.st.ListHostRequests(ctx, h.Agent.ID, true, 100)
	if err != nil {
		return api.HostConfig{}, fmt.Errorf("requests: %w", err)
	}
	out := api.HostConfig{Node: h.Agent.Node, Group: h.Group.Name, GroupID: h.Group.ID, Placement: h.Placement,
		SettingsVersion: h.Group.SettingsVersion, Settings: set, AllowListRevision: h.Group.AllowListRevision,
		PollInterval: poll.String(), Requests: make([]api.HostRequest, 0, len(rs))}
	for _, r := range rs {
		out.Requests = append(out.Requests, apiRequest(r))
	}
	return out, nil
}

// AgentAllowList returns the calling agent's group's allow-list.
func (s *Service) AgentAllowList(ctx context.Context, node string) (api.AllowList, error) {
	h, err := s.caller(ctx, node)
	if err != nil {
		return api.AllowList{}, err
	}
	return s.AllowList(ctx, h.Group.ID)
}

// AgentLearned adds what the calling agent learned (inventory, package
// managers, maintenance windows) to its group's allow-list.
func (s *Service) AgentLearned(ctx context.Context, node string, entries []api.AllowListEntry) (api.AllowListChange, error) {
	h, err := s.caller(ctx, node)
	if err != nil {
		return api.AllowListChange{}, err
	}
	es, err := s.checkEntries(entries, "", string(appcontrol.SourceInventory), string(appcontrol.SourceMaintenance),
		string(appcontrol.SourceDpkg), string(appcontrol.SourceRPM))
	if err != nil {
		return api.AllowListChange{}, err
	}
	ch, err := s.st.AddAllowEntries(ctx, h.Group.ID, es, s.now().UTC(), "agent "+h.Agent.Node)
	if err != nil {
		return api.AllowListChange{}, fmt.Errorf("allow-list: %w", err)
	}
	return s.allowChange(ctx, h.Group, ch, "learned by "+h.Agent.Node), nil
}

// AgentQuarantine records the calling agent's whole quarantine.
func (s *Service) AgentQuarantine(ctx context.Context, node string, rep api.QuarantineReport) error {
	h, err := s.caller(ctx, node)
	if err != nil {
		return err
	}
	if len(rep.Entries) > api.MaxQuarantineReport {
		return service.Invalid("%d quarantine entries: at most %d", len(rep.Entries), api.MaxQuarantineReport)
	}
	es := make([]store.QuarantineEntry, 0, len(rep.Entries))
	for i, e := range rep.Entries {
		if !quarantineIDRE.MatchString(e.ID) {
			return service.Invalid("entry %d: id %q is not 32 hex digits", i, truncate(e.ID))
		}
		if !strings.HasPrefix(e.Path, "/") {
			return service.Invalid("entry %d: path %q is not absolute", i, truncate(e.Path))
		}
		if e.SHA256 != "" && !sha256RE.MatchString(e.SHA256) {
			return service.Invalid("entry %d: sha256 %q is not 64 lower-case hex digits", i, truncate(e.SHA256))
		}
		if len(e.Hits) > 64 {
			return service.Invalid("entry %d: %d hits, at most 64", i, len(e.Hits))
		}
		if e.Size < 0 || e.ContainerPID < 0 {
			return service.Invalid("entry %d: negative size or PID", i)
		}
		hits := e.Hits
		if hits == nil {
			hits = []api.QuarantineHit{}
		}
		b, err := json.Marshal(hits)
		if err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		es = append(es, store.QuarantineEntry{ID: e.ID, Time: e.Time.UTC(), Path: e.Path, Root: e.Root, ContainerPID: e.ContainerPID,
			Size: e.Size, SHA256: e.SHA256, Hits: string(b), Removed: e.Removed})
	}
	if err := s.st.ReplaceQuarantine(ctx, h.Agent.ID, es, s.now().UTC()); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return service.Invalid("%s", strings.TrimPrefix(err.Error(), "store: "))
		}
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// AgentBaseline records the calling agent's baseline summary.
func (s *Service) AgentBaseline(ctx context.Context, node string, rep api.BaselineReport) error {
	h, err := s.caller(ctx, node)
	if err != nil {
		return err
	}
	if len(rep.Rules) > 1024 || len(rep.ObjectKinds) > 64 || len(rep.Backends) > 4096 {
		return service.Invalid("baseline: too many rules, kinds or backends")
	}
	if rep.Files < 0 || rep.Objects < 0 || !strings.HasPrefix(rep.Root, "/") {
		return service.Invalid("baseline: negative counts or a root that is not absolute")
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return service.Invalid("baseline: not valid text")
	}
	if err := s.st.PutBaseline(ctx, h.Agent.ID, s.now().UTC(), string(b)); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return service.Invalid("%s", strings.TrimPrefix(err.Error(), "store: "))
		}
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}

// AgentRequestResult records the calling agent's outcome of its request.
func (s *Service) AgentRequestResult(ctx context.Context, node string, id int64, res api.HostRequestResult) (api.HostRequest, error) {
	h, err := s.caller(ctx, node)
	if err != nil {
		return api.HostRequest{}, err
	}
	state := store.RequestDone
	if !res.OK {
		state = store.RequestFailed
	}
	msg := strings.ToValidUTF8(strings.ReplaceAll(res.Message, "\x00", ""), "?")
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	r, err := s.st.CompleteHostRequest(ctx, h.Agent.ID, id, state, msg, s.now().UTC())
	if err != nil {
		return api.HostRequest{}, fmt.Errorf("request: %w", err)
	}
	s.log.Info("agent request "+state, "agentID", h.Agent.ID, "node", h.Agent.Node, "request", id, "kind", r.Kind, "result", msg)
	return apiRequest(r), nil
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
