package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/runtime/event"
)

// Resolver attributes events to containers. It keeps what the runtimes
// say (their event streams, re-listed on every reconnect) in maps keyed by
// what every event carries:
//
//   - the cgroup v2 id: one container's processes share it, and the kernel
//     never reuses an id during a boot, so a hit is right whatever the PID;
//   - for events whose cgroup is the v2 root (a pure v1 host, or a hybrid
//     one whose runtime does not use the unified hierarchy), the mount
//     namespace of a running container, then the process's identity
//     (PID, start time) read from /proc and cached under that pair, so a
//     reused PID is never taken for the process that had it before.
//
// A lookup that misses resolves the cgroup id to its path
// (open_by_handle_at), reads the runtime and the container from the path's
// form, and asks that runtime; a cgroup that is already gone (a container
// that ran for a millisecond) is waited for briefly, since the runtime's
// events describe it on their way. Exited containers stay attributable for
// the grace period.
//
// Attribute is safe for concurrent use; its hit path takes a read lock and
// allocates nothing.
type Resolver struct {
	o    options
	cg   Cgroup2
	proc Proc
	// hostMnt is the host's mount namespace (of PID 1): an event in it and
	// in the root cgroup is the host's without a look at /proc.
	hostMnt uint32

	mu       sync.RWMutex
	byCgroup map[uint64]*Info
	byKey    map[Key]*Info
	byID     map[string]*Info // containerd id space, any namespace (CRI paths carry none)
	byMnt    map[uint32]*Info // running containers only: namespace inodes are reused
	byProc   map[event.ProcKey]*Info
	host     map[uint64]struct{} // cgroup ids whose path is not a container's
	deleted  map[Key]bool
	version  uint64
	changed  chan struct{}

	partial map[Key]time.Time // last time a partial container was asked about

	missMu sync.Mutex           // serialises the slow paths
	gone   map[uint64]time.Time // cgroups found gone: not waited for again (under missMu)

	stats struct {
		hits, misses, unresolved, procReads, reconnects, resyncs atomic.Uint64
	}
}

// New returns a Resolver over the given runtimes (WithSources). Run
// starts watching them; Attribute works before and without it (asking on
// misses only).
func New(opts ...Option) (*Resolver, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	r := &Resolver{
		o:        o,
		proc:     Proc{Root: o.procRoot},
		byCgroup: map[uint64]*Info{},
		byKey:    map[Key]*Info{},
		byID:     map[string]*Info{},
		byMnt:    map[uint32]*Info{},
		byProc:   map[event.ProcKey]*Info{},
		host:     map[uint64]struct{}{},
		deleted:  map[Key]bool{},
		changed:  make(chan struct{}),
		gone:     map[uint64]time.Time{},
		partial:  map[Key]time.Time{},
	}
	if o.cgroup2 != nil {
		r.cg = *o.cgroup2
	} else if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		r.cg = FindCgroup2(mi)
	}
	r.hostMnt = hostMountNS(r.proc)
	return r, nil
}

// hostMountNS is the host's mount namespace: PID 1's. Where PID 1's cannot be read (a PID 1 in
// another user namespace, as in some sandboxes and nested containers), the agent's own, when its
// cgroup is not surely a container's: the agent then runs on the host as far as it can see, and a
// process in its mount namespace is the host's, which is what /proc would say of each such
// process one at a time (three /proc reads per new process; 35% of the agent's CPU in an exec
// storm where every process took that path). 0 when neither can be told.
func hostMountNS(p Proc) uint32 {
	if mnt, err := p.NS(1, "mnt"); err == nil {
		return mnt
	}
	self, err := os.Readlink(filepath.Join(p.Root, "self")) // the agent's PID as that /proc sees it
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(self)
	if err != nil || pid <= 0 {
		return 0
	}
	pc, err := p.Cgroup(pid)
	if err != nil {
		return 0
	}
	// A Guess (/<namespace>/<id>, a shape host cgroups share: this project's CI sandbox has
	// memory:/process_api/<hex>) does not rule the host out.
	if ref, _ := pc.ContainerRef(); ref.IsContainer() && !ref.Guess {
		return 0
	}
	mnt, err := p.NS(pid, "mnt")
	if err != nil {
		return 0
	}
	return mnt
}

