package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
)

// cacheDir holds the last downloaded zip of each ecosystem
// (<dbDir>/cache/<Ecosystem>/all.zip), so that an update where only some
// ecosystems changed rebuilds from the unchanged zips without fetching them.
const cacheDir = "cache"

// Update downloads <base>/<Ecosystem>/all.zip for each ecosystem named with
// WithEcosystems, and the KEV catalogue and EPSS scores when WithKEVURL and
// WithEPSSURL name them, and rebuilds the database in dbDir from them.
// Requests are conditional (If-None-Match / If-Modified-Since from the last
// update's validators); when every source answers 304 Not Modified the
// database is kept and Result.Updated is false. The database then holds
// exactly the ecosystems and feeds named. Downloads and the new database are
// written beside the old ones and renamed into place only when complete, so
// a failure at any point (network, corrupt zip, malformed feed, full disk)
// leaves the old database usable: the OSV data, KEV and EPSS are swapped in
// together or not at all.
func Update(ctx context.Context, dbDir string, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(o.ecosystems) == 0 {
		return nil, errors.New("vulndb: update: no ecosystems named (e.g. Debian, Alpine, npm, PyPI, Go)")
	}
	var prev *Metadata
	if md, err := Info(dbDir); err == nil {
		prev = md
	} else if errors.Is(err, ErrSchema) {
		o.log.Info("vulnerability database has another schema version; rebuilding", "err", err)
	} else if !errors.Is(err, ErrNoDB) {
		// A database that cannot be read is rebuilt from scratch.
		o.log.Warn("existing vulnerability database unreadable; rebuilding", "err", err)
	}
	var (
		inputs  []input
		pending []pendingFile // downloaded temp files, moved into the cache on success
		changed = prev == nil || !sameEcosystems(prev, o.ecosystems) || !sameFeeds(prev, o)
	)
	defer func() {
		for _, p := range pending {
			if p.tmp != "" {
				os.Remove(p.tmp)
			}
		}
	}()
	for _, eco := range o.ecosystems {
		var last *Source
		if prev != nil {
			for i := range prev.Sources {
				if prev.Sources[i].Ecosystem == eco {
					last = &prev.Sources[i]
				}
			}
		}
		cached := filepath.Join(dbDir, cacheDir, eco, "all.zip")
		u := o.baseURL + "/" + url.PathEscape(eco) + "/all.zip"
		src, tmp, err := download(ctx, o, u, cached, last, o.maxDownload)
		if err != nil {
			return nil, fmt.Errorf("vulndb: update %s: %w", eco, err)
		}
		src.Ecosystem = eco
		if tmp == "" {
			inputs = append(inputs, input{path: cached, src: src})
			continue
		}
		changed = true
		inputs = append(inputs, input{path: tmp, src: src})
		pending = append(pending, pendingFile{tmp: tmp, dst: cached})
	}
	// The feeds: the path each is read from (the download or the cache)
	// and the Source it is recorded as.
	fetchFeed := func(name, u string, last *FeedInfo, cached string, max int64) (string, Source, error) {
		if u == "" {
			return "", Source{}, nil
		}
		var lastSrc *Source
		if last != nil && last.Source.URL == u {
			lastSrc = &last.Source
		}
		src, tmp, err := download(ctx, o, u, cached, lastSrc, max)
		if err != nil {
			return "", Source{}, fmt.Errorf("vulndb: update %s: %w", name, err)
		}
		if tmp == "" {
			return cached, *src, nil
		}
		changed = true
		pending = append(pending, pendingFile{tmp: tmp, dst: cached})
		return tmp, *src, nil
	}
	var prevKEV, prevEPSS *FeedInfo
	if prev != nil {
		prevKEV, prevEPSS = prev.KEV, prev.EPSS
	}
	kevPath, kevSrc, err := fetchFeed("KEV", o.kevURL, prevKEV, filepath.Join(dbDir, cacheDir, "kev", KEVFileName), MaxKEVBytes)
	if err != nil {
		return nil, err
	}
	epssPath, epssSrc, err := fetchFeed("EPSS", o.epssURL, prevEPSS, filepath.Join(dbDir, cacheDir, "epss", "epss_scores.csv.gz"), MaxEPSSBytes)
	if err != nil {
		return nil, err
	}
	if !changed {
		o.log.Info("vulnerability database is up to date", "dir", dbDir)
		return &Result{Records: prev.Records, Ecosystems: prev.Ecosystems, KEV: prev.KEV, EPSS: prev.EPSS, Path: filepath.Join(dbDir, FileName)}, nil
	}
	fd, err := loadFeeds(kevPath, kevSrc, epssPath, epssSrc)
	if err != nil {
		return nil, fmt.Errorf("vulndb: update: %w", err)
	}
	moveDownloads := func() error {
		for i, p := range pending {
			if p.tmp == "" {
				continue
			}
			if err := os.Rename(p.tmp, p.dst); err != nil {
				return fmt.Errorf("vulndb: update: cache %s: %w", p.dst, err)
			}
			pending[i].tmp = ""
		}
		return nil
	}
	res, err := build(ctx, dbDir, o, inputs, fd, moveDownloads)
	if err != nil {
		return nil, fmt.Errorf("vulndb: update: %w", err)
	}
	return res, nil
}

