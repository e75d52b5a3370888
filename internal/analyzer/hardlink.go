package analyzer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// maxHardLinks bounds the hard links a layer may ask a second pass for.
const maxHardLinks = 10_000

// assumedLinkSize stands in for a hard link's size when asking analyzers
// whether they want it. Zero: a link entry records no size, and the
// content scanners (secrets, malware, binaries), which skip empty files,
// already saw the bytes under the target's own name; only the analyzers
// that decide by path (package databases) need the link's name.
const assumedLinkSize = 0

// maxLinksPerTarget and maxHardLinkBytes bound the second pass: 10,000
// links to one 16 MiB file must not mean 160 GB of analysis.
const (
	maxLinksPerTarget = 16
	maxHardLinkBytes  = 256 << 20
)

// maxSharedLink bounds a file read into memory once for several hard
// links to it.
const maxSharedLink = 16 << 20

// noteHardLink records a hard link whose own path an analyzer wants (a
// package database stored as a link to an earlier entry of the layer): its
// bytes are those of the entry it links to, which the single pass has
// already gone past. Layers holding such links get a second pass
// (WalkHardLinks); links no analyzer wants by path cost nothing.
//
// seq is the link entry's position in the stream; it reports whether the
// link was recorded.
func (s *Set) noteHardLink(lr *LayerResult, p string, hdr *tar.Header, seq int) bool {
	target, err := CleanTarPath(hdr.Linkname)
	if err != nil || target == "" || target == p {
		lr.warn(fmt.Sprintf("%s: hard link to %q skipped", p, hdr.Linkname))
		return false
	}
	info := linkInfo{name: p, mode: hdr.FileInfo().Mode()}
	need, metas := s.plan(p, info)
	if len(need) == 0 && len(metas) == 0 {
		return false
	}
	if len(lr.HardLinks) >= maxHardLinks {
		lr.warn(fmt.Sprintf("%s: more than %d wanted hard links; not analysed", p, maxHardLinks))
		return false
	}
	if lr.HardLinks == nil {
		lr.HardLinks = map[string][]HardLink{}
	}
	lr.HardLinks[target] = append(lr.HardLinks[target], HardLink{Path: p, Seq: seq})
	return true
}

type linkInfo struct {
	name string
	mode fs.FileMode
}

func (l linkInfo) Name() string       { return l.name }
func (l linkInfo) Size() int64        { return assumedLinkSize }
func (l linkInfo) Mode() fs.FileMode  { return l.mode }
func (l linkInfo) ModTime() time.Time { return time.Time{} }
func (l linkInfo) IsDir() bool        { return false }
func (l linkInfo) Sys() any           { return nil }

// WalkHardLinks is the second pass over a layer whose first pass recorded
// wanted hard links in lr.HardLinks: it reads the layer's tar stream r
// again and analyses each link target's bytes under the link's own paths,
// adding to lr. It clears lr.HardLinks.
func (s *Set) WalkHardLinks(ctx context.Context, lr *LayerResult, r io.Reader, progress Progress) error {
	links := lr.HardLinks
	lr.HardLinks = nil
	if len(links) == 0 {
		return nil
	}
	d := s.newDispatcher(ctx, lr)
	tr := tar.NewReader(r)
	var walkErr error
	budget := int64(maxHardLinkBytes)
	found := map[string]bool{} // targets seen before at least one of their links
	for seq := 1; len(links) > 0; seq++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			walkErr = fmt.Errorf("read layer %s again for hard links: %w", shortID(lr.DiffID), err)
			break
		}
		p, err := CleanTarPath(hdr.Name)
		if err != nil || hdr.Typeflag != tar.TypeReg {
			continue
		}
		// A link is to the target as the stream left it at the link's own
		// entry: of several copies of the target, the last one before the
		// link. Each earlier copy is analysed and then replaced (track).
		var paths []string
		var later []HardLink
		for _, l := range links[p] {
			if l.Seq > seq {
				paths = append(paths, l.Path)
				later = append(later, l)
			}
		}
		if len(later) == 0 {
			if _, ok := links[p]; ok && found[p] {
				delete(links, p) // every link comes before this copy
			}
			continue
		}
		found[p] = true
		if hdr.Size > s.opts.maxFileSize {
			lr.warn(fmt.Sprintf("%s: %d bytes is over the %d byte analysis cap; content not analysed", p, hdr.Size, s.opts.maxFileSize))
			continue
		}
		if len(paths) > maxLinksPerTarget {
			lr.warn(fmt.Sprintf("%s: %d hard links; only the first %d analysed", p, len(paths), maxLinksPerTarget))
			paths = paths[:maxLinksPerTarget]
		}
		if budget -= hdr.Size * int64(len(paths)); budget < 0 {
			lr.warn(fmt.Sprintf("%s: hard-link analysis budget (%d bytes) spent; links not analysed", p, maxHardLinkBytes))
			continue
		}
		info := hdr.FileInfo()
		var shared []byte // the bytes, when several links want them
		if len(paths) > 1 && hdr.Size <= maxSharedLink {
			shared = make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, shared); err != nil {
				walkErr = fmt.Errorf("read layer %s: %s: %w", shortID(lr.DiffID), p, err)
				break
			}
		} else if len(paths) > 1 {
			lr.warn(fmt.Sprintf("%s: %d hard links to a %d byte file; only %s analysed", p, len(paths), hdr.Size, paths[0]))
			paths = paths[:1]
		}
		for _, lp := range paths {
			need, metas := s.plan(lp, info)
			if len(need) == 0 && len(metas) == 0 {
				continue
			}
			d.supersede(lp)
			d.track(lp, seq)
			f := &file{path: lp, info: info, metas: metas, size: hdr.Size, seq: seq}
			if len(need) > 0 {
				f.need = need
				var src io.Reader = tr
				if shared != nil {
					src = bytes.NewReader(shared)
				}
				if err := s.materialize(d, f, src, progress); err != nil {
					walkErr = fmt.Errorf("read layer %s: %s: %w", shortID(lr.DiffID), lp, err)
					break
				}
			}
			if walkErr = d.submit(f); walkErr != nil {
				break
			}
		}
		if walkErr != nil {
			break
		}
	}
	finErr := d.finish()
	for target := range links {
		if !found[target] {
			lr.warn(fmt.Sprintf("hard links to %s: target not in the layer", target))
		}
	}
	if walkErr != nil {
		return walkErr
	}
	if finErr != nil {
		return finErr
	}
	sortResult(lr)
	return nil
}
