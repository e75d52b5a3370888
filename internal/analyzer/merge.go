package analyzer

import (
	"sort"
	"strings"

	"mamori/internal/model"
)

// Merged is the view of an image after its layers are stacked: for every
// path that still exists in the final file system, what the analyzers found
// in its top-most version.
type Merged struct {
	// Files maps a clean path to its result; package locations and finding
	// locations name the layer that holds the file (for a package database
	// rewritten by a later layer, a package unchanged since an earlier layer
	// keeps the earlier layer: that is where it was installed).
	Files    map[string]*Result
	Warnings []string
}

// Merge stacks layer results bottom (index 0) to top, applying each layer's
// whiteouts and opaque directories to the layers below it before adding the
// layer's own files, as the OCI image spec's layer changesets define. It is a
// pure function of its input.
func Merge(layers []*LayerResult) *Merged {
	m := &Merged{Files: map[string]*Result{}}
	for _, lr := range layers {
		if lr == nil {
			continue
		}
		if len(lr.Whiteouts) > 0 || len(lr.OpaqueDirs) > 0 {
			deleteUnder(m.Files, lr.Whiteouts, lr.OpaqueDirs)
		}
		for p, r := range lr.Files {
			nr := cloneResult(r)
			if old := m.Files[p]; old != nil {
				inheritLayers(nr, old)
			}
			m.Files[p] = nr
		}
		m.Warnings = append(m.Warnings, lr.Warnings...)
	}
	return m
}

// deleteUnder removes whiteout targets (the path and all below it) and the
// contents of opaque directories (all below, not the directory itself).
func deleteUnder(files map[string]*Result, whiteouts, opaque []string) {
	if len(files) == 0 {
		return
	}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	delPrefix := func(prefix string) {
		i := sort.SearchStrings(keys, prefix)
		for ; i < len(keys) && strings.HasPrefix(keys[i], prefix); i++ {
			delete(files, keys[i])
		}
	}
	for _, w := range whiteouts {
		delete(files, w)
		delPrefix(w + "/")
	}
	for _, d := range opaque {
		if d == "" {
			// An opaque root hides everything below.
			for _, k := range keys {
				delete(files, k)
			}
			continue
		}
		delPrefix(d + "/")
	}
}

func cloneResult(r *Result) *Result {
	c := &Result{OS: r.OS, Present: r.Present, Digests: r.Digests}
	c.Owned = append(c.Owned, r.Owned...) // read-only after the walk; copied so Merge's output owns its slices
	c.Packages = append(c.Packages, r.Packages...)
	for i := range c.Packages {
		c.Packages[i].Locations = append([]model.PackageLocation(nil), c.Packages[i].Locations...)
	}
	c.Findings = append(c.Findings, r.Findings...)
	return c
}

// inheritLayers gives packages of nr that were already in old (same key) the
// layer old recorded for them.
func inheritLayers(nr, old *Result) {
	if len(old.Packages) == 0 || len(nr.Packages) == 0 {
		return
	}
	prev := make(map[string]string, len(old.Packages))
	for i := range old.Packages {
		p := &old.Packages[i]
		if len(p.Locations) > 0 {
			prev[p.Key()] = p.Locations[0].LayerDiffID
		}
	}
	for i := range nr.Packages {
		p := &nr.Packages[i]
		if l, ok := prev[p.Key()]; ok && len(p.Locations) > 0 {
			p.Locations[0].LayerDiffID = l
		}
	}
}
