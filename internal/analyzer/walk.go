package analyzer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"mamori/internal/model"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Progress is told how many uncompressed bytes a walk has read. It must be
// cheap and safe for concurrent use.
type Progress func(n int64)

// file is one file waiting for analysis.
type file struct {
	path  string
	info  fs.FileInfo
	need  []Analyzer // analyzers that want it
	metas []Analyzer // analyzers that want metadata only
	data  []byte     // in-memory content, or
	spill *os.File   // spilled content
	size  int64
	// seq is the entry's 1-based position in its tar stream: of several
	// entries for one path, the last one is the file (see supersede).
	seq int
}

func (f *file) release() {
	if f.spill != nil {
		name := f.spill.Name()
		_ = f.spill.Close() // read-only use; the remove below is what matters
		_ = os.Remove(name)
		f.spill = nil
	}
	f.data = nil
}

// dispatcher runs analyzers on files with a bounded pool of workers and a
// bounded number of bytes in flight.
type dispatcher struct {
	set    *Set
	lr     *LayerResult
	mu     sync.Mutex
	jobs   chan *file
	budget chan struct{} // one token per MiB in flight
	g      *errgroup.Group
	ctx    context.Context
	// latest maps each path submitted for analysis (or recorded as a
	// wanted hard link) to the entry that owns it now; guarded by mu.
	latest map[string]int
}

func (s *Set) newDispatcher(ctx context.Context, lr *LayerResult) *dispatcher {
	g, gctx := errgroup.WithContext(ctx)
	d := &dispatcher{
		set:    s,
		lr:     lr,
		jobs:   make(chan *file, s.opts.workers),
		budget: make(chan struct{}, int(s.opts.maxInFlight>>20)+1),
		g:      g,
		ctx:    gctx,
		latest: map[string]int{},
	}
	for i := 0; i < s.opts.workers; i++ {
		g.Go(func() error {
			for f := range d.jobs {
				d.analyze(f)
			}
			return nil
		})
	}
	return d
}

func tokensFor(n int64) int { return int(n>>20) + 1 }

// acquire reserves room for n bytes in memory, waiting while the budget is used.
func (d *dispatcher) acquire(n int64) error {
	t := tokensFor(n)
	if t > cap(d.budget) {
		t = cap(d.budget)
	}
	for i := 0; i < t; i++ {
		select {
		case d.budget <- struct{}{}:
		case <-d.ctx.Done():
			for ; i > 0; i-- {
				<-d.budget
			}
			return d.ctx.Err()
		}
	}
	return nil
}

func (d *dispatcher) releaseBudget(n int64) {
	t := tokensFor(n)
	if t > cap(d.budget) {
		t = cap(d.budget)
	}
	for i := 0; i < t; i++ {
		<-d.budget
	}
}

func (d *dispatcher) submit(f *file) error {
	select {
	case d.jobs <- f:
		return nil
	case <-d.ctx.Done():
		f.release()
		return d.ctx.Err()
	}
}

// finish waits for the workers and returns the first error.
func (d *dispatcher) finish() error {
	close(d.jobs)
	return d.g.Wait()
}

// supersede applies a tar stream's rule that the last entry for a path is
// the file, as `tar -x` and every container runtime leave it: whatever an
// earlier entry of the same layer put at p (results, a pending analysis, a
// wanted hard link) is dropped. A layer writing one package.json 10,000
// times thus reports one package, from the last copy, without holding
// more than one entry per path.
func (d *dispatcher) supersede(p string) {
	d.mu.Lock()
	if _, ok := d.latest[p]; ok {
		delete(d.latest, p)
		delete(d.lr.Files, p)
		d.lr.dropHardLink(p)
	}
	d.mu.Unlock()
}

// track records that entry seq owns p and will be analysed.
func (d *dispatcher) track(p string, seq int) {
	d.mu.Lock()
	d.latest[p] = seq
	d.mu.Unlock()
}

// current reports whether f is still the entry that owns its path; the
// caller holds mu.
func (d *dispatcher) current(f *file) bool {
	seq, ok := d.latest[f.path]
	return ok && seq == f.seq
}

