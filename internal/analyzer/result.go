package analyzer

// resultFormatVersion is part of every cache key: bump it when LayerResult's
// encoding changes meaning.
const resultFormatVersion = "layer-result/4" // 2: the last tar entry for a path wins; 3: owned files and digests (issue 14); 4: owned files grouped

// LayerResult is what one walk of one layer (or one file tree) produced.
// It is what the layer cache stores, keyed by Set.CacheKey(DiffID).
type LayerResult struct {
	// DiffID is the layer's diff ID (sha256 of the uncompressed tar); empty
	// for file trees.
	DiffID string `json:"diffID"`
	// Files maps a clean path to what the analyzers found in that file; only
	// files with results are present.
	Files map[string]*Result `json:"files,omitempty"`
	// Whiteouts are the paths this layer deletes from lower layers
	// (".wh.name" entries, already turned into the deleted path).
	Whiteouts []string `json:"whiteouts,omitempty"`
	// OpaqueDirs are directories whose lower-layer content this layer hides
	// (".wh..wh..opq" entries).
	OpaqueDirs []string `json:"opaqueDirs,omitempty"`
	// Warnings are per-file problems that did not stop the walk.
	Warnings []string `json:"warnings,omitempty"`
	// HardLinks maps a hard link's target to the wanted links, for
	// Set.WalkHardLinks; never stored.
	HardLinks map[string][]HardLink `json:"-"`
	// Entries counts the entries read; Bytes the uncompressed bytes read.
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

func (lr *LayerResult) warn(format string) {
	if len(lr.Warnings) < maxWarnings {
		lr.Warnings = append(lr.Warnings, format)
	} else if len(lr.Warnings) == maxWarnings {
		lr.Warnings = append(lr.Warnings, "more warnings omitted")
	}
}

// add merges r into the result for path, setting the layer on every
// package location and finding.
func (lr *LayerResult) add(path string, r *Result) {
	if r.Empty() {
		return
	}
	for i := range r.Packages {
		p := &r.Packages[i]
		if len(p.Locations) == 0 {
			p.Locations = append(p.Locations, locationFor(path))
		}
		for j := range p.Locations {
			p.Locations[j].LayerDiffID = lr.DiffID
		}
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Location.Path == "" && f.Location.Config == "" {
			f.Location.Path = path
		}
		if f.Location.Path != "" {
			f.Location.LayerDiffID = lr.DiffID
		}
	}
	if lr.Files == nil {
		lr.Files = map[string]*Result{}
	}
	cur := lr.Files[path]
	if cur == nil {
		lr.Files[path] = r
		return
	}
	cur.Packages = append(cur.Packages, r.Packages...)
	cur.Findings = append(cur.Findings, r.Findings...)
	cur.Owned = append(cur.Owned, r.Owned...)
	if r.Digests != nil {
		cur.Digests = r.Digests
	}
	if r.OS != nil {
		cur.OS = r.OS
	}
	cur.Present = cur.Present || r.Present
}

// HardLink is a wanted hard link: its path, and its entry's position in the
// layer's tar stream (it links to the target as the stream left it there).
type HardLink struct {
	Path string
	Seq  int
}

// dropHardLink forgets a wanted hard link at p, replaced by a later entry.
func (lr *LayerResult) dropHardLink(p string) {
	for target, links := range lr.HardLinks {
		kept := links[:0]
		for _, l := range links {
			if l.Path != p {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(lr.HardLinks, target)
		} else {
			lr.HardLinks[target] = kept
		}
	}
}
