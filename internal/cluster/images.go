package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
	"mamori/internal/policy"
)

// Image data cache defaults, each with its reason.
const (
	// DefaultImageTTL: how long the server's answer about an image is used
	// without asking again. A rescan or a re-match reaches admission within
	// it; at 500 pods/s of a few images it saves all but one lookup a minute.
	DefaultImageTTL = time.Minute
	// DefaultImageStale: how long an answer older than the TTL is still used
	// when the server cannot be reached (decisions from the cache, before
	// the failure policy).
	DefaultImageStale = 24 * time.Hour
	// maxImageEntries bounds the cache (an entry is the findings of one
	// image: tens of KiB at most).
	maxImageEntries = 4096
	// lookupBudget bounds one lookup when the webhook's deadline is far.
	lookupBudget = 3 * time.Second
)

// imageEntry is what the server said of one image reference.
type imageEntry struct {
	found   bool
	digest  string
	scanID  string
	result  *model.Result
	fetched time.Time
	// scanError is set for an image whose inline scan failed (kept the TTL,
	// so a failing registry is not asked again for every pod).
	scanError string
}

// imageData is what admission knows of the images of one request.
type imageData struct {
	scans map[string]policy.ImageScan
	// keys identify the data each decision used (ref, digest, scan ID), for
	// the decision cache.
	keys []string
	// unresolved are the references the server could not be asked about
	// and of which nothing is cached.
	unresolved []string
	// stale is set when an answer past its TTL was used (server away).
	stale bool
	// db is the vulnerability database the findings were matched against.
	db time.Time
}

// imageLookup is the server call (client.LookupImages).
type imageLookup func(ctx context.Context, refs []string) (api.ImageLookupResult, error)

// images resolves image references to their scan data, through a cache.
type images struct {
	lookup imageLookup
	ttl    time.Duration
	stale  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*imageEntry
	db      time.Time
}

func newImages(lookup imageLookup, ttl, stale time.Duration, now func() time.Time) *images {
	if ttl <= 0 {
		ttl = DefaultImageTTL
	}
	if stale <= 0 {
		stale = DefaultImageStale
	}
	return &images{lookup: lookup, ttl: ttl, stale: stale, now: now, entries: map[string]*imageEntry{}}
}

// resolve returns the scan data of refs: fresh cache entries, then one
// lookup for the rest; when the lookup fails, entries within the stale
// window, and the rest unresolved.
func (im *images) resolve(ctx context.Context, refs []string) imageData {
	now := im.now()
	out := imageData{scans: make(map[string]policy.ImageScan, len(refs))}
	var missing []string
	im.mu.Lock()
	out.db = im.db
	for _, r := range refs {
		if e, ok := im.entries[r]; ok && now.Sub(e.fetched) < im.ttl {
			out.add(r, e)
			continue
		}
		if !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	im.mu.Unlock()
	if len(missing) == 0 {
		return out
	}
	lctx, cancel := context.WithTimeout(ctx, lookupBudget)
	res, err := im.lookup(lctx, missing)
	cancel()
	im.mu.Lock()
	defer im.mu.Unlock()
	if err != nil {
		for _, r := range missing {
			if e, ok := im.entries[r]; ok && now.Sub(e.fetched) < im.stale {
				out.add(r, e)
				out.stale = true
				continue
			}
			out.unresolved = append(out.unresolved, r)
		}
		return out
	}
	if !res.DBBuiltAt.Equal(im.db) {
		// Findings were re-matched: every cached answer is stale.
		clear(im.entries)
		im.db = res.DBBuiltAt
	}
	out.db = im.db
	for i, r := range missing {
		d := res.Images[i]
		e := &imageEntry{found: d.Found, digest: d.Digest, scanID: d.ScanID, result: d.Result, fetched: now}
		if d.Found && d.Result == nil {
			e.found = false
		}
		im.put(r, e)
		out.add(r, e)
	}
	return out
}

func (d *imageData) add(ref string, e *imageEntry) {
	switch {
	case e.found:
		d.scans[ref] = policy.ImageScan{Result: e.result}
		d.keys = append(d.keys, ref+"="+e.digest+"/"+e.scanID)
	case e.scanError != "":
		d.scans[ref] = policy.ImageScan{ScanError: e.scanError}
		d.keys = append(d.keys, ref+"=error")
	default:
		d.keys = append(d.keys, ref+"=unknown")
	}
}

// put stores an entry, dropping the oldest quarter when full.
func (im *images) put(ref string, e *imageEntry) {
	if len(im.entries) >= maxImageEntries {
		type aged struct {
			ref string
			at  time.Time
		}
		all := make([]aged, 0, len(im.entries))
		for r, x := range im.entries {
			all = append(all, aged{r, x.fetched})
		}
		slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
		for _, a := range all[:len(all)/4] {
			delete(im.entries, a.ref)
		}
	}
	im.entries[ref] = e
}

// scanned records the outcome of an inline scan of ref.
func (im *images) scanned(ref string, d *api.ImageScanData, scanErr error) {
	e := &imageEntry{fetched: im.now()}
	if scanErr != nil {
		e.scanError = scanErr.Error()
	} else if d != nil && d.Found && d.Result != nil {
		e.found, e.digest, e.scanID, e.result = true, d.Digest, d.ScanID, d.Result
	} else {
		e.scanError = fmt.Sprintf("the server did not return the scan of %s", ref)
	}
	im.mu.Lock()
	im.put(ref, e)
	im.mu.Unlock()
}
