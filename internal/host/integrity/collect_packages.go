package integrity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"mamori/internal/catalog/apk"
	"mamori/internal/catalog/dpkg"
	"mamori/internal/catalog/rpm"
	"mamori/internal/model"
)

// PackageCollector records the installed OS packages through the image
// scanner's catalogers: dpkg's status database, apk's installed database
// and the rpm database (SQLite, Berkeley DB or NDB). Keys are
// "<manager>:<name>" plus ":<arch>" when the package has one
// ("deb:libc6:amd64"). Attributes: version, arch, manager, source.
type PackageCollector struct{}

var _ Collector = PackageCollector{}

func (PackageCollector) Name() string { return "packages" }
func (PackageCollector) Kind() Kind   { return KindPackage }
func (PackageCollector) Triggers() []string {
	return []string{"/" + dpkg.StatusPath, "/" + apk.InstalledPath, "/var/lib/rpm", "/usr/lib/sysimage/rpm"}
}
func (PackageCollector) Volatile() []string { return nil }

// rpmDBs are tried in order; the first present one is read.
var rpmDBs = [...]string{
	"/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite",
	"/var/lib/rpm/Packages.db", "/usr/lib/sysimage/rpm/Packages.db",
	"/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages",
}

func (PackageCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	var pkgs []model.Package
	warn := func(msg string) { env.logger().Warn("integrity: packages: " + msg) }
	if f, err := os.Open(env.Path("/" + dpkg.StatusPath)); err == nil {
		ps, skipped, perr := dpkg.ParseStatus(ctx, f, dpkg.StatusPath, false)
		f.Close()
		if perr != nil {
			return nil, fmt.Errorf("packages: dpkg status: %w", perr)
		}
		if w := skipped.Warning(); w != "" {
			warn("dpkg status: " + w)
		}
		pkgs = append(pkgs, ps...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("packages: %w", err)
	}
	if f, err := os.Open(env.Path("/" + apk.InstalledPath)); err == nil {
		ps, skipped, perr := apk.ParseInstalled(ctx, f, apk.InstalledPath)
		f.Close()
		if perr != nil {
			return nil, fmt.Errorf("packages: apk installed: %w", perr)
		}
		if w := skipped.Warning(); w != "" {
			warn("apk installed: " + w)
		}
		pkgs = append(pkgs, ps...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("packages: %w", err)
	}
	for _, p := range rpmDBs {
		f, err := os.Open(env.Path(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("packages: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("packages: %w", err)
		}
		c, err := rpm.New(rpm.WithTempDir(os.TempDir()))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("packages: %w", err)
		}
		ps, perr := c.Parse(ctx, f, st.Size(), p[1:])
		f.Close()
		if perr != nil {
			return nil, fmt.Errorf("packages: rpm database %s: %w", p, perr)
		}
		pkgs = append(pkgs, ps...)
		break
	}
	return packageObjects(pkgs), nil
}

func packageObjects(pkgs []model.Package) []Object {
	seen := map[string]bool{}
	out := make([]Object, 0, len(pkgs))
	for _, p := range pkgs {
		if len(out) >= maxObjects {
			break
		}
		key := p.Type + ":" + p.Name
		if p.Arch != "" {
			key += ":" + p.Arch
		}
		a := map[string]string{"version": SafeText(p.Version), "manager": p.Cataloger}
		if p.Arch != "" {
			a["arch"] = SafeText(p.Arch)
		}
		if p.SourceName != "" {
			a["source"] = SafeText(p.SourceName)
		}
		for k, v := range a {
			a[k] = truncate(v)
		}
		out = append(out, Object{Kind: KindPackage, Key: uniqueKey(seen, truncate(SafeText(key))), Attrs: a})
	}
	return out
}
