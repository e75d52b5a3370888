package inuse

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mamori/internal/model"
)

func pkg(typ, name, ver, loc string, files ...string) model.Package {
	return model.Package{Name: name, Version: ver, Type: typ, Files: files, Locations: []model.PackageLocation{{Path: loc}}}
}

func vuln(id string, p model.Package) model.Vulnerability {
	return model.Vulnerability{ID: id, Severity: model.SeverityHigh,
		Package: model.PackageRef{Name: p.Name, Version: p.Version, Type: p.Type, Path: p.Locations[0].Path}}
}

// testInventory is an image with a Debian library, a Go binary (its
// modules and standard library), npm and Python packages.
func testInventory() *model.Inventory {
	return &model.Inventory{Packages: []model.Package{
		pkg(model.TypeDeb, "libssl3", "3.0.11-1~deb12u1", "var/lib/dpkg/status",
			"usr/lib/x86_64-linux-gnu/libcrypto.so.3", "usr/lib/x86_64-linux-gnu/libssl.so.3"),
		pkg(model.TypeDeb, "zlib1g", "1:1.2.13.dfsg-1", "var/lib/dpkg/status", "usr/lib/x86_64-linux-gnu/libz.so.1.2.13"),
		pkg(model.TypeGolang, "golang.org/x/net", "v0.17.0", "usr/local/bin/app"),
		pkg(model.TypeGolang, "stdlib", "1.19.13", "usr/local/bin/app"),
		pkg(model.TypeNPM, "lodash", "4.17.20", "app/node_modules/lodash/package.json"),
		pkg(model.TypePyPI, "Jinja2", "2.10", "usr/lib/python3/dist-packages/Jinja2-2.10.dist-info/METADATA"),
		pkg(model.TypePyPI, "PyYAML", "5.3", "usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA"),
	}}
}

