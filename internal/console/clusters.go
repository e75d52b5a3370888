package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/service"
	"mamori/internal/service/compliance"
	"mamori/internal/service/inventory"
	"mamori/internal/store"
)

// clusterStale is how long after its last contact a cluster component is
// shown as not reporting: three heartbeats (a minute each).
const clusterStale = 3 * time.Minute

// clusterRow is one cluster on the Clusters page.
type clusterRow struct {
	store.Cluster
	Status     string // ok, stale, never
	Counts     map[string]int
	Workloads  int
	SyncedAt   time.Time
	Run        store.ComplianceRun
	Violations int
	Pending    int
}

type clustersData struct {
	Clusters []clusterRow
	// NewToken is a just-created cluster's token (shown once).
	NewToken, NewName, Server string
	Errors                    []string
	Form                      string
}

// workloadKinds are the pod controllers counted as workloads.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "ReplicationController"}

func (c *Console) clusterRow(r *http.Request, cl store.Cluster) (clusterRow, error) {
	ctx := r.Context()
	row := clusterRow{Cluster: cl, Status: "never"}
	switch {
	case cl.LastContact.IsZero():
	case c.opt.now().Sub(cl.LastContact) < clusterStale:
		row.Status = "ok"
	default:
		row.Status = "stale"
	}
	sum, err := c.opt.services.Inventory.Summary(ctx, cl.Name)
	if err != nil {
		return row, err
	}
	row.Counts, row.SyncedAt = sum.Counts, sum.Sync.SyncedAt
	for _, k := range workloadKinds {
		row.Workloads += sum.Counts[k]
	}
	run, vs, err := compliance.Status(ctx, c.st, cl.Name)
	if err != nil {
		return row, err
	}
	row.Run, row.Violations = run, len(vs)
	pend, err := c.opt.services.Mitigations.List(ctx, store.MitigationFilter{Cluster: cl.Name, State: store.MitigationPending, Limit: store.MaxLimit})
	if err != nil {
		return row, err
	}
	row.Pending = len(pend)
	return row, nil
}

func (c *Console) clustersPage(w http.ResponseWriter, r *http.Request) {
	c.renderClusters(w, r, http.StatusOK, clustersData{})
}

func (c *Console) renderClusters(w http.ResponseWriter, r *http.Request, status int, d clustersData) {
	cs, err := c.opt.services.Identities.ListClusters(r.Context())
	if err != nil {
		c.storeError(w, r, "cluster list", err)
		return
	}
	for _, cl := range cs {
		row, err := c.clusterRow(r, cl)
		if err != nil {
			c.storeError(w, r, "cluster "+cl.Name, err)
			return
		}
		d.Clusters = append(d.Clusters, row)
	}
	d.Server = c.serverURL(r)
	p := c.newPage(r, "clusters", "Clusters", crumb{Label: "Clusters"})
	p.Data = d
	p.Flash = flashFromQuery(r)
	c.render(w, r, status, "clusters", p)
}

// clusterCreate creates a cluster through the identities service (as POST
// /api/v1/clusters) and shows its token once.
func (c *Console) clusterCreate(w http.ResponseWriter, r *http.Request) {
	if !c.readForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	created, err := c.opt.services.Identities.CreateCluster(r.Context(), name)
	switch {
	case errors.Is(err, service.ErrInvalid):
		c.renderClusters(w, r, http.StatusBadRequest, clustersData{Errors: []string{sentence(err.Error())}, Form: name})
		return
	case errors.Is(err, store.ErrConflict):
		c.renderClusters(w, r, http.StatusConflict, clustersData{Errors: []string{"A cluster of this name exists."}, Form: name})
		return
	case err != nil:
		c.storeError(w, r, "cluster", err)
		return
	}
	c.renderClusters(w, r, http.StatusCreated, clustersData{NewToken: created.Token.Secret, NewName: created.Cluster.Name})
}

// clusterData is one cluster's page: status, compliance, inventory, mitigations.
type clusterData struct {
	Row         clusterRow
	Violations  []store.ComplianceViolation
	Kind        string
	Kinds       []kindTab
	Query       string
	Objects     []store.ClusterObject
	Pager       *pager
	Mitigations []store.Mitigation
}

type kindTab struct {
	Kind, Label, URL string
	Count            int
	Active           bool
}

func (c *Console) clusterPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.notFound(w, r, "Cluster IDs are positive numbers; this one is not.")
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind == "" {
		kind = store.KindPod
	}
	d := clusterData{Kind: kind, Query: strings.TrimSpace(q.Get("q"))}
	if len(d.Query) > maxQueryLen {
		d.Query = d.Query[:maxQueryLen]
	}
	page, per := pageParams(q)
	v, err := c.opt.services.Inventory.Objects(ctx, id, store.ObjectFilter{Kind: kind, Query: d.Query,
		Page: store.Page{Limit: per, Offset: (page - 1) * per}})
	if errors.Is(err, service.ErrInvalid) {
		c.notFound(w, r, "No such kind of object: "+kind+".")
		return
	}
	if err != nil {
		c.storeError(w, r, "cluster", err)
		return
	}
	if d.Row, err = c.clusterRow(r, v.Cluster); err != nil {
		c.storeError(w, r, "cluster", err)
		return
	}
	d.Objects = v.Page.Objects
	d.Pager = newPager(r.URL, page, per, v.Page.Total)
	for _, k := range inventory.Kinds {
		qq := url.Values{"kind": {k}}
		d.Kinds = append(d.Kinds, kindTab{Kind: k, Label: k, Count: v.Counts[k], Active: k == kind,
			URL: "/clusters/" + strconv.FormatInt(id, 10) + "?" + qq.Encode()})
	}
	if _, d.Violations, err = compliance.Status(ctx, c.st, v.Cluster.Name); err != nil {
		c.storeError(w, r, "compliance", err)
		return
	}
	if d.Mitigations, err = c.opt.services.Mitigations.List(ctx, store.MitigationFilter{Cluster: v.Cluster.Name, Limit: 50}); err != nil {
		c.storeError(w, r, "mitigations", err)
		return
	}
	p := c.newPage(r, "clusters", "Cluster "+v.Cluster.Name, crumb{Label: "Clusters", Href: "/clusters"}, crumb{Label: v.Cluster.Name})
	p.Data = d
	c.render(w, r, http.StatusOK, "cluster", p)
}

// shortDigest is sha256:0123456789ab.
func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