// Cgroup2 returns the cgroup v2 hierarchy the resolver uses.
func (r *Resolver) Cgroup2() Cgroup2 { return r.cg }

// rootCgroup is the id of the cgroup v2 root (kernfs gives the root
// directory inode 1).
const rootCgroup = 1

// Attribute fills e.Container with the container e happened in and
// returns its Info; nil (and a zero e.Container) means the host, or a
// container no runtime could name (counted in Stats.Unresolved).
func (r *Resolver) Attribute(e *event.Event) *Info {
	inf := r.lookup(e)
	if inf == nil {
		e.Container = event.Container{}
		return nil
	}
	e.Container = inf.Container
	return inf
}

func (r *Resolver) lookup(e *event.Event) *Info {
	id := e.CgroupID
	if id > rootCgroup {
		r.mu.RLock()
		inf, ok := r.byCgroup[id]
		_, host := r.host[id]
		r.mu.RUnlock()
		if ok && !inf.Partial {
			r.stats.hits.Add(1)
			return inf
		}
		if host {
			r.stats.hits.Add(1)
			return nil
		}
		return r.slowCgroup(e, inf)
	}
	// The root cgroup (or none): the mount namespace, then the process.
	mnt := e.Namespaces.Mnt
	pk := e.Process.Key()
	r.mu.RLock()
	inf, ok := r.byMnt[mnt]
	if !ok && pk.StartTime != 0 {
		inf, ok = r.byProc[pk]
	}
	r.mu.RUnlock()
	if ok {
		r.stats.hits.Add(1)
		return inf
	}
	if mnt != 0 && mnt == r.hostMnt {
		r.stats.hits.Add(1)
		return nil
	}
	return r.slowProc(e)
}

// slowCgroup resolves an unknown cgroup id.
func (r *Resolver) slowCgroup(e *event.Event, cached *Info) *Info {
	r.stats.misses.Add(1)
	r.missMu.Lock()
	defer r.missMu.Unlock()
	id := e.CgroupID
	r.mu.RLock()
	inf, ok := r.byCgroup[id]
	_, host := r.host[id]
	r.mu.RUnlock()
	if host {
		return nil
	}
	if ok && !inf.Partial {
		return inf
	}
	if ok && inf.Partial {
		r.mu.RLock()
		asked := r.partial[inf.key()]
		r.mu.RUnlock()
		if time.Since(asked) < partialRetry {
			return inf
		}
	}
	path, err := r.cg.Path(id)
	if err != nil {
		// The cgroup is gone (or this host has no v2 hierarchy): the
		// runtime's event stream may still be on its way with it.
		if _, seen := r.gone[id]; !seen && r.o.settle > 0 {
			deadline := time.Now().Add(r.o.settle)
			for time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				r.mu.RLock()
				inf, ok := r.byCgroup[id]
				r.mu.RUnlock()
				if ok {
					return inf
				}
			}
			if len(r.gone) >= r.o.maxProcs {
				clear(r.gone)
			}
			r.gone[id] = time.Now()
		}
		if inf := r.fromProc(e); inf != nil {
			return inf
		}
		if cached != nil {
			return cached
		}
		r.stats.unresolved.Add(1)
		return nil
	}
	ref := ParseCgroupPath(path)
	if !ref.IsContainer() {
		r.addHost(id)
		return nil
	}
	inf = r.resolveRef(ref, path)
	if inf == nil {
		if ref.Guess {
			r.addHost(id) // no runtime has it: a host cgroup shaped like /<ns>/<id>
		} else {
			r.stats.unresolved.Add(1)
		}
		return nil
	}
	if inf.CgroupID == 0 {
		c := *inf
		c.CgroupID = id
		inf = &c
	}
	r.mu.Lock()
	r.byCgroup[id] = inf
	r.mu.Unlock()
	return inf
}

