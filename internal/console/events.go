package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/service/events"
	"mamori/internal/store"
)

// eventsPerPage is the page size of the Events page.
const eventsPerPage = 50

// eventsData is the Events page: the filter form as submitted, the page of
// events, and where the next (older) page starts.
type eventsData struct {
	Form     url.Values
	Sources  []string
	Sevs     []sevOption
	Actions  []string
	Events   []eventRow
	Filtered bool
	// More is true when the form has a filter of the "more filters" part.
	More bool
	// OlderURL continues the listing; NewestURL drops the cursor.
	OlderURL, NewestURL string
	Error               string
}

// eventRow is one event with what the table shows precomputed.
type eventRow struct {
	store.EventRecord
	// Scope is the where: cluster / namespace / pod, or the host or node.
	Scope   []string
	Details []kv
}

type kv struct{ K, V string }

// moreFilters are the filters folded under "More filters".
var moreFilters = []string{api.EventParamModule, api.EventParamNode, api.EventParamPod, api.EventParamContainer,
	api.EventParamImage, api.EventParamRule, api.EventParamTechnique, api.EventParamTactic, api.EventParamSince, api.EventParamUntil}

// eventsPage lists events with the same filters, by the same names, as
// GET /api/v1/events (events.ParseFilter): a bad value is shown as an
// error with status 400, never dropped.
func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := eventsData{Form: q, Actions: []string{"log", "allow", "block", "isolate", "terminate", "quarantine"}}
	for _, s := range model.Sources {
		d.Sources = append(d.Sources, string(s))
	}
	d.Sevs = sevOptions(map[model.Severity]bool{})
	for i := range d.Sevs {
		d.Sevs[i].Checked = strings.EqualFold(d.Sevs[i].Value, q.Get(api.EventParamSeverity))
	}
	for k, vs := range q {
		if k == api.EventParamCursor || k == api.EventParamLimit {
			continue
		}
		for _, v := range vs {
			if strings.TrimSpace(v) != "" {
				d.Filtered = true
				for _, m := range moreFilters {
					d.More = d.More || m == k
				}
			}
		}
	}
	status := http.StatusOK
	f, err := events.ParseFilter(q)
	if err == nil {
		if f.Limit == 0 {
			f.Limit = eventsPerPage
		}
		var pg store.EventPage
		pg, err = c.opt.services.Events.List(r.Context(), f)
		if err == nil {
			for _, rec := range pg.Events {
				d.Events = append(d.Events, newEventRow(rec))
			}
			if pg.Next != nil {
				d.OlderURL = withParam(r.URL, api.EventParamCursor, events.EncodeCursor(pg.Next))
			}
			if f.After != nil {
				d.NewestURL = withParam(r.URL, api.EventParamCursor, "")
			}
		}
	}
	switch {
	case errors.Is(err, service.ErrInvalid):
		d.Error = sentence(err.Error())
		status = http.StatusBadRequest
	case err != nil:
		c.storeError(w, r, "event list", err)
		return
	}
	p := c.newPage(r, "events", "Events", crumb{Label: "Events"})
	p.Data = d
	c.render(w, r, status, "events", p)
}

func newEventRow(rec store.EventRecord) eventRow {
	e := &rec.Event
	row := eventRow{EventRecord: rec}
	switch {
	case e.Namespace != "" || e.Pod != "":
		for _, s := range []string{e.Cluster, e.Namespace, e.Pod} {
			if s != "" {
				row.Scope = append(row.Scope, s)
			}
		}
	default:
		for _, s := range []string{e.Cluster, e.Node, e.Host} {
			if s != "" {
				row.Scope = append(row.Scope, s)
			}
		}
	}
	add := func(k, v string) {
		if v != "" {
			row.Details = append(row.Details, kv{k, v})
		}
	}
	add("Event ID", e.ID)
	add("Module", e.Module)
	add("Node", e.Node)
	add("Host", e.Host)
	if wl := e.Workload; wl != nil {
		add("Workload", wl.Kind+"/"+wl.Name)
	}
	if ct := e.Container; ct != nil {
		add("Container", ct.Name)
		add("Container ID", ct.ID)
		add("Image", ct.Image)
		add("Image digest", ct.ImageDigest)
	}
	add("Policy", e.Rule.Policy)
	add("Tactic", e.Tactic)
	add("Action error", e.ActionError)
	if p := e.Process; p != nil {
		add("Process", p.Exe)
		add("Command line", strings.Join(p.Args, " "))
		add("Parents", strings.Join(p.Ancestors, " ← "))
	}
	if f := e.File; f != nil {
		add("File", f.Path)
		add("Renamed to", f.NewPath)
		add("File SHA-256", f.SHA256)
	}
	if n := e.Network; n != nil && (n.DstAddr != "" || n.SrcAddr != "") {
		add("Network", strings.TrimSpace(n.Protocol+" "+hostPort(n.SrcAddr, n.SrcPort)+" → "+hostPort(n.DstAddr, n.DstPort)))
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, e.Details[k])
	}
	add("Reported by", rec.ReportedBy)
	return row
}

func hostPort(addr string, port int) string {
	if port == 0 {
		return addr
	}
	if strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.Itoa(port)
}