func TestMark(t *testing.T) {
	inv := testInventory()
	var vulns []model.Vulnerability
	for i, p := range inv.Packages {
		vulns = append(vulns, vuln(fmt.Sprintf("V-%d", i), p))
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	loads := []Load{
		{ContainerID: "c1", ContainerName: "web-1", Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3", Time: t0},
		{ContainerID: "c2", ContainerName: "web-2", Path: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Time: t0.Add(time.Minute)},
		{ContainerID: "c1", Path: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", Time: t0.Add(2 * time.Minute)},
		{ContainerID: "c1", Path: "/usr/local/bin/app", Time: t0},
		{ContainerID: "c2", Path: "/app/node_modules/lodash/lodash.js", Time: t0},
		{ContainerID: "c2", Path: "/usr/lib/python3/dist-packages/jinja2/__init__.py", Time: t0},
		// Hostile or irrelevant paths.
		{ContainerID: "c3", Path: "/../../usr/lib/x86_64-linux-gnu/libz.so.1.2.13\x00", Time: t0},
		{ContainerID: "c3", Path: "", Time: t0},
		{ContainerID: "", Path: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", Time: t0},
		{ContainerID: "c3", Path: "/etc/passwd", Time: t0},
	}
	ix := NewIndex(inv)
	Mark(vulns, ix, loads, true)
	got := map[string]*model.InUse{}
	for _, v := range vulns {
		got[v.Package.Name] = v.InUse
		if v.Priority == nil {
			t.Errorf("%s: no priority", v.ID)
		}
	}
	ssl := got["libssl3"]
	if ssl == nil || !ssl.Loaded || ssl.Count != 2 || len(ssl.Containers) != 2 || !ssl.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("libssl3: %+v", ssl)
	}
	// Most recent first; c1's name kept from its first event.
	if c := ssl.Containers[0]; c.ID != "c1" || c.Name != "web-1" || c.Path != "usr/lib/x86_64-linux-gnu/libssl.so.3" {
		t.Errorf("libssl3 containers %+v", ssl.Containers)
	}
	for _, name := range []string{"golang.org/x/net", "stdlib", "lodash", "Jinja2"} {
		if u := got[name]; u == nil || !u.Loaded || u.Count != 1 {
			t.Errorf("%s: %+v, want loaded in one container", name, u)
		}
	}
	// Watched, never loaded: false, not absent. The NUL path does not count.
	for _, name := range []string{"zlib1g", "PyYAML"} {
		if u := got[name]; u == nil || u.Loaded {
			t.Errorf("%s: %+v, want loaded: false", name, u)
		}
	}
	for _, v := range vulns {
		if v.Package.Name == "libssl3" && !strings.Contains(v.Priority.Reason, "in use in 2 containers") {
			t.Errorf("reason %q", v.Priority.Reason)
		}
		if v.Package.Name == "zlib1g" && !strings.Contains(v.Priority.Reason, "not loaded at run time") {
			t.Errorf("reason %q", v.Priority.Reason)
		}
	}

	// No agent data: absent, never false (and a previous mark is removed).
	Mark(vulns, ix, nil, false)
	for _, v := range vulns {
		if v.InUse != nil || strings.Contains(v.Priority.Reason, "loaded") || strings.Contains(v.Priority.Reason, "in use") {
			t.Errorf("%s without agent data: %+v %q", v.ID, v.InUse, v.Priority.Reason)
		}
	}

	// A finding of a package that is not in the inventory is left alone.
	other := []model.Vulnerability{{ID: "X", Package: model.PackageRef{Name: "nope", Type: model.TypeDeb}}}
	Mark(other, ix, loads, true)
	if other[0].InUse != nil || other[0].Priority != nil {
		t.Errorf("unknown package: %+v", other[0])
	}
}

func TestContainersCapped(t *testing.T) {
	inv := testInventory()
	var loads []Load
	t0 := time.Now()
	for i := range model.MaxInUseContainers + 50 {
		loads = append(loads, Load{ContainerID: fmt.Sprintf("c%03d", i), Path: "/usr/local/bin/app", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	vulns := []model.Vulnerability{vuln("GO-1", inv.Packages[3])}
	Mark(vulns, NewIndex(inv), loads, true)
	u := vulns[0].InUse
	if u == nil || u.Count != model.MaxInUseContainers+50 || len(u.Containers) != model.MaxInUseContainers ||
		u.Containers[0].ID != fmt.Sprintf("c%03d", model.MaxInUseContainers+49) {
		t.Fatalf("%+v", u)
	}
	if err := model.ValidateVulnerabilities(vulns); err != nil {
		t.Error(err)
	}
}

func TestLoadable(t *testing.T) {
	yes := []string{"usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/engines-3/afalg.so", "usr/bin/openssl",
		"bin/bash", "usr/sbin/sshd", "usr/libexec/git-core/git-remote-http", "usr/lib/python3/dist-packages/_yaml.cpython-311-x86_64-linux-gnu.so"}
	no := []string{"usr/share/doc/libssl3/changelog.gz", "etc/ssl/openssl.cnf", "usr/lib/x86_64-linux-gnu/libssl.a",
		"usr/share/man/man1/openssl.1ssl.gz", "", "usr/bin"}
	for _, p := range yes {
		if !Loadable(p) {
			t.Errorf("Loadable(%q) = false", p)
		}
	}
	for _, p := range no {
		if Loadable(p) {
			t.Errorf("Loadable(%q) = true", p)
		}
	}
}

func TestOwnersOfHostilePaths(t *testing.T) {
	ix := NewIndex(testInventory())
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/../x86_64-linux-gnu/libssl.so.3", "usr/lib/x86_64-linux-gnu/libssl.so.3", "/../../../usr/lib/x86_64-linux-gnu/libssl.so.3"} {
		if got := ix.Owners(p); !slices.Equal(got, []int{0}) {
			t.Errorf("Owners(%q) = %v", p, got)
		}
	}
	for _, p := range []string{"/", "..", "\x00", "/usr/lib/x86_64-linux-gnu"} {
		if got := ix.Owners(p); len(got) != 0 {
			t.Errorf("Owners(%q) = %v", p, got)
		}
	}
}

// BenchmarkMark: an image of 1,000 packages with 20 loadable files each,
// 50 vulnerabilities each on 20 packages, and 10,000 load events from 20
// containers.
func BenchmarkMark(b *testing.B) {
	inv := &model.Inventory{}
	for i := range 1000 {
		var files []string
		for j := range 20 {
			files = append(files, fmt.Sprintf("usr/lib/x86_64-linux-gnu/lib%d-%d.so.1", i, j))
		}
		inv.Packages = append(inv.Packages, pkg(model.TypeDeb, fmt.Sprintf("lib%d", i), "1.0", "var/lib/dpkg/status", files...))
	}
	var vulns []model.Vulnerability
	for i := 0; i < 1000; i += 20 {
		for j := range 20 {
			vulns = append(vulns, vuln(fmt.Sprintf("CVE-%d-%d", i, j), inv.Packages[i]))
		}
	}
	var loads []Load
	t0 := time.Now()
	for i := range 10_000 {
		loads = append(loads, Load{ContainerID: fmt.Sprintf("c%d", i%20), Path: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d-%d.so.1", i%1000, i%20), Time: t0})
	}
	b.ResetTimer()
	for b.Loop() {
		Mark(vulns, NewIndex(inv), loads, true)
	}
}

// TestMergedUsr: on a merged-/usr image dpkg lists "bin/tar" and
// "lib/x86_64-linux-gnu/libc.so.6" while the kernel reports the resolved
// "/usr/bin/tar"; an image that lists the /usr name is found through the
// old name too; a package that really owns the exact path wins.
func TestMergedUsr(t *testing.T) {
	inv := &model.Inventory{Packages: []model.Package{
		pkg(model.TypeDeb, "tar", "1.34+dfsg-1.2+deb12u1", "var/lib/dpkg/status", "bin/tar", "usr/sbin/tarcat"),
		pkg(model.TypeDeb, "libc6", "2.36-9+deb12u14", "var/lib/dpkg/status", "lib/x86_64-linux-gnu/libc.so.6"),
		pkg(model.TypeDeb, "coreutils", "9.1-1", "var/lib/dpkg/status", "bin/ls"),
		pkg(model.TypeDeb, "other-ls", "1", "var/lib/dpkg/status", "usr/bin/ls"),
	}}
	ix := NewIndex(inv)
	for p, want := range map[string][]int{
		"/usr/bin/tar":                              {0},
		"/bin/tar":                                  {0},
		"/sbin/tarcat":                              {0},
		"/usr/lib/x86_64-linux-gnu/libc.so.6":       {1},
		"/lib/x86_64-linux-gnu/libc.so.6":           {1},
		"/usr/bin/ls":                               {3},
		"/bin/ls":                                   {2},
		"/usr/share/bin/tar":                        nil,
		"/usr/binary/tar":                           nil,
		"/usr/lib64/ld-linux-x86-64.so.2":           nil,
		"/usr/local/lib/x86_64-linux-gnu/libc.so.6": nil,
	} {
		if got := ix.Owners(p); !slices.Equal(got, want) {
			t.Errorf("Owners(%q) = %v, want %v", p, got, want)
		}
	}
}