// resolveRef finds the container a cgroup path names: known already, or
// asked from the runtime that owns the path's form. A container no
// runtime answers for is returned Partial (what the path says) unless the
// form is a Guess.
func (r *Resolver) resolveRef(ref CgroupRef, path string) *Info {
	r.mu.RLock()
	var inf *Info
	switch {
	case ref.Runtime == RuntimeDocker:
		inf = r.byKey[Key{Runtime: RuntimeDocker, ID: ref.ID}]
	case ref.Namespace != "":
		inf = r.byKey[Key{Runtime: RuntimeContainerd, Namespace: ref.Namespace, ID: ref.ID}]
	default:
		inf = r.byID[ref.ID]
	}
	r.mu.RUnlock()
	if inf != nil && !inf.Partial {
		return inf
	}
	for _, src := range r.o.sources {
		if !src.Owns(ref) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.o.askTimeout)
		got, err := src.Get(ctx, ref)
		cancel()
		if err == nil {
			if got.CgroupPath == "" {
				got.CgroupPath = path
			}
			return r.apply(Change{Op: OpUpsert, Info: got, At: time.Now()})
		}
		if !errors.Is(err, ErrNotFound) {
			r.o.log.Warn("container: runtime lookup failed", "runtime", src.Name(), "id", ref.ID, "err", err)
		}
	}
	if ref.Guess {
		return nil
	}
	p := &Info{PodUID: ref.PodUID, RuntimeNamespace: ref.Namespace, CgroupPath: path, Partial: true}
	p.ID, p.Runtime = ref.ID, ref.Runtime
	r.mu.Lock()
	if len(r.partial) >= r.o.maxContainers {
		clear(r.partial)
	}
	r.partial[p.key()] = time.Now()
	r.mu.Unlock()
	return p
}

// slowProc attributes an event of the root cgroup through /proc.
func (r *Resolver) slowProc(e *event.Event) *Info {
	r.stats.misses.Add(1)
	r.missMu.Lock()
	defer r.missMu.Unlock()
	inf := r.fromProc(e)
	if inf == nil && e.Process.StartTime == 0 {
		r.stats.unresolved.Add(1)
	}
	return inf
}

// procHost marks a process known to be the host's in byProc.
var procHost = &Info{}

// fromProc reads the event's process's cgroup from /proc, after checking
// that the process at that PID is the event's (same start time), and
// caches the answer under (PID, start time). Called with missMu held.
func (r *Resolver) fromProc(e *event.Event) *Info {
	pk := e.Process.Key()
	if pk.PID <= 0 {
		return nil
	}
	r.mu.RLock()
	inf, ok := r.byProc[pk]
	r.mu.RUnlock()
	if ok {
		if inf == procHost {
			return nil
		}
		return inf
	}
	r.stats.procReads.Add(1)
	ticks, err := r.proc.StartTicks(pk.PID)
	if err != nil || (pk.StartTime != 0 && !SameStart(pk.StartTime, ticks)) {
		// Gone, or the PID is another process's now: /proc cannot say.
		return nil
	}
	pc, err := r.proc.Cgroup(pk.PID)
	if err != nil {
		return nil
	}
	ref, path := pc.ContainerRef()
	var found *Info
	if ref.IsContainer() {
		found = r.resolveRef(ref, path)
	}
	// Read again: the process may have exited (and its PID been reused)
	// while its cgroup was read.
	if t2, err := r.proc.StartTicks(pk.PID); err != nil || t2 != ticks {
		return nil
	}
	if pk.StartTime == 0 {
		return found // no identity to cache it under
	}
	r.mu.Lock()
	if len(r.byProc) >= r.o.maxProcs {
		clear(r.byProc)
	}
	if found == nil {
		r.byProc[pk] = procHost
	} else {
		r.byProc[pk] = found
	}
	r.mu.Unlock()
	return found
}

func (r *Resolver) addHost(id uint64) {
	r.mu.Lock()
	if len(r.host) >= r.o.maxProcs {
		clear(r.host)
	}
	r.host[id] = struct{}{}
	r.mu.Unlock()
}

// alive says whether a container's init process still runs (same PID,
// same start time).
func (r *Resolver) alive(inf *Info) bool {
	if inf.PID <= 0 || inf.PIDStart == 0 {
		return false
	}
	t, err := r.proc.StartTicks(inf.PID)
	return err == nil && t == inf.PIDStart
}

