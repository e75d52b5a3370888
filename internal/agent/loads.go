package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/runtime/container"
	"mamori/internal/runtime/event"
)

// "In use at run time" (issue 15): the sensor's load kind reports each
// file a container executes or opens for reading once per container (the
// kernel keeps a (cgroup, device, inode) LRU); the agent forwards the
// loads of containers (never of host processes) to the server, which maps
// them to the packages of the image's inventory and marks the image's
// vulnerabilities in use.
//
// A separate small stream, not the event spool: a load is not a
// detection (no rule, no ATT&CK technique; the server's event store and
// its retention are for detections), and what the server needs is a set
// per container, which is idempotent: a report sent twice stores nothing
// new. The forwarder keeps the paths not yet delivered in memory (bounded,
// counted when full), sends them every couple of seconds and, once a
// minute or when the node's containers change, the list of containers
// running now (the server ends the others: their loads expire with them).
// What a crashed agent had not delivered is lost, but the server keeps
// what it has for running containers across agent restarts, and loads
// that matter keep coming: every new process of a container loads its
// executable and libraries again, and after a restart the kernel LRU is
// empty, so the next load of each file is reported again.

// LoadReporter is the server call that takes the loads (POST
// /api/v1/agents/loads); *client.Client implements it.
type LoadReporter interface {
	ReportLoads(ctx context.Context, r api.LoadReport) (api.LoadReportResult, error)
}

var _ LoadReporter = (*client.Client)(nil)

// WithLoadReporter makes the runtime module ask the sensor for load
// events and forward the loads of containers to the server.
func WithLoadReporter(l LoadReporter) RuntimeOption {
	return func(r *Runtime) { r.loadRep = l }
}

// Bounds and timing of the forwarder.
const (
	// loadFlush is how often pending loads are sent: the server marks an
	// image a couple of seconds after a report, so a load is marked within
	// about five seconds of the exec or open.
	loadFlush = 2 * time.Second
	// loadSync is how often the running list is sent when nothing changed
	// (the server expires containers not named for 15 minutes).
	loadSync = time.Minute
	// maxPendingLoads bounds the paths waiting for the server (a server
	// outage): past it new loads are dropped and counted.
	maxPendingLoads = 65_536
	// maxLoadsPerContainer is the server's cap (store.MaxLoadsPerContainer):
	// the agent stops sending a container's paths past it.
	maxLoadsPerContainer = 4096
	// loadRetryMax bounds the backoff after a failed report.
	loadRetryMax = 30 * time.Second
)

// loadSkipPrefixes are pseudo file systems: no package owns their files.
var loadSkipPrefixes = []string{"/proc/", "/sys/", "/dev/"}

// LoadStats are the forwarder's counters.
type LoadStats struct {
	// Observed: load events of containers; Host: of host processes
	// (ignored); Unresolved: without a resolved path; NoDigest: of
	// containers whose image digest attribution does not know; Skipped:
	// pseudo-file-system paths; Capped: past the per-container cap;
	// Dropped: the pending bound was full.
	Observed   uint64 `json:"observed"`
	Host       uint64 `json:"host"`
	Unresolved uint64 `json:"unresolved"`
	NoDigest   uint64 `json:"noDigest"`
	Skipped    uint64 `json:"skipped"`
	Capped     uint64 `json:"capped"`
	Dropped    uint64 `json:"dropped"`
	// Swept: paths read from /proc/PID/maps of containers older than the
	// agent (loadsweep.go).
	Swept   uint64 `json:"swept"`
	Pending int    `json:"pending"`
	// Sent: paths delivered; Reports: requests that succeeded, Failures
	// those that failed (sent again), Rejected paths the server refused
	// (a request it cannot take: dropped).
	Sent      uint64    `json:"sent"`
	Bytes     uint64    `json:"bytes"` // JSON bytes of the reports sent (before compression)
	Reports   uint64    `json:"reports"`
	Failures  uint64    `json:"failures"`
	Rejected  uint64    `json:"rejected"`
	LastError string    `json:"lastError,omitempty"`
	LastSent  time.Time `json:"lastSent,omitzero"`
}

type pendingContainer struct {
	name, image, digest string
	loads               []api.Load
}

