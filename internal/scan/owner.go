package scan

import (
	"fmt"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Files an OS package installed are listed with digests in its package
// database (dpkg's info/*.md5sums, rpm's FILEDIGESTS, apk's Z: lines). The
// walk keeps the digests of every file with findings or packages, wherever
// the database comes in the layer or the image; here, once the layers are
// merged, each such file is matched against the lists:
//
//   - a secret in an unmodified packaged file is the distribution's own text
//     (documentation examples, test keys): left out unless asked for, then
//     shown at the lowest severity naming the package;
//   - a secret in a packaged file modified after install is what an attacker
//     or a careless build leaves behind: one severity level higher, at least
//     HIGH;
//   - every other finding, and every language package whose manifest an OS
//     package installed (Debian's python3-*, ruby-*), names its owner.

// ownership indexes the merged file lists by path.
type ownership map[string][]analyzer.OwnedFile

func newOwnership(m *analyzer.Merged) ownership {
	own := ownership{}
	for _, r := range m.Files {
		for _, o := range r.Owned {
			own[o.Path] = append(own[o.Path], o)
		}
	}
	return own
}

// owner returns the owner of path whose digest the file's content has
// (unmodified), else the first owner (modified); ok is false when no
// package lists path or the file's digests are unknown.
func (own ownership) owner(path string, dg *analyzer.Digests) (o analyzer.OwnedFile, modified, ok bool) {
	owners := own[path]
	if len(owners) == 0 || dg == nil {
		return o, false, false
	}
	comparable := false
	for _, c := range owners {
		have := dg.Of(c.Algo)
		if have == "" {
			continue // an algorithm the walk does not compute
		}
		comparable = true
		if have == c.Digest {
			return c, false, true
		}
	}
	if !comparable {
		return o, false, false
	}
	return owners[0], true, true
}

// applyOwnership sets Owner on findings and language packages, and applies
// the secret rules above. It runs after the inventory is assembled (for the
// owning packages' versions).
func applyOwnership(res *model.Result, m *analyzer.Merged, showPackagedSecrets bool) {
	own := newOwnership(m)
	if len(own) == 0 {
		return
	}
	versions := map[string]string{} // type/name/arch and type/name -> version
	for _, p := range res.Inventory.Packages {
		switch p.Type {
		case model.TypeDeb, model.TypeRPM, model.TypeAPK:
			versions[p.Type+"/"+p.Name+"/"+p.Arch] = p.Version
			versions[p.Type+"/"+p.Name] = p.Version
		}
	}
	fileOwner := func(o analyzer.OwnedFile, modified bool) *model.FileOwner {
		v, ok := versions[o.Type+"/"+o.Package+"/"+o.Arch]
		if !ok {
			v = versions[o.Type+"/"+o.Package]
		}
		return &model.FileOwner{Package: o.Package, Version: v, Type: o.Type, Modified: modified}
	}
	kept := res.Findings[:0]
	for _, f := range res.Findings {
		if f.Location.Path == "" || f.Location.Inner != "" {
			kept = append(kept, f)
			continue
		}
		r := m.Files[f.Location.Path]
		if r == nil {
			kept = append(kept, f)
			continue
		}
		o, modified, ok := own.owner(f.Location.Path, r.Digests)
		if !ok {
			kept = append(kept, f)
			continue
		}
		f.Owner = fileOwner(o, modified)
		if f.Kind == model.KindSecret {
			if !modified {
				if !showPackagedSecrets {
					continue
				}
				f.Severity = model.SeverityNegligible
				f.Description = joinSentence(f.Description, fmt.Sprintf("The file is as %s package %s %s installed it: the distribution's own text, not a leak.",
					f.Owner.Type, f.Owner.Package, f.Owner.Version))
			} else {
				f.Severity = raise(f.Severity)
				f.Description = joinSentence(f.Description, fmt.Sprintf("The file belongs to %s package %s %s and was modified after install.",
					f.Owner.Type, f.Owner.Package, f.Owner.Version))
			}
		}
		kept = append(kept, f)
	}
	res.Findings = kept
	for i := range res.Inventory.Packages {
		p := &res.Inventory.Packages[i]
		switch p.Type {
		case model.TypeDeb, model.TypeRPM, model.TypeAPK:
			continue
		}
		if len(p.Locations) == 0 {
			continue
		}
		r := m.Files[p.Locations[0].Path]
		if r == nil {
			continue
		}
		if o, modified, ok := own.owner(p.Locations[0].Path, r.Digests); ok {
			p.Owner = fileOwner(o, modified)
		}
	}
}

// raise is one severity level up, at least HIGH.
func raise(s model.Severity) model.Severity {
	s++
	if s > model.SeverityCritical {
		s = model.SeverityCritical
	}
	if s < model.SeverityHigh {
		s = model.SeverityHigh
	}
	return s
}

func joinSentence(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
