// Package inuse decides which vulnerable packages of an image are in use at
// run time: the runtime sensor reports each file a container executes or
// opens for loading once per container (the "load" kind, see
// docs/runtime-sensor.md); here those paths are mapped back to the
// packages of the image's inventory that own them, and the image's
// vulnerabilities are marked (model.InUse). Where the agent is absent the
// field stays absent, not false.
//
// Which files name a package:
//
//   - OS packages (deb, rpm, apk): Package.Files, the executables and shared
//     libraries their package database lists (dpkg md5sums, rpm file
//     digests, apk Z: lines; filled by the scan, see Loadable);
//   - Go binaries (golang): the binary (the package's location): running it
//     runs every module and the standard library it was built with;
//   - Java archives (maven): the jar (an inner jar counts through its outer
//     one: the JVM opens the outer file);
//   - npm packages: any file under the package's directory
//     (node_modules/<name>/);
//   - Python packages (pypi): any file under the import package directory
//     named after the distribution (site-packages/<name>/, lowercase, "-"
//     as "_") or the dist-info/egg-info directory itself; a distribution
//     whose import name differs (PyYAML's "yaml") is found through Files
//     when the cataloger lists them;
//   - any package's Files.
//
// The package is pure: no I/O.
package inuse

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"time"

	"mamori/internal/model"
	"mamori/internal/priority"
)

// Load is one file the runtime agent saw a container execute or open for
// loading.
type Load struct {
	// ContainerID identifies the container; ContainerName is optional.
	ContainerID   string
	ContainerName string
	// Path is the file's path as the container sees it ("/usr/lib/x86_64-linux-gnu/libssl.so.3").
	Path string
	Time time.Time
}

// Index maps the files of one image's packages to the packages.
type Index struct {
	pkgs []*model.Package
	// files: clean root-relative path → packages; dirs: directory (no
	// trailing slash) → packages whose files are everything below it.
	files map[string][]int
	dirs  map[string][]int
	// byRef finds a vulnerability's package.
	byRef map[string]int
}

// NewIndex indexes inv's packages. inv must outlive the Index.
func NewIndex(inv *model.Inventory) *Index {
	ix := &Index{files: map[string][]int{}, dirs: map[string][]int{}, byRef: map[string]int{}}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		ix.pkgs = append(ix.pkgs, p)
		loc := ""
		if len(p.Locations) > 0 {
			loc = p.Locations[0].Path
		}
		ix.byRef[refKey(p.Type, p.Name, p.Version, loc)] = i
		for _, f := range p.Files {
			if c, ok := clean(f); ok {
				ix.files[c] = appendOnce(ix.files[c], i)
			}
		}
		for _, l := range p.Locations {
			c, ok := clean(l.Path)
			if !ok {
				continue
			}
			switch p.Type {
			case model.TypeGolang, model.TypeMaven, model.TypeCargo, model.TypeNuGet:
				// The binary or archive itself (an inner archive through its
				// outer file: "app.jar!/lib/x.jar" is loaded as app.jar).
				if outer, _, ok := strings.Cut(c, "!"); ok {
					c = outer
				}
				ix.files[c] = appendOnce(ix.files[c], i)
			case model.TypeNPM, model.TypeGem, model.TypeComposer:
				d := path.Dir(c)
				ix.dirs[d] = appendOnce(ix.dirs[d], i)
			case model.TypePyPI:
				meta := path.Dir(c) // site-packages/X-1.0.dist-info
				ix.dirs[meta] = appendOnce(ix.dirs[meta], i)
				site := path.Dir(meta)
				mod := strings.ReplaceAll(strings.ToLower(p.Name), "-", "_")
				for _, d := range []string{site + "/" + mod, site + "/" + strings.ReplaceAll(mod, ".", "/")} {
					ix.dirs[d] = appendOnce(ix.dirs[d], i)
				}
				ix.files[site+"/"+mod+".py"] = appendOnce(ix.files[site+"/"+mod+".py"], i)
			}
		}
	}
	return ix
}

func appendOnce(s []int, i int) []int {
	if slices.Contains(s, i) {
		return s
	}
	return append(s, i)
}

func refKey(typ, name, version, p string) string {
	return typ + "\x00" + name + "\x00" + version + "\x00" + p
}

// clean turns a path into the inventory's form: slash-separated,
// root-relative, no "." or ".." components left; ok is false for a path
// that leaves the root, is empty or holds a NUL.
func clean(p string) (string, bool) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", false
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return "", false
	}
	// "/" + p cleaned cannot climb above the root; a ".." in p that would
	// have is simply dropped, which is what the kernel's path walk does at
	// a process's root.
	return c[1:], true
}

