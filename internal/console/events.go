package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// HostTabs are the host modules' views of this page (source host,
	// module X), shown when the page shows host events.
	HostTabs []hostModuleTab
}

// eventRow is one event with what the table shows precomputed.
type eventRow struct {
	store.EventRecord
	// Scope is the where: cluster / namespace / pod, or the host or node.
	Scope []string
	// Runtime are the runtime fields shown under the scope (node,
	// container, image), each a link filtering the page by it.
	Runtime []kv
	// Proc is the process (executable and arguments, shell-quoted), cut for
	// the row; the whole command line is in Details.
	Proc    string
	Details []kv
}

// kv is one labelled value; Href, when set, filters the page by it; Long
// values (command lines) are shown in a scrolling block.
type kv struct {
	K, V string
	Href string
	Long bool
}

// procRowLen bounds the process line of a row (the details have it whole).
const procRowLen = 160

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
	if q.Get(api.EventParamSource) == string(model.SourceHost) {
		d.HostTabs = hostModuleTabs()
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
			base := &url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
			bq := base.Query()
			bq.Del(api.EventParamCursor)
			base.RawQuery = bq.Encode()
			for _, rec := range pg.Events {
				d.Events = append(d.Events, newEventRow(rec, base))
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

func newEventRow(rec store.EventRecord, base *url.URL) eventRow {
	e := &rec.Event
	row := eventRow{EventRecord: rec}
	switch {
	case e.Namespace != "" || e.Pod != "":
		for _, s := range []string{e.Cluster, e.Namespace, e.Pod} {
			if s != "" {
				row.Scope = append(row.Scope, s)
			}
		}
		// An admission decision about a controller (or a pod made with
		// generateName) names its workload instead of a pod.
		if e.Pod == "" && e.Workload != nil && e.Workload.Name != "" {
			row.Scope = append(row.Scope, e.Workload.Kind+" "+e.Workload.Name)
		}
	default:
		for _, s := range []string{e.Cluster, e.Node, e.Host} {
			if s != "" {
				row.Scope = append(row.Scope, s)
			}
		}
	}
	filter := func(param, v string) string {
		if base == nil || v == "" || len(v) > model.MaxEventTextLen {
			return ""
		}
		return withParam(base, param, v)
	}
	add := func(k, v string) {
		if v != "" {
			row.Details = append(row.Details, kv{K: k, V: v})
		}
	}
	addF := func(k, v, param string) {
		if v != "" {
			row.Details = append(row.Details, kv{K: k, V: v, Href: filter(param, v)})
		}
	}
	if e.Namespace != "" || e.Pod != "" {
		if e.Node != "" {
			row.Runtime = append(row.Runtime, kv{K: "node", V: e.Node, Href: filter(api.EventParamNode, e.Node)})
		}
	}
	if ct := e.Container; ct != nil {
		if name := cmp.Or(ct.Name, shortID(ct.ID)); name != "" {
			row.Runtime = append(row.Runtime, kv{K: "container", V: name, Href: filter(api.EventParamContainer, cmp.Or(ct.Name, ct.ID))})
		}
		if ct.Image != "" {
			row.Runtime = append(row.Runtime, kv{K: "image", V: ct.Image, Href: filter(api.EventParamImage, ct.Image)})
		}
	}
	add("Event ID", e.ID)
	add("Module", e.Module)
	addF("Node", e.Node, api.EventParamNode)
	add("Host", e.Host)
	addF("Pod", e.Pod, api.EventParamPod)
	if wl := e.Workload; wl != nil {
		add("Workload", wl.Kind+"/"+wl.Name)
	}
	if ct := e.Container; ct != nil {
		addF("Container", ct.Name, api.EventParamContainer)
		addF("Container ID", ct.ID, api.EventParamContainer)
		addF("Image", ct.Image, api.EventParamImage)
		addF("Image digest", ct.ImageDigest, api.EventParamImage)
	}
	addF("Rule", e.Rule.ID, api.EventParamRule)
	if e.Rule.Policy != "" && e.Rule.PolicyVersion > 0 {
		add("Policy", e.Rule.Policy+" version "+strconv.Itoa(e.Rule.PolicyVersion))
	} else {
		add("Policy", e.Rule.Policy)
	}
	addF("Tactic", e.Tactic, api.EventParamTactic)
	addF("Technique", e.Technique, api.EventParamTechnique)
	add("Action error", e.ActionError)
	if p := e.Process; p != nil {
		add("Process", p.Exe)
		if p.PID != 0 {
			add("PID", strconv.Itoa(p.PID)+" (parent "+strconv.Itoa(p.PPID)+", uid "+strconv.Itoa(p.UID)+")")
		}
		cmd := commandLine(p.Args)
		if cmd != "" {
			row.Details = append(row.Details, kv{K: "Command line", V: cmd, Long: true})
		}
		add("Working directory", p.Cwd)
		add("Parents", strings.Join(p.Ancestors, " ← "))
		proc := p.Exe
		if cmd != "" {
			proc = cmd
			if p.Exe != "" && (len(p.Args) == 0 || p.Args[0] != p.Exe) {
				proc = p.Exe + ": " + cmd
			}
		}
		row.Proc = cutText(proc, procRowLen)
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

// commandLine joins argv as a shell would read it back: arguments with
// spaces, quotes or other special characters single-quoted, so that
// argument boundaries stay visible. Control characters are escaped by the
// template (disp), not here.
func commandLine(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cutText cuts s to at most n bytes on a rune boundary, saying how much
// was cut.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + fmtNum(len(s)-cut) + " more bytes)"
}

// shortID shortens a container ID for display.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
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