// enrich adds what the host knows of a running container: its init
// process's start time, cgroup (path and v2 id) and namespaces. A PID
// whose process is gone means the container exited.
func (r *Resolver) enrich(inf *Info, at time.Time) {
	defer func() {
		// The runtime's cgroup path when /proc could not say (a process
		// that is gone already: its cgroup lives until the task is deleted).
		if inf.CgroupID == 0 && inf.CgroupPath != "" {
			if id, err := r.cg.ID(inf.CgroupPath); err == nil {
				inf.CgroupID = id
			}
		}
	}()
	if inf.PID <= 0 {
		return
	}
	ticks, err := r.proc.StartTicks(inf.PID)
	if err != nil {
		if inf.Exited.IsZero() {
			inf.Exited = at
		}
		return
	}
	inf.PIDStart = ticks
	origPath, origID := inf.CgroupPath, inf.CgroupID
	if pc, err := r.proc.Cgroup(inf.PID); err == nil {
		if ref, p := pc.ContainerRef(); ref.IsContainer() {
			inf.CgroupPath = p
		}
		if pc.Unified != "" && pc.Unified != "/" {
			if id, err := r.cg.ID(pc.Unified); err == nil {
				inf.CgroupID = id
			}
		}
	}
	if mnt, err := r.proc.NS(inf.PID, "mnt"); err == nil {
		inf.MntNS = mnt
	}
	if net, err := r.proc.NS(inf.PID, "net"); err == nil {
		inf.NetNS = net
	}
	// The PID must still be the same process: otherwise what was read is
	// another process's.
	if t2, err := r.proc.StartTicks(inf.PID); err != nil || t2 != ticks {
		inf.PIDStart, inf.MntNS, inf.NetNS = 0, 0, 0
		inf.CgroupPath, inf.CgroupID = origPath, origID
		if inf.Exited.IsZero() {
			inf.Exited = at
		}
	}
}

// apply records a change and returns the container's Info after it.
func (r *Resolver) apply(c Change) *Info {
	k := c.Info.key()
	var inf Info
	switch c.Op {
	case OpUpsert:
		inf = c.Info
		r.mu.RLock()
		old := r.byKey[k]
		r.mu.RUnlock()
		// A source's PID 0 says no task runs, but a re-list may be older
		// than a start event applied already: the host decides (is the
		// known init process still the same process?).
		if old != nil && (inf.PID == 0 || inf.PID == old.PID) {
			exitedNow := inf.PID == 0 && old.Running() && !r.alive(old)
			// Host-side facts of the same task carry over.
			inf.PID = old.PID
			inf.PIDStart, inf.MntNS, inf.NetNS = old.PIDStart, old.MntNS, old.NetNS
			if inf.CgroupID == 0 {
				inf.CgroupID = old.CgroupID
			}
			if old.CgroupPath != "" {
				inf.CgroupPath = old.CgroupPath
			}
			if inf.Started.IsZero() {
				inf.Started = old.Started
			}
			inf.Exited = old.Exited
			if exitedNow {
				inf.Exited = c.At
			}
			if inf.Partial && !old.Partial {
				return old
			}
		}
		if inf.PIDStart == 0 || inf.CgroupID == 0 {
			r.enrich(&inf, c.At)
		}
	case OpExited, OpDeleted:
		r.mu.RLock()
		old := r.byKey[k]
		r.mu.RUnlock()
		if old == nil {
			if c.Op == OpDeleted {
				r.mu.Lock()
				delete(r.deleted, k)
				r.mu.Unlock()
			}
			return nil
		}
		inf = *old
		if inf.Exited.IsZero() {
			inf.Exited = c.At
		}
	}
	p := &inf
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.byKey[k]
	r.byKey[k] = p
	if k.Runtime == RuntimeContainerd {
		r.byID[k.ID] = p
	}
	if p.CgroupID != 0 {
		r.byCgroup[p.CgroupID] = p
		delete(r.host, p.CgroupID)
	}
	if old != nil && old.CgroupID != 0 && old.CgroupID != p.CgroupID {
		// A restarted task in a new cgroup: the old one's events still
		// belong to this container.
		r.byCgroup[old.CgroupID] = p
	}
	if old != nil && old.MntNS != 0 && r.byMnt[old.MntNS] == old {
		delete(r.byMnt, old.MntNS)
	}
	if p.MntNS != 0 && p.MntNS != r.hostMnt && p.Running() {
		r.byMnt[p.MntNS] = p
	}
	if c.Op == OpDeleted {
		r.deleted[k] = true
	} else if c.Op == OpUpsert {
		delete(r.deleted, k)
	}
	if old == nil || inventoryChanged(old, p) || c.Op == OpDeleted {
		r.bumpLocked()
	}
	r.evictLocked()
	return p
}

