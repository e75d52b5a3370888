package model

import "testing"

func TestKey(t *testing.T) {
	loc := []PackageLocation{{Path: "/var/lib/dpkg/status"}}
	amd := Package{Type: "deb", Name: "libc6", Version: "2.36-9", Arch: "amd64", Locations: loc}
	i386 := amd
	i386.Arch = "i386"
	again := amd
	again.Locations = []PackageLocation{{Path: "/var/lib/dpkg/status", LayerDiffID: "sha256:other"}}
	elsewhere := amd
	elsewhere.Locations = []PackageLocation{{Path: "/var/lib/dpkg/status.d/libc6"}}
	if amd.Key() == i386.Key() {
		t.Error("multi-arch packages of one version share a key")
	}
	if amd.Key() != again.Key() {
		t.Error("the same package in another layer has another key")
	}
	if amd.Key() == elsewhere.Key() {
		t.Error("packages at different paths share a key")
	}
}
