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
// WithEcosystems and rebuilds the database in dbDir from them. Requests are
// conditional (If-None-Match / If-Modified-Since from the last update's
// validators); when every ecosystem answers 304 Not Modified the database is
// kept and Result.Updated is false. The database then holds exactly the
// ecosystems named. Downloads and the new database are written beside the
// old ones and renamed into place only when complete, so a failure at any
// point (network, corrupt zip, full disk) leaves the old database usable.
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
	} else if !errors.Is(err, ErrNoDB) && !errors.Is(err, ErrSchema) {
		// A database that cannot be read is rebuilt from scratch.
		o.log.Warn("existing vulnerability database unreadable; rebuilding", "err", err)
	}
	var (
		inputs  []input
		pending []string // downloaded temp files, moved into the cache on success
		changed = prev == nil || !sameEcosystems(prev, o.ecosystems)
	)
	defer func() {
		for _, p := range pending {
			if p != "" {
				os.Remove(p)
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
		src, tmp, err := download(ctx, o, eco, cached, last)
		if err != nil {
			return nil, fmt.Errorf("vulndb: update %s: %w", eco, err)
		}
		if tmp == "" {
			inputs = append(inputs, input{path: cached, src: src})
			pending = append(pending, "")
			continue
		}
		changed = true
		inputs = append(inputs, input{path: tmp, src: src})
		pending = append(pending, tmp)
	}
	if !changed {
		o.log.Info("vulnerability database is up to date", "dir", dbDir)
		return &Result{Records: prev.Records, Ecosystems: prev.Ecosystems, Path: filepath.Join(dbDir, FileName)}, nil
	}
	moveZips := func() error {
		for i, p := range pending {
			if p == "" {
				continue
			}
			dst := filepath.Join(dbDir, cacheDir, o.ecosystems[i], "all.zip")
			if err := os.Rename(p, dst); err != nil {
				return fmt.Errorf("vulndb: update: cache %s: %w", dst, err)
			}
			pending[i] = ""
		}
		return nil
	}
	res, err := build(ctx, dbDir, o, inputs, moveZips)
	if err != nil {
		return nil, fmt.Errorf("vulndb: update: %w", err)
	}
	return res, nil
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

// download fetches one ecosystem's zip. It returns the new Source and the
// temp file holding the download, or an empty temp name when the server
// answered 304 and the cached zip is still current.
func download(ctx context.Context, o *options, eco, cached string, last *Source) (*Source, string, error) {
	u := o.baseURL + "/" + url.PathEscape(eco) + "/all.zip"
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
	if resp.ContentLength > o.maxDownload {
		return nil, "", fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrLimit, u, resp.ContentLength, o.maxDownload)
	}
	dir := filepath.Dir(cached)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	f, err := os.CreateTemp(dir, ".all-*.zip.tmp")
	if err != nil {
		return nil, "", err
	}
	tmp := f.Name()
	var body io.Reader = resp.Body
	if o.progress != nil {
		body = &progressReader{r: body, fn: o.progress}
	}
	n, err := io.Copy(f, io.LimitReader(body, o.maxDownload+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > o.maxDownload {
		err = fmt.Errorf("%w: %s is over %d bytes", ErrLimit, u, o.maxDownload)
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("GET %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, "", fmt.Errorf("download %s: %w", u, err)
	}
	return &Source{
		Ecosystem:    eco,
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
