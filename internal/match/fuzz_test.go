package match

import (
	"context"
	"testing"

	"mamori/internal/model"
)

// FuzzMatchVersion: any installed version string (and ecosystem type)
// matches or not; never a panic, never an error from a healthy source.
func FuzzMatchVersion(f *testing.F) {
	for _, s := range [][2]string{
		{"deb", "2.36-9+deb12u2"}, {"deb", "1:1.2.11.dfsg-4"}, {"npm", "4.17.20"}, {"npm", "1.0.0-rc.1+build"},
		{"golang", "go1.26rc1"}, {"pypi", "4.2.14.post1"}, {"apk", "1.1.1c-r0"}, {"rpm", "1:3.0.1-35.el9"}, {"cargo", "0.0.0-0"},
	} {
		f.Add(s[0], s[1])
	}
	db := openTestDB(f)
	names := map[string]string{"deb": "glibc", "npm": "lodash", "golang": "stdlib", "pypi": "django", "apk": "openssl", "rpm": "openssl-libs", "cargo": "cap-primitives"}
	oses := map[string]*model.OS{"deb": {ID: "debian", VersionID: "12"}, "apk": {ID: "alpine", VersionID: "3.10.1"}, "rpm": {ID: "almalinux", VersionID: "9.3"}}
	f.Fuzz(func(t *testing.T, typ, ver string) {
		inv := &model.Inventory{OS: oses[typ], Packages: []model.Package{{Name: names[typ], Version: ver, Type: typ}}}
		if _, _, err := Match(context.Background(), db, inv); err != nil {
			t.Fatal(err)
		}
	})
}
