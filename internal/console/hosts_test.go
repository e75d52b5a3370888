package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/store"
)

// TestHostsConsole: the Hosts pages through service/hosts: a group created
// (refused first with every problem of its settings named), its settings
// edited, its allow-list added to and removed from, an agent placed, the
// quarantine and the baselines with their requests, the per-module views
// of the Events page; a viewer reads but changes nothing.
func TestHostsConsole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.st.RegisterAgent(ctx, store.Agent{Cluster: "eu-1", Node: "node-<1>", LastContact: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// A bare-host agent whose sensor runs in fallback mode.
	if _, err := e.st.RegisterAgent(ctx, store.Agent{Node: "bare-<2>", LastContact: time.Now(),
		Sensor: store.AgentSensor{Mode: "fallback", Hooks: "cn_proc+fanotify", Missing: []string{"connect", "mount"}}}); err != nil {
		t.Fatal(err)
	}
	viewer := e.login(auth.RoleViewer)
	admin := e.login(auth.RoleAdmin)
	code, body, _ := viewer.get("/hosts")
	for _, want := range []string{`<span class="mono">fallback</span> <span class="cell-sub">cn_proc&#43;fanotify</span>`,
		`title="connect, mount">2 event kinds not reported`, "not reported</span></td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("hosts page: the sensor column lacks %q", want)
		}
	}
	if code != 200 || !strings.Contains(body, "hosts no other group takes") || !strings.Contains(body, "node-&lt;1&gt;") ||
		strings.Contains(body, "Create a host group") || !strings.Contains(body, "antimalware: log") || !strings.Contains(body, "appcontrol: off") {
		t.Fatalf("viewer hosts page: %d", code)
	}
	// Bad settings: every problem by field, the form refilled.
	bad := "antimalware: {mode: kill}\nfirewall:\n  ruleset: {rules: [{name: x, direction: in, action: drop, sources: [10.1.2.3/8]}]}\n"
	code, body, _ = admin.postCSRF("/hosts/groups", url.Values{"name": {"web"}, "cluster": {"eu-1"}, "settings": {bad}})
	if code != http.StatusBadRequest || !strings.Contains(body, "antimalware.mode") || !strings.Contains(body, "network is 10.0.0.0/8") ||
		!strings.Contains(body, "mode: kill") {
		t.Fatalf("bad settings: %d %s", code, body)
	}
	code, _, hdr := admin.postCSRF("/hosts/groups", url.Values{"name": {"web"}, "cluster": {"eu-1"}, "settings": {"antimalware: {mode: block}\r\nappcontrol: {enabled: true}\r\n"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/hosts/groups/") {
		t.Fatalf("create: %d %q", code, hdr.Get("Location"))
	}
	loc := hdr.Get("Location")
	gid := strings.TrimSuffix(strings.TrimPrefix(loc, "/hosts/groups/"), "?done=group-created")
	_, body, _ = admin.get(loc)
	for _, want := range []string{"Host group created", "antimalware: block", "appcontrol: log", "node-&lt;1&gt;", "mode: block", "Save settings"} {
		if !strings.Contains(body, want) {
			t.Errorf("group page: missing %q", want)
		}
	}
	code, _, hdr = admin.postCSRF("/hosts/groups/"+gid, url.Values{"cluster": {"eu-1"}, "settings": {"firewall: {mode: block}\n"}})
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "group-updated") {
		t.Fatalf("update: %d", code)
	}
	if _, body, _ := viewer.get("/hosts/groups/" + gid); !strings.Contains(body, "firewall: block") || !strings.Contains(body, "Settings version 2") || strings.Contains(body, "Save settings") {
		t.Error("group page after update, as viewer")
	}
	// Allow-list.
	sum := strings.Repeat("ab", 32)
	code, _, _ = admin.postCSRF("/hosts/groups/"+gid+"/allowlist", url.Values{"sha256": {"xyz"}})
	if code != http.StatusBadRequest {
		t.Errorf("bad digest: %d", code)
	}
	if code, _, hdr := admin.postCSRF("/hosts/groups/"+gid+"/allowlist", url.Values{"sha256": {sum}, "path": {"/opt/<tool>"}, "kind": {"executable"}}); code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "allowed") {
		t.Fatalf("allow: %d", code)
	}
	if _, body, _ := viewer.get("/hosts/groups/" + gid + "/allowlist?q=tool"); !strings.Contains(body, "/opt/&lt;tool&gt;") || !strings.Contains(body, "manual") {
		t.Error("allow-list page")
	}
	if code, _, _ := viewer.postCSRF("/hosts/groups/"+gid+"/allowlist/remove", url.Values{"sha256": {sum}}); code != http.StatusForbidden {
		t.Errorf("viewer remove: %d", code)
	}
	if code, _, _ := admin.postCSRF("/hosts/groups/"+gid+"/allowlist/remove", url.Values{"sha256": {sum}}); code != http.StatusSeeOther {
		t.Errorf("remove: %d", code)
	}
	// Placement.
	agentID := strconv.FormatInt(a.ID, 10)
	if code, _, _ := admin.postCSRF("/hosts/agents/"+agentID+"/place", url.Values{"group": {"nope"}}); code != http.StatusBadRequest {
		t.Errorf("place in unknown group: %d", code)
	}
	if code, _, _ := admin.postCSRF("/hosts/agents/"+agentID+"/place", url.Values{"group": {"default"}}); code != http.StatusSeeOther {
		t.Errorf("place: %d", code)
	}
	if _, body, _ := viewer.get("/hosts"); !strings.Contains(body, "placed") {
		t.Error("placement not shown")
	}
	// Quarantine and its requests.
	qid := strings.Repeat("0c", 16)
	if err := e.st.ReplaceQuarantine(ctx, a.ID, []store.QuarantineEntry{{ID: qid, Time: time.Now(), Path: "/srv/<eicar>.com", Size: 68,
		SHA256: strings.Repeat("cd", 32), Hits: `[{"engine":"sha256","signature":"EICAR-Test-File"}]`, Removed: true}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := viewer.get("/hosts/quarantine"); !strings.Contains(body, "/srv/&lt;eicar&gt;.com") || !strings.Contains(body, "EICAR-Test-File") || strings.Contains(body, ">Restore<") {
		t.Error("quarantine page as viewer")
	}
	code, _, hdr = admin.postCSRF("/hosts/agents/"+agentID+"/requests", url.Values{"kind": {"quarantine.restore"}, "entry": {qid}, "allow": {"1"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/hosts/quarantine?done=requested" {
		t.Fatalf("restore: %d %q", code, hdr.Get("Location"))
	}
	if _, body, _ := admin.get(hdr.Get("Location")); !strings.Contains(body, "Request queued") || !strings.Contains(body, "quarantine.restore") || !strings.Contains(body, "pending") {
		t.Error("quarantine page after the request")
	}
	if code, _, _ := admin.postCSRF("/hosts/agents/"+agentID+"/requests", url.Values{"kind": {"quarantine.delete"}, "entry": {"../../x"}}); code != http.StatusBadRequest {
		t.Errorf("bad entry: %d", code)
	}
	// Baselines.
	if err := e.st.PutBaseline(ctx, a.ID, time.Now(), `{"created":"2026-12-06T10:00:00Z","root":"/","files":1234,"objects":5,"rules":[{"name":"binaries","severity":"high","files":1000}],"objectKinds":{"user":3}}`); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := viewer.get("/hosts/baselines"); !strings.Contains(body, "1,234") || !strings.Contains(body, "binaries 1000") {
		t.Error("baselines page")
	}
	code, _, hdr = admin.postCSRF("/hosts/agents/"+agentID+"/requests", url.Values{"kind": {"integrity.rebuild"}, "back": {"baselines"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/hosts/baselines?done=requested" {
		t.Fatalf("rebuild: %d %q", code, hdr.Get("Location"))
	}
	// The per-module views of the one Events page.
	_, body, _ = viewer.get("/events?source=host&module=antimalware")
	if !strings.Contains(body, `id="host-module-tabs"`) || !strings.Contains(body, "module=integrity") || !strings.Contains(body, "Application control") {
		t.Error("events page host tabs")
	}
	if _, body, _ := viewer.get("/events"); strings.Contains(body, `id="host-module-tabs"`) {
		t.Error("host tabs on the unfiltered events page")
	}
	// Deleting: the default group stays.
	gs, _ := e.st.ListHostGroups(ctx)
	if code, _, hdr := admin.postCSRF("/hosts/groups/"+strconv.FormatInt(gs[0].ID, 10)+"/delete", nil); code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "default-kept") {
		t.Errorf("delete default: %d %q", code, hdr.Get("Location"))
	}
	if code, _, hdr := admin.postCSRF("/hosts/groups/"+gid+"/delete", nil); code != http.StatusSeeOther || hdr.Get("Location") != "/hosts?done=group-deleted" {
		t.Errorf("delete: %d %q", code, hdr.Get("Location"))
	}
	if code, _, _ := viewer.get("/hosts/groups/999999"); code != http.StatusNotFound {
		t.Errorf("unknown group: %d", code)
	}
}