// inventoryChanged says whether an update changes what Inventory shows.
func inventoryChanged(a, b *Info) bool {
	return a.Running() != b.Running() || a.Image != b.Image || a.ImageDigest != b.ImageDigest ||
		a.Name != b.Name || a.PID != b.PID || a.Pod != b.Pod
}

func (r *Resolver) bumpLocked() {
	r.version++
	close(r.changed)
	r.changed = make(chan struct{})
}

// evictLocked keeps the container maps under their bound: exited
// containers go first (oldest exit first), then the oldest created.
func (r *Resolver) evictLocked() {
	over := len(r.byKey) - r.o.maxContainers
	if over <= 0 {
		return
	}
	all := make([]*Info, 0, len(r.byKey))
	for _, inf := range r.byKey {
		all = append(all, inf)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Exited.IsZero() != b.Exited.IsZero() {
			return !a.Exited.IsZero()
		}
		if !a.Exited.IsZero() {
			return a.Exited.Before(b.Exited)
		}
		return a.Created.Before(b.Created)
	})
	for _, inf := range all[:over] {
		r.forgetLocked(inf)
	}
}

// forgetLocked removes a container from every map.
func (r *Resolver) forgetLocked(inf *Info) {
	k := inf.key()
	if r.byKey[k] == inf {
		delete(r.byKey, k)
	}
	if r.byID[k.ID] == inf {
		delete(r.byID, k.ID)
	}
	for id, v := range r.byCgroup {
		if v == inf || v.key() == k {
			delete(r.byCgroup, id)
		}
	}
	if inf.MntNS != 0 && r.byMnt[inf.MntNS] == inf {
		delete(r.byMnt, inf.MntNS)
	}
	for pk, v := range r.byProc {
		if v == inf {
			delete(r.byProc, pk)
		}
	}
	delete(r.deleted, k)
	delete(r.partial, k)
}

// gc forgets containers that exited more than the grace period ago.
func (r *Resolver) gc(now time.Time) {
	r.missMu.Lock()
	defer r.missMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inf := range r.byKey {
		if !inf.Exited.IsZero() && now.Sub(inf.Exited) > r.o.grace {
			r.forgetLocked(inf)
		}
	}
	for id, v := range r.byCgroup {
		// Partial entries (no key in byKey) age out the same way.
		if v.Partial && r.byKey[v.key()] != v {
			if t, ok := r.partial[v.key()]; !ok || now.Sub(t) > r.o.grace {
				delete(r.byCgroup, id)
			}
		}
	}
	for id, t := range r.gone {
		if now.Sub(t) > r.o.grace {
			delete(r.gone, id)
		}
	}
}

// resync lists a runtime's containers and reconciles: new and changed
// ones are recorded, running ones it no longer has are marked exited.
func (r *Resolver) resync(ctx context.Context, src Source) error {
	r.stats.resyncs.Add(1)
	list, err := src.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	seen := map[Key]bool{}
	for i := range list {
		inf := list[i]
		seen[inf.key()] = true
		r.apply(Change{Op: OpUpsert, Info: inf, At: now})
	}
	r.mu.RLock()
	var stale []Info
	for k, inf := range r.byKey {
		if !seen[k] && inf.Exited.IsZero() && ownsKey(src, k) {
			stale = append(stale, *inf)
		}
	}
	r.mu.RUnlock()
	for _, inf := range stale {
		r.apply(Change{Op: OpDeleted, Info: inf, At: now})
	}
	return nil
}

// ownsKey says whether a container key is a source's (by runtime name).
func ownsKey(src Source, k Key) bool { return src.Name() == k.Runtime }

// Run watches every source until ctx ends: it subscribes to the event
// stream, re-lists (so nothing between connects is missed), applies the
// events, reconnects with back-off when the runtime goes away (a restart)
// and forgets containers after their grace period. It returns ctx's error.
func (r *Resolver) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, src := range r.o.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.watch(ctx, src)
		}()
	}
	tick := time.NewTicker(max(r.o.grace/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case now := <-tick.C:
			r.gc(now)
		}
	}
}

