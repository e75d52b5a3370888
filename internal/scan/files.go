package scan

import (
	"sort"

	"mamori/internal/analyzer"
	"mamori/internal/inuse"
	"mamori/internal/model"
)

// attachFiles gives each OS package the executables and shared libraries
// its package database lists (dpkg md5sums, rpm file digests, apk Z: lines),
// which the runtime agent's load events are mapped back to (internal/inuse).
func attachFiles(res *model.Result, m *analyzer.Merged) {
	files := map[string][]string{} // type/name/arch → paths
	for _, r := range m.Files {
		for _, o := range r.Owned {
			if inuse.Loadable(o.Path) {
				k := o.Type + "/" + o.Package + "/" + o.Arch
				files[k] = append(files[k], o.Path)
			}
		}
	}
	if len(files) == 0 {
		return
	}
	for i := range res.Inventory.Packages {
		p := &res.Inventory.Packages[i]
		switch p.Type {
		case model.TypeDeb, model.TypeRPM, model.TypeAPK:
		default:
			continue
		}
		fs := files[p.Type+"/"+p.Name+"/"+p.Arch]
		if len(fs) == 0 && p.Arch != "" {
			fs = files[p.Type+"/"+p.Name+"/"]
		}
		if len(fs) == 0 {
			continue
		}
		fs = append([]string(nil), fs...)
		sort.Strings(fs)
		p.Files = compact(fs)
	}
}

func compact(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