// pendingFile is a download waiting to replace its cached copy.
type pendingFile struct{ tmp, dst string }

// sameFeeds reports whether the database was built with the feeds (by URL)
// this update asks for: adding or dropping one is a change.
func sameFeeds(md *Metadata, o *options) bool {
	same := func(f *FeedInfo, u string) bool {
		if f == nil {
			return u == ""
		}
		return f.Source.URL == u
	}
	return same(md.KEV, o.kevURL) && same(md.EPSS, o.epssURL)
}

func sameEcosystems(md *Metadata, ecos []string) bool {
	var have []string
	for _, s := range md.Sources {
		if s.Ecosystem == "" {
			return false // built by an import: an update replaces it
		}
		have = append(have, s.Ecosystem)
	}
	want := slices.Clone(ecos)
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}

// download fetches one file (an ecosystem's zip, a feed) of at most max
// bytes. It returns the new Source and the temp file holding the download,
// or an empty temp name when the server answered 304 and the cached copy is
// still current.
func download(ctx context.Context, o *options, u, cached string, last *Source, max int64) (*Source, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	_, statErr := os.Stat(cached)
	haveCache := statErr == nil
	if last != nil && haveCache {
		if last.ETag != "" {
			req.Header.Set("If-None-Match", last.ETag)
		}
		if last.LastModified != "" {
			req.Header.Set("If-Modified-Since", last.LastModified)
		}
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	now := o.now().UTC()
	switch {
	case resp.StatusCode == http.StatusNotModified && last != nil && haveCache:
		src := *last
		src.FetchedAt = now
		return &src, "", nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if max <= 0 || max > o.maxDownload {
		max = o.maxDownload
	}
	if resp.ContentLength > max {
		return nil, "", fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrLimit, u, resp.ContentLength, max)
	}
	dir := filepath.Dir(cached)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	f, err := os.CreateTemp(dir, ".download-*.tmp")
	if err != nil {
		return nil, "", err
	}
	tmp := f.Name()
	var body io.Reader = resp.Body
	if o.progress != nil {
		body = &progressReader{r: body, fn: o.progress}
	}
	n, err := io.Copy(f, io.LimitReader(body, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > max {
		err = fmt.Errorf("%w: %s is over %d bytes", ErrLimit, u, max)
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("GET %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, "", fmt.Errorf("download %s: %w", u, err)
	}
	return &Source{
		URL:          u,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		FetchedAt:    now,
	}, tmp, nil
}

// progressReader reports what it reads.
type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}