func (r *Resolver) watch(ctx context.Context, src Source) {
	backoff := 100 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		connected := false
		wctx, cancel := context.WithCancel(ctx)
		err := src.Watch(wctx, func() {
			connected = true
			if err := r.resync(wctx, src); err != nil {
				r.o.log.Warn("container: re-list failed", "runtime", src.Name(), "err", err)
			}
			go r.periodic(wctx, src)
		}, func(c Change) { r.apply(c) })
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.stats.reconnects.Add(1)
		if connected {
			backoff = 100 * time.Millisecond
			failing = false
		}
		if !failing {
			r.o.log.Warn("container: runtime event stream lost; reconnecting", "runtime", src.Name(), "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// periodic re-lists src while its connection lasts (ctx): once shortly
// after connecting (the subscription may register on the runtime's side
// a moment after the call returned, and a change in that moment would be
// missed), then every resync period.
func (r *Resolver) periodic(ctx context.Context, src Source) {
	wait := 2 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := r.resync(ctx, src); err != nil && ctx.Err() == nil {
			r.o.log.Warn("container: re-list failed", "runtime", src.Name(), "err", err)
		}
		if r.o.resync <= 0 {
			return
		}
		wait = r.o.resync
	}
}

// Get returns a known container by key (nil when unknown).
func (r *Resolver) Get(k Key) *Info {
	if k.Runtime == RuntimeCRI {
		k.Runtime = RuntimeContainerd
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byKey[k]
}

// Inventory is what runs on the node: the containers whose task runs,
// and a version that grows with every change.
type Inventory struct {
	Version    uint64
	Containers []Info // sorted by runtime, namespace, id
}

// Images lists the distinct images of the inventory's containers
// (reference and digest), sorted.
func (inv Inventory) Images() []ImageRef {
	seen := map[ImageRef]int{}
	for _, c := range inv.Containers {
		seen[ImageRef{Ref: c.Image, Digest: c.ImageDigest}]++
	}
	out := make([]ImageRef, 0, len(seen))
	for ir, n := range seen {
		ir.Containers = n
		out = append(out, ir)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ref != out[j].Ref {
			return out[i].Ref < out[j].Ref
		}
		return out[i].Digest < out[j].Digest
	})
	return out
}

// ImageRef is an image some containers on the node run.
type ImageRef struct {
	Ref        string `json:"ref"`
	Digest     string `json:"digest,omitempty"`
	Containers int    `json:"containers"`
}

// Inventory returns the running containers and a channel that is closed
// at the next change (wait on it, then call Inventory again).
func (r *Resolver) Inventory() (Inventory, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	inv := Inventory{Version: r.version}
	for k, inf := range r.byKey {
		if inf.Running() && !r.deleted[k] && !inf.Partial {
			inv.Containers = append(inv.Containers, *inf)
		}
	}
	sort.Slice(inv.Containers, func(i, j int) bool {
		a, b := inv.Containers[i].key(), inv.Containers[j].key()
		if a.Runtime != b.Runtime {
			return a.Runtime < b.Runtime
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.ID < b.ID
	})
	return inv, r.changed
}

// Stats are the resolver's counters.
type Stats struct {
	Hits       uint64 // lookups answered from the maps
	Misses     uint64 // lookups that had to resolve (cgroup path, /proc, runtime)
	Unresolved uint64 // container events no runtime could name (attributed to nobody)
	ProcReads  uint64 // /proc fallback reads
	Reconnects uint64 // event streams lost and reconnected
	Resyncs    uint64 // full re-lists
	Containers int    // containers kept (running and exited within grace)
	Cgroups    int    // cgroup ids mapped to containers
	HostCgroup int    // cgroup ids known to be the host's
}

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return Stats{
		Hits: r.stats.hits.Load(), Misses: r.stats.misses.Load(), Unresolved: r.stats.unresolved.Load(),
		ProcReads: r.stats.procReads.Load(), Reconnects: r.stats.reconnects.Load(), Resyncs: r.stats.resyncs.Load(),
		Containers: len(r.byKey), Cgroups: len(r.byCgroup), HostCgroup: len(r.host),
	}
}

// String describes an Info briefly (logs, test failures).
func (i *Info) String() string {
	if i == nil {
		return "host"
	}
	return fmt.Sprintf("%s %s/%s (%s, image %s %s, pod %s/%s, pid %d, cgroup %d %s)",
		i.Runtime, i.RuntimeNamespace, i.ID, i.Name, i.Image, i.ImageDigest, i.Namespace, i.Pod, i.PID, i.CgroupID, i.CgroupPath)
}