func (d *dispatcher) warnf(format string, args ...any) {
	d.mu.Lock()
	d.lr.warn(fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *dispatcher) analyze(f *file) {
	defer func() {
		if f.data != nil {
			d.releaseBudget(int64(len(f.data)))
		}
		f.release()
	}()
	d.mu.Lock()
	stale := !d.current(f)
	d.mu.Unlock()
	if stale {
		return // a later entry of the layer replaced this file before it was analysed
	}
	var results []*Result
	run := func(a Analyzer, content *io.SectionReader) {
		// An analyzer bug on hostile input must not take the whole scan down.
		defer func() {
			if r := recover(); r != nil {
				d.warnf("%s: analyzer %s panicked: %v", f.path, a.Name(), r)
			}
		}()
		in := Input{Path: f.path, Info: f.info, Content: content, Layer: d.lr.DiffID}
		res, err := a.Analyze(d.ctx, in)
		if err != nil && d.ctx.Err() == nil {
			d.warnf("%s: %s: %v", f.path, a.Name(), err)
		}
		if res != nil {
			for _, w := range res.Warnings {
				d.warnf("%s: %s: %s", f.path, a.Name(), w)
			}
			res.Warnings = nil
		}
		// A partial result (an archive scanned but for one member) is kept
		// beside its warning.
		if !res.Empty() {
			results = append(results, res)
		}
	}
	for _, a := range f.metas {
		run(a, nil)
	}
	for _, a := range f.need {
		if d.ctx.Err() != nil {
			return
		}
		var ra io.ReaderAt
		if f.spill != nil {
			ra = f.spill
		} else {
			ra = bytes.NewReader(f.data)
		}
		run(a, io.NewSectionReader(ra, 0, f.size))
	}
	if len(results) == 0 {
		return
	}
	for _, r := range results {
		if (len(r.Findings) > 0 || (len(r.Packages) > 0 && len(r.Owned) == 0)) && len(f.need) > 0 {
			// A file with findings (or a language package's manifest) may be
			// one an OS package installed: keep its digests so that the merge
			// can tell an unmodified packaged file from one changed after
			// install. Few files have either; package databases (Owned) are
			// the lists themselves and need none.
			dg, err := fileDigests(f)
			if err != nil {
				d.warnf("%s: digest: %v", f.path, err)
			}
			results[0].Digests = dg
			break
		}
	}
	d.mu.Lock()
	if d.current(f) {
		for _, r := range results {
			d.lr.add(f.path, r)
		}
	}
	d.mu.Unlock()
}

// plan asks every analyzer what it needs of a file.
func (s *Set) plan(p string, info fs.FileInfo) (content, meta []Analyzer) {
	for _, a := range s.analyzers {
		switch a.Required(p, info) {
		case Content:
			content = append(content, a)
		case Metadata:
			meta = append(meta, a)
		}
	}
	return content, meta
}

// CleanTarPath turns a tar entry name into a clean root-relative path. It
// refuses names with ".." elements (they would point outside the tree) and
// names that are empty after cleaning. Absolute names are taken relative to
// the root, as container runtimes apply them.
func CleanTarPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("analyzer: NUL byte in entry name %q", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("analyzer: entry name %q has a \"..\" element", name)
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	if p == "" || p == "." {
		return "", nil
	}
	return p, nil
}

func (s *Set) skipped(p string) bool {
	for _, d := range s.opts.skipDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// WalkLayer reads one layer's uncompressed tar stream once and runs the
// set's analyzers on the files that they ask for. Per-file analyzer errors
// become warnings; a broken tar stream (truncated, corrupt) is an error.
func (s *Set) WalkLayer(ctx context.Context, diffID string, r io.Reader, progress Progress) (*LayerResult, error) {
	lr := &LayerResult{DiffID: diffID}
	d := s.newDispatcher(ctx, lr)
	walkErr := s.walkTar(d, tar.NewReader(r), lr, progress)
	finErr := d.finish()
	if walkErr != nil {
		return nil, walkErr
	}
	if finErr != nil {
		return nil, finErr
	}
	sortResult(lr)
	return lr, nil
}

func (s *Set) walkTar(d *dispatcher, tr *tar.Reader, lr *LayerResult, progress Progress) error {
	for {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer %s: entry %d: %w", shortID(lr.DiffID), lr.Entries+1, err)
		}
		lr.Entries++
		if lr.Entries > s.opts.maxEntries {
			return fmt.Errorf("read layer %s: %w (more than %d)", shortID(lr.DiffID), ErrTooManyEntries, s.opts.maxEntries)
		}
		p, err := CleanTarPath(hdr.Name)
		if err != nil {
			lr.warn(fmt.Sprintf("skipped entry: %v", err))
			continue
		}
		if p == "" || s.skipped(p) {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if strings.HasPrefix(base, whiteoutPrefix) {
			// A whiteout hides lower layers only, never an entry of its own
			// layer (OCI image spec, "Whiteouts").
			if base == whiteoutOpaque {
				lr.OpaqueDirs = append(lr.OpaqueDirs, dir)
			} else if target := base[len(whiteoutPrefix):]; target != "" && target != "." && target != ".." {
				lr.Whiteouts = append(lr.Whiteouts, path.Join(dir, target))
			}
			continue
		}
		seq := lr.Entries
		d.supersede(p)
		if hdr.Typeflag == tar.TypeLink {
			if s.noteHardLink(lr, p, hdr, seq) {
				d.track(p, seq)
			}
			continue
		}
		// archive/tar turns old TypeRegA entries into TypeReg.
		if hdr.Typeflag != tar.TypeReg {
			// Directories, symbolic links, devices and fifos carry no content.
			continue
		}
		if hdr.Size < 0 {
			lr.warn(fmt.Sprintf("%s: negative size", p))
			continue
		}
		info := hdr.FileInfo()
		need, metas := s.plan(p, info)
		if len(need) == 0 && len(metas) == 0 {
			continue
		}
		f := &file{path: p, info: info, metas: metas, size: hdr.Size, seq: seq}
		d.track(p, seq)
		if len(need) > 0 {
			if hdr.Size > s.opts.maxFileSize {
				lr.warn(fmt.Sprintf("%s: %d bytes is over the %d byte analysis cap; content not analysed", p, hdr.Size, s.opts.maxFileSize))
			} else {
				f.need = need
				if err := s.materialize(d, f, tr, progress); err != nil {
					return fmt.Errorf("read layer %s: %s: %w", shortID(lr.DiffID), p, err)
				}
				lr.Bytes += f.size
			}
		}
		if err := d.submit(f); err != nil {
			return err
		}
	}
}

// materialize reads f's content from r into memory or a spill file.
func (s *Set) materialize(d *dispatcher, f *file, r io.Reader, progress Progress) error {
	if f.size <= s.opts.memoryThreshold {
		if err := d.acquire(f.size); err != nil {
			return err
		}
		buf := make([]byte, f.size)
		if _, err := io.ReadFull(r, buf); err != nil {
			d.releaseBudget(f.size)
			return fmt.Errorf("read content: %w", err)
		}
		if progress != nil {
			progress(f.size)
		}
		f.data = buf
		return nil
	}
	tmp, err := os.CreateTemp(s.opts.tempDir, "mamori-spill-*")
	if err != nil {
		return fmt.Errorf("spill file: %w", err)
	}
	n, err := io.Copy(tmp, io.LimitReader(r, f.size))
	if progress != nil {
		progress(n)
	}
	if err == nil && n != f.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("spill content: %w", err)
	}
	f.spill = tmp
	return nil
}

// WalkDir walks a file tree (a root file system or a source directory) and
// runs the set's analyzers. Symbolic links are never followed, and files are
// opened through an os.Root, so nothing outside root is read even if the tree
// changes during the walk.
func (s *Set) WalkDir(ctx context.Context, root string, progress Progress) (*LayerResult, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	defer rt.Close()
	lr := &LayerResult{}
	d := s.newDispatcher(ctx, lr)
	walkErr := fs.WalkDir(rt.FS(), ".", func(p string, de fs.DirEntry, err error) error {
		if cerr := d.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			lr.warn(fmt.Sprintf("%s: %v", p, err))
			if de != nil && de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p == "." {
			return nil
		}
		lr.Entries++
		if lr.Entries > s.opts.maxEntries {
			return fmt.Errorf("walk %s: %w (more than %d)", root, ErrTooManyEntries, s.opts.maxEntries)
		}
		if s.skipped(p) {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			lr.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		need, metas := s.plan(p, info)
		if len(need) == 0 && len(metas) == 0 {
			return nil
		}
		f := &file{path: p, info: info, metas: metas, size: info.Size(), seq: lr.Entries}
		d.track(p, f.seq)
		if len(need) > 0 {
			if info.Size() > s.opts.maxFileSize {
				lr.warn(fmt.Sprintf("%s: %d bytes is over the %d byte analysis cap; content not analysed", p, info.Size(), s.opts.maxFileSize))
			} else {
				fh, err := rt.Open(p)
				if err != nil {
					lr.warn(fmt.Sprintf("%s: %v", p, err))
					return nil
				}
				f.need = need
				err = s.materialize(d, f, fh, progress)
				fh.Close()
				if err != nil {
					// The file changed size or vanished under us: note it, go on.
					lr.warn(fmt.Sprintf("%s: %v", p, err))
					return nil
				}
				lr.Bytes += f.size
			}
		}
		return d.submit(f)
	})
	finErr := d.finish()
	if walkErr != nil {
		return nil, walkErr
	}
	if finErr != nil {
		return nil, finErr
	}
	sortResult(lr)
	return lr, nil
}

func sortResult(lr *LayerResult) {
	for _, r := range lr.Files {
		model.SortPackages(r.Packages)
	}
}

func shortID(diffID string) string {
	s := strings.TrimPrefix(diffID, "sha256:")
	if len(s) > 12 {
		s = s[:12]
	}
	if s == "" {
		return "(tree)"
	}
	return s
}

func locationFor(p string) model.PackageLocation { return model.PackageLocation{Path: p} }
