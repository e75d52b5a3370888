package server

import (
	"net/http"
	"strconv"
	"strings"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/service/images"
	"mamori/internal/store"
)

// The cluster component's data routes (api/clusters.go): image lookups and
// inline scans for its webhook, its inventory, and the isolate/terminate
// queue it executes (fed by continuous compliance and the node agents).

func (s *Server) handleImageLookup(w http.ResponseWriter, r *http.Request) {
	var req api.ImageLookup
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Images) > api.MaxImageLookup {
		writeError(w, http.StatusBadRequest, "at most "+strconv.Itoa(api.MaxImageLookup)+" images in one lookup")
		return
	}
	ds, db, err := s.images.LookupForCluster(r.Context(), req.Images)
	if err != nil {
		s.fail(w, r, "image lookup", err)
		return
	}
	out := api.ImageLookupResult{Images: make([]api.ImageScanData, 0, len(ds)), DBBuiltAt: db}
	for _, d := range ds {
		out.Images = append(out.Images, apiScanData(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func apiScanData(d images.ScanData) api.ImageScanData {
	out := api.ImageScanData{Ref: d.Ref, Found: d.Found}
	if d.Found {
		out.ImageID, out.Digest, out.ScanID, out.ScannedAt, out.Result = d.Image.ID, d.Image.Digest, d.ScanID, d.Image.LastScannedAt, d.Result
	}
	return out
}

func (s *Server) handleClusterScan(w http.ResponseWriter, r *http.Request) {
	var res model.Result
	if !s.decodeUpload(w, r, s.cfg.maxScanBytes, "scan result", &res) {
		return
	}
	out, d, err := s.images.IngestClusterScan(r.Context(), &res, s.matcher.MatchResult)
	if err != nil {
		s.fail(w, r, "cluster scan", err)
		return
	}
	writeJSON(w, http.StatusOK, api.ClusterScanOutcome{Status: string(out.Status), Image: apiScanData(d)})
}

func (s *Server) handleInventory(w http.ResponseWriter, r *http.Request) {
	var b api.InventoryBatch
	if !s.decodeUpload(w, r, api.MaxInventoryBatchBytes, "inventory batch", &b) {
		return
	}
	out, err := s.inventory.Ingest(r.Context(), b)
	if err != nil {
		s.fail(w, r, "inventory", err)
		return
	}
	writeJSON(w, http.StatusOK, api.InventoryResult{Upserted: out.Upserted, Deleted: out.Deleted, Removed: out.Removed})
}

func (s *Server) handleClusterObjects(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pg, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	v, err := s.inventory.Objects(r.Context(), id, store.ObjectFilter{Kind: q.Get("kind"), Namespace: q.Get("namespace"),
		Query: strings.TrimSpace(q.Get("q")), Page: pg})
	if err != nil {
		s.fail(w, r, "cluster inventory", err)
		return
	}
	out := api.ClusterObjects{Cluster: v.Cluster.Name, Counts: v.Counts, Objects: make([]api.InventoryObject, 0, len(v.Page.Objects)),
		Total: v.Page.Total, SyncedAt: v.Sync.SyncedAt}
	for _, o := range v.Page.Objects {
		out.Objects = append(out.Objects, apiObject(o))
	}
	writeJSON(w, http.StatusOK, out)
}

func apiObject(o store.ClusterObject) api.InventoryObject {
	out := api.InventoryObject{InventoryRef: api.InventoryRef{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: o.UID},
		ResourceVersion: o.ResourceVersion, Labels: o.Labels, Node: o.Node, Phase: o.Phase}
	if o.OwnerKind != "" {
		out.Owner = &model.WorkloadRef{Kind: o.OwnerKind, Name: o.OwnerName}
	}
	for _, c := range o.Containers {
		out.Containers = append(out.Containers, api.InventoryContainer{Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest,
			ContainerID: c.ContainerID, Kind: c.Kind, Running: c.Running})
	}
	return out
}

func apiMitigation(m store.Mitigation) api.Mitigation {
	return api.Mitigation{ID: m.ID, Cluster: m.Cluster, Action: model.Action(m.Action), Namespace: m.Namespace, Pod: m.Pod,
		PodUID: m.PodUID, Node: m.Node, Container: m.Container, Source: model.EventSource(m.Source), Rule: m.Rule,
		EventID: m.EventID, Message: m.Message, RequestedBy: m.RequestedBy, State: m.State, Error: m.Error, Detail: m.Detail,
		CreatedAt: m.CreatedAt, DoneAt: m.DoneAt}
}

func apiMitigations(ms []store.Mitigation) api.MitigationList {
	out := api.MitigationList{Mitigations: make([]api.Mitigation, 0, len(ms))}
	for _, m := range ms {
		out.Mitigations = append(out.Mitigations, apiMitigation(m))
	}
	return out
}

func (s *Server) handleRequestMitigation(w http.ResponseWriter, r *http.Request) {
	var req api.MitigationRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m, err := s.mitigations.Request(r.Context(), req)
	if err != nil {
		s.fail(w, r, "mitigation", err)
		return
	}
	writeJSON(w, http.StatusAccepted, apiMitigation(m))
}

func (s *Server) handlePendingMitigations(w http.ResponseWriter, r *http.Request) {
	ms, err := s.mitigations.Pending(r.Context())
	if err != nil {
		s.fail(w, r, "mitigations", err)
		return
	}
	writeJSON(w, http.StatusOK, apiMitigations(ms))
}

func (s *Server) handleCompleteMitigation(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var o api.MitigationOutcome
	if err := decodeJSON(r, &o); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m, err := s.mitigations.Complete(r.Context(), id, o)
	if err != nil {
		s.fail(w, r, "mitigation", err)
		return
	}
	writeJSON(w, http.StatusOK, apiMitigation(m))
}

func (s *Server) handleListMitigations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.MitigationFilter{Cluster: q.Get("cluster"), State: q.Get("state")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid limit "+strconv.Quote(v))
			return
		}
		f.Limit = n
	}
	ms, err := s.mitigations.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, "mitigations", err)
		return
	}
	writeJSON(w, http.StatusOK, apiMitigations(ms))
}