// Owners returns the indexes (into the inventory's packages) of the
// packages a loaded path belongs to.
func (ix *Index) Owners(p string) []int {
	c, ok := clean(p)
	if !ok {
		return nil
	}
	out := ix.files[c]
	if len(out) == 0 {
		if alt, ok := mergedUsrAlias(c); ok {
			out = ix.files[alt]
		}
	}
	for d := path.Dir(c); d != "." && d != "/"; d = path.Dir(d) {
		if ps, ok := ix.dirs[d]; ok {
			for _, i := range ps {
				out = appendOnce(slices.Clip(out), i)
			}
		}
	}
	return out
}

// mergedUsrDirs are the top directories that merged-/usr systems (Debian
// 12, Ubuntu, Fedora, RHEL 9 ...) make symlinks into /usr.
var mergedUsrDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// mergedUsrAlias is the other name of a file under a merged directory:
// "usr/bin/tar" for "bin/tar" and the reverse. On a merged-/usr image
// dpkg still lists many files under their historical name ("bin/tar",
// "lib/x86_64-linux-gnu/libc.so.6") while the kernel reports the resolved
// path ("/usr/bin/tar"): the sensor walks the file's dentry, so /bin's
// symlink is gone. Owners tries the alias only when the exact path names
// no package, so an image that really has both files keeps them apart.
func mergedUsrAlias(c string) (string, bool) {
	rest, usr := strings.CutPrefix(c, "usr/")
	for _, d := range mergedUsrDirs {
		if strings.HasPrefix(rest, d+"/") {
			if usr {
				return rest, true
			}
			return "usr/" + rest, true
		}
	}
	return "", false
}

// Usage is what the loads said about each package.
type Usage struct {
	byPkg map[int]*usage
}

type usage struct {
	containers map[string]*model.InUseContainer
}

// Observe maps loads to packages.
func (ix *Index) Observe(loads []Load) Usage {
	u := Usage{byPkg: map[int]*usage{}}
	for _, l := range loads {
		if l.ContainerID == "" {
			continue
		}
		for _, i := range ix.Owners(l.Path) {
			pu := u.byPkg[i]
			if pu == nil {
				pu = &usage{containers: map[string]*model.InUseContainer{}}
				u.byPkg[i] = pu
			}
			c := pu.containers[l.ContainerID]
			if c == nil {
				p, _ := clean(l.Path)
				c = &model.InUseContainer{ID: l.ContainerID, Name: l.ContainerName, Path: p, LastSeen: l.Time}
				pu.containers[l.ContainerID] = c
			}
			if l.Time.After(c.LastSeen) {
				c.LastSeen = l.Time
			}
			if c.Name == "" {
				c.Name = l.ContainerName
			}
		}
	}
	return u
}

// inUse builds the model value of one package's usage.
func (pu *usage) inUse() *model.InUse {
	u := &model.InUse{Loaded: true, Count: len(pu.containers)}
	for _, c := range pu.containers {
		u.Containers = append(u.Containers, *c)
		if c.LastSeen.After(u.LastSeen) {
			u.LastSeen = c.LastSeen
		}
	}
	slices.SortFunc(u.Containers, func(a, b model.InUseContainer) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.ID, b.ID))
	})
	if len(u.Containers) > model.MaxInUseContainers {
		u.Containers = u.Containers[:model.MaxInUseContainers]
	}
	return u
}

// Mark sets InUse on the vulnerabilities of the Index's inventory from the
// loads the agent reported for the image's containers, and recomputes
// their priority. observed says whether the agent watched any container of
// the image: when it did, a vulnerability whose package none loaded is
// marked not loaded; when it did not, InUse is removed (absent, never false).
// A vulnerability whose package is not in the inventory is left as it is.
func Mark(vulns []model.Vulnerability, ix *Index, loads []Load, observed bool) {
	var u Usage
	if observed {
		u = ix.Observe(loads)
	}
	for i := range vulns {
		v := &vulns[i]
		idx, ok := ix.byRef[refKey(v.Package.Type, v.Package.Name, v.Package.Version, v.Package.Path)]
		if !ok {
			continue
		}
		switch pu := u.byPkg[idx]; {
		case !observed:
			v.InUse = nil
		case pu != nil:
			v.InUse = pu.inUse()
		default:
			v.InUse = &model.InUse{Loaded: false}
		}
		p := priority.Of(v)
		v.Priority = &p
	}
}

// Loadable reports whether a file an OS package installed is one the
// runtime sensor's load events can name as executed or loaded: a shared
// object (*.so, *.so.N…), or a file in a directory of executables (bin,
// sbin, libexec). Package.Files keeps only these: an image's package
// databases list tens of thousands of files, most of them data.
func Loadable(p string) bool {
	c, ok := clean(p)
	if !ok {
		return false
	}
	base := path.Base(c)
	if strings.HasSuffix(base, ".so") || strings.Contains(base, ".so.") {
		return true
	}
	dir := path.Dir(c)
	switch dir {
	case "bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "usr/games":
		return true
	}
	return strings.HasPrefix(dir, "usr/libexec/") || dir == "usr/libexec" || strings.HasPrefix(dir, "usr/lib/jvm/") && strings.HasSuffix(dir, "/bin")
}