// loadForwarder batches loads for the server.
type loadForwarder struct {
	rep  LoadReporter
	node string
	log  *slog.Logger
	inv  func() (container.Inventory, <-chan struct{})
	// sweeper reads what containers older than the agent mapped (nil: no sweep).
	sweeper *sweeper

	mu       sync.Mutex
	pending  map[string]*pendingContainer // container ID →
	npending int
	// sent counts the paths sent per container (for the cap); forgotten
	// when the container is not running any more.
	sent map[string]int

	observed, host, unresolved, noDigest, skipped, capped, dropped atomic.Uint64
	paths, bytes, reports, failures, rejected, swept               atomic.Uint64
	lastError                                                      atomic.Pointer[string]
	lastSent                                                       atomic.Pointer[time.Time]
}

func newLoadForwarder(rep LoadReporter, node string, inv func() (container.Inventory, <-chan struct{}), log *slog.Logger) *loadForwarder {
	return &loadForwarder{rep: rep, node: node, inv: inv, log: log, pending: map[string]*pendingContainer{}, sent: map[string]int{}}
}

// observe takes one load event (the rules worker calls it; it never
// blocks on the network).
func (f *loadForwarder) observe(e *event.Event, info *container.Info) {
	if info == nil || e.Container.ID == "" {
		f.host.Add(1)
		return
	}
	f.observed.Add(1)
	if !e.File.Resolved || !strings.HasPrefix(e.File.Path, "/") {
		f.unresolved.Add(1)
		return
	}
	p := e.File.Path
	for _, s := range loadSkipPrefixes {
		if strings.HasPrefix(p, s) {
			f.skipped.Add(1)
			return
		}
	}
	if len(p) > api.MaxLoadPathBytes {
		f.unresolved.Add(1)
		return
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	f.add(&e.Container, p, at)
}

// add queues one path of a container.
func (f *loadForwarder) add(c *event.Container, p string, at time.Time) {
	if c.ImageDigest == "" {
		f.noDigest.Add(1)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent[c.ID] >= maxLoadsPerContainer {
		f.capped.Add(1)
		return
	}
	if f.npending >= maxPendingLoads {
		f.dropped.Add(1)
		return
	}
	pc := f.pending[c.ID]
	if pc == nil {
		pc = &pendingContainer{name: c.Name, image: c.Image, digest: c.ImageDigest}
		f.pending[c.ID] = pc
	}
	pc.loads = append(pc.loads, api.Load{Path: p, Time: at.UTC()})
	f.npending++
	f.sent[c.ID]++ // counted when queued: the cap bounds what is queued and sent
}

// run sends pending loads every loadFlush, and the running list at start,
// when the node's containers change and every loadSync, until ctx ends;
// then it tries once more, briefly.
func (f *loadForwarder) run(ctx context.Context) {
	tick := time.NewTicker(loadFlush)
	defer tick.Stop()
	var changed <-chan struct{}
	var lastSync time.Time
	syncDue := true
	wait, next := time.Duration(0), time.Time{}
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			f.flush(sctx, false)
			cancel()
			return
		case <-changed:
			syncDue = true
			changed = nil
		case <-tick.C:
		}
		if time.Since(lastSync) >= loadSync {
			syncDue = true
		}
		if time.Now().Before(next) {
			continue // backing off after a failure
		}
		var running []string
		if syncDue && f.inv != nil {
			inv, ch := f.inv()
			changed = ch
			running = runningIDs(inv)
			if f.sweeper != nil {
				if n := f.sweep(f.sweeper, f.sweeper.due(inv)); n > 0 {
					f.log.Info("loads of containers older than the agent read from /proc", "paths", n)
				}
			}
		}
		err := f.flushWith(ctx, syncDue, running)
		if err != nil {
			wait = min(max(2*wait, loadFlush), loadRetryMax)
			next = time.Now().Add(wait)
			continue
		}
		wait = 0
		if syncDue {
			syncDue, lastSync = false, time.Now()
			f.forget(running)
		}
	}
}

// runningIDs are the IDs of the running workload containers.
func runningIDs(inv container.Inventory) []string {
	out := make([]string, 0, len(inv.Containers))
	for _, c := range inv.Containers {
		if !c.Sandbox && c.ID != "" {
			out = append(out, c.ID)
		}
	}
	slices.Sort(out)
	return out
}

// forget drops the per-container counts of containers not running.
func (f *loadForwarder) forget(running []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.sent {
		if _, ok := slices.BinarySearch(running, id); !ok && f.pending[id] == nil {
			delete(f.sent, id)
		}
	}
}

// flush sends what is pending (no running list).
func (f *loadForwarder) flush(ctx context.Context, sync bool) error {
	return f.flushWith(ctx, sync, nil)
}

