package tail

import (
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Generations: a log can be rotated more than once between two polls (kubelet rotates a chatty
// container's log every 10 MiB; the follower may have been stopped or starved). The middle
// generations were never at the followed path while the follower looked, so they are found
// among the path's siblings: files whose name starts with the path's base name, modified after
// the last file the follower saw, that are not open already and whose head matches no file the
// follower has read (a compressed or copied generation of a file it knows is not read again).

// sibling is a file beside a followed path whose name extends the path's base name.
type sibling struct {
	path string
	mod  int64
	id   fileID
	gz   bool
}

// compressedSuffixes are rotated generations the follower cannot read (only .gz is read).
var compressedSuffixes = []string{".xz", ".bz2", ".zst", ".lz4", ".lzma", ".Z", ".zip"}

// siblings lists path's siblings, oldest first.
func siblings(path string) []sibling {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []sibling
	for _, e := range ents {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || !e.Type().IsRegular() {
			continue
		}
		skip := false
		for _, s := range compressedSuffixes {
			skip = skip || strings.HasSuffix(name, s)
		}
		if skip {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, sibling{path: filepath.Join(dir, name), mod: info.ModTime().UnixNano(), id: idOf(info), gz: strings.HasSuffix(name, ".gz")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mod < out[j].mod })
	return out
}

// openSibling returns a reader of the sibling's content (decompressed for .gz).
func openSibling(sb sibling) (io.ReadCloser, error) {
	f, _, err := openRegular(sb.path)
	if err != nil {
		return nil, err
	}
	if !sb.gz {
		return f, nil
	}
	zr, err := gzip.NewReader(io.LimitReader(f, maxCompressedCopy))
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// remember keeps the fingerprint of a file read to its end, so that it is not read again as a
// missed generation.
func (t *Follower) remember(fp fingerprint) {
	if fp.Len == 0 {
		return
	}
	if len(t.closed) == maxClosed {
		t.closed = append(t.closed[:0], t.closed[1:]...)
	}
	t.closed = append(t.closed, fp)
}

// knownHead reports whether the sibling's head matches the fingerprint of a file the follower
// has open, or one of extra.
func (t *Follower) knownHead(sb sibling, extra []fingerprint) bool {
	fps := append(append([]fingerprint(nil), extra...), t.closed...)
	for _, fl := range t.files {
		fps = append(fps, fl.fp)
	}
	for _, fl := range t.draining {
		fps = append(fps, fl.fp)
	}
	var longest int64
	for _, fp := range fps {
		longest = max(longest, fp.Len)
	}
	if longest == 0 {
		return false
	}
	r, err := openSibling(sb)
	if err != nil {
		return true // unreadable: not read as a generation either
	}
	defer r.Close()
	head := make([]byte, longest)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	for _, fp := range fps {
		if fp.Len > 0 && int64(len(head)) >= fp.Len && sha256.Sum256(head[:fp.Len]) == fp.Sum {
			return true
		}
	}
	return false
}

// missedGenerations reads the generations of path modified after `after` (Unix ns) that the
// follower has not seen. Plain files are drained (their writer may still append); .gz files are
// read whole now.
//
// It returns the latest modification time of the generations it read (0 when none).
func (t *Follower) missedGenerations(spec int, path string, after int64, extra []fingerprint, h Handler) int64 {
	var latest int64
	for _, sb := range siblings(path) {
		// Equal times count as newer: file times have the kernel's tick as resolution, and a
		// generation written in the same tick as the last file seen is still unseen (files the
		// follower closed are recognised by their heads).
		if sb.mod < after || t.isOpen(sb.id) || t.knownHead(sb, extra) {
			continue
		}
		t.stats.Generations++
		latest = max(latest, sb.mod)
		if sb.gz {
			t.readWhole(spec, sb, h)
			continue
		}
		f, fi, err := openRegular(sb.path)
		if err != nil {
			continue
		}
		fl := &file{spec: spec, path: sb.path, f: f, id: idOf(fi), size: fi.Size(), modNs: fi.ModTime().UnixNano(),
			headOK: true, idleSince: t.opts.now()}
		t.read(fl, h)
		t.draining = append(t.draining, fl)
		t.dirty = true
	}
	return latest
}

// readWhole delivers every line of a compressed generation.
func (t *Follower) readWhole(spec int, sb sibling, h Handler) {
	r, err := openSibling(sb)
	if err != nil {
		return
	}
	defer r.Close()
	fl := &file{spec: spec, path: sb.path, headOK: true}
	for {
		n, err := r.Read(t.buf)
		if n > 0 {
			t.consume(fl, t.buf[:n], h)
		}
		if err != nil {
			break
		}
	}
	t.flushPartial(fl, h)
	t.remember(fl.fp) // read once: never again as a generation
}