// flushWith sends the pending loads in reports of at most
// api.MaxLoadReportPaths paths, the last one with the running list when
// sync is set. On a failure the unsent loads are pending again.
func (f *loadForwarder) flushWith(ctx context.Context, sync bool, running []string) error {
	f.mu.Lock()
	batch := f.pending
	n := f.npending
	f.pending, f.npending = map[string]*pendingContainer{}, 0
	f.mu.Unlock()
	if n == 0 && !sync {
		return nil
	}
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var reports []api.LoadReport
	cur := api.LoadReport{Node: f.node}
	size := 0
	for _, id := range ids {
		pc := batch[id]
		loads := pc.loads
		for len(loads) > 0 {
			room := api.MaxLoadReportPaths - size
			if room == 0 || len(cur.Containers) == api.MaxLoadReportContainers {
				reports = append(reports, cur)
				cur, size = api.LoadReport{Node: f.node}, 0
				room = api.MaxLoadReportPaths
			}
			k := min(room, len(loads))
			cur.Containers = append(cur.Containers, api.LoadContainer{ID: id, Name: pc.name, Image: pc.image, ImageDigest: pc.digest,
				Loads: loads[:k]})
			size += k
			loads = loads[k:]
		}
	}
	if sync {
		if len(running) > api.MaxLoadReportContainers {
			running = running[:api.MaxLoadReportContainers] // the rest expire on the server (15 minutes)
		}
		cur.Sync, cur.Running = true, running
	}
	reports = append(reports, cur)
	for i, r := range reports {
		if len(r.Containers) == 0 && !r.Sync {
			continue
		}
		res, err := f.rep.ReportLoads(ctx, r)
		if err != nil {
			np := 0
			for _, c := range r.Containers {
				np += len(c.Loads)
			}
			msg := err.Error()
			f.lastError.Store(&msg)
			if permanent(err) {
				// The server cannot take this report (a 4xx other than a
				// refused token, a timeout or a rate limit; 404: a server
				// without the route): sending it again cannot succeed.
				// Drop it, counted; the rest go on.
				f.rejected.Add(uint64(np))
				f.log.Error("server refuses a load report: dropped", "paths", np, "error", err)
				continue
			}
			f.failures.Add(1)
			f.log.Warn("load report failed: kept for the next attempt", "paths", np, "error", err)
			f.requeue(reports[i:])
			return err
		}
		np := 0
		for _, c := range r.Containers {
			np += len(c.Loads)
		}
		f.paths.Add(uint64(np))
		f.reports.Add(1)
		f.bytes.Add(uint64(reportSize(r)))
		now := time.Now()
		f.lastSent.Store(&now)
		if res.Capped > 0 {
			f.capped.Add(uint64(res.Capped))
		}
	}
	return nil
}

// permanent says a report failed in a way no retry can fix.
func permanent(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return false
	}
	switch c := ce.StatusCode; {
	case c == http.StatusUnauthorized, c == http.StatusForbidden, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return false
	default:
		return c >= 400 && c < 500
	}
}

// requeue puts the loads of unsent reports back, within the bound.
func (f *loadForwarder) requeue(rs []api.LoadReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		for _, c := range r.Containers {
			pc := f.pending[c.ID]
			if pc == nil {
				pc = &pendingContainer{name: c.Name, image: c.Image, digest: c.ImageDigest}
				f.pending[c.ID] = pc
			}
			for _, l := range c.Loads {
				if f.npending >= maxPendingLoads {
					f.dropped.Add(1)
					continue
				}
				pc.loads = append(pc.loads, l)
				f.npending++
			}
		}
	}
}

// reportSize is a report's JSON size (for the stats: the volume sent).
func reportSize(r api.LoadReport) int {
	b, err := json.Marshal(r)
	if err != nil {
		return 0
	}
	return len(b)
}

func (f *loadForwarder) stats() LoadStats {
	f.mu.Lock()
	pending := f.npending
	f.mu.Unlock()
	s := LoadStats{Observed: f.observed.Load(), Host: f.host.Load(), Unresolved: f.unresolved.Load(), NoDigest: f.noDigest.Load(),
		Skipped: f.skipped.Load(), Capped: f.capped.Load(), Dropped: f.dropped.Load(), Swept: f.swept.Load(), Pending: pending, Sent: f.paths.Load(),
		Bytes: f.bytes.Load(), Reports: f.reports.Load(), Failures: f.failures.Load(), Rejected: f.rejected.Load()}
	if p := f.lastError.Load(); p != nil {
		s.LastError = *p
	}
	if p := f.lastSent.Load(); p != nil {
		s.LastSent = *p
	}
	return s
}
