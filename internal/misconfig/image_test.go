package misconfig

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestCheckImage(t *testing.T) {
	tok := "gh" + "p_" + strings.Repeat("aB3dE5gH7j", 3) + "K9mN0p"
	hc := &v1.HealthConfig{Test: []string{"CMD", "curl", "-f", "http://localhost/"}}
	good := &v1.ConfigFile{
		Config: v1.Config{User: "app", Healthcheck: hc, ExposedPorts: map[string]struct{}{"8080/tcp": {}}},
		History: []v1.History{
			{CreatedBy: "/bin/sh -c #(nop) ADD file:0eb5ea35741d23fe in / "},
			{CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl # buildkit"},
			{CreatedBy: "/bin/sh -c apt-get -qq update &&     apt-get -qq install -y ca-certificates"},
			{CreatedBy: "COPY app /app # buildkit"},
		},
	}
	expect(t, "good", CheckImage(good, ImageFacts{Packages: []string{"bash", "curl"}}), nil,
		[]string{ImgRootUser, ImgNoHealthcheck, ImgUpdateAlone, ImgAddRemote, ImgSecrets, ImgRemoteAdminPkg, ImgPrivilegedPort, ImgRemoteAdminPort, ImgSetuid, ImgWorldWritable})

	for _, u := range []string{"", "root", "0", "0:0", "root:root"} {
		c := *good
		c.Config.User = u
		expect(t, "user "+u, CheckImage(&c, ImageFacts{}), []string{ImgRootUser}, nil)
	}
	for _, u := range []string{"1000", "app:app", "nobody", "65534:65534"} {
		c := *good
		c.Config.User = u
		expect(t, "user "+u, CheckImage(&c, ImageFacts{}), nil, []string{ImgRootUser})
	}
	bad := &v1.ConfigFile{
		Config: v1.Config{
			User: "0", Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}},
			Env:          []string{"PATH=/usr/bin", "GITHUB_TOKEN=" + tok},
			ExposedPorts: map[string]struct{}{"22/tcp": {}, "80/tcp": {}, "8443/tcp": {}},
		},
		History: []v1.History{
			{CreatedBy: "/bin/sh -c apt-get update"},
			{CreatedBy: "RUN /bin/sh -c apk update # buildkit"},
			{CreatedBy: "ADD https://example.org/tool.tgz /opt/ # buildkit"},
			{CreatedBy: "|1 NPM_TOKEN=np" + "m_" + strings.Repeat("Zx9", 12) + " /bin/sh -c npm ci"},
		},
	}
	fs := CheckImage(bad, ImageFacts{Packages: []string{"openssh-server", "vsftpd"}, SetuidFiles: []string{"usr/bin/passwd", "usr/bin/passwd"}, WorldWritableFiles: []string{"app/x"}})
	expect(t, "bad", fs, []string{ImgRootUser, ImgNoHealthcheck, ImgUpdateAlone, ImgAddRemote, ImgSecrets, ImgRemoteAdminPkg, ImgPrivilegedPort, ImgRemoteAdminPort, ImgSetuid, ImgWorldWritable}, nil)
	got := idSet(fs)
	if got[ImgUpdateAlone] != 2 || got[ImgRemoteAdminPkg] != 2 || got[ImgSetuid] != 1 || got[ImgSecrets] != 2 || got[ImgPrivilegedPort] != 1 {
		t.Errorf("counts %v", got)
	}
	for _, f := range fs {
		if strings.Contains(f.Evidence, tok) || strings.Contains(f.Evidence, strings.Repeat("Zx9", 12)) {
			t.Errorf("raw secret in evidence %q", f.Evidence)
		}
	}
	if len(CheckImage(nil, ImageFacts{})) != 0 {
		t.Error("nil config")
	}
}

func TestHistoryCommand(t *testing.T) {
	for in, want := range map[string]historyCmd{
		"/bin/sh -c #(nop)  HEALTHCHECK &{[CMD true]}": {kind: "HEALTHCHECK", text: "&{[CMD true]}"},
		"/bin/sh -c apt-get update":                    {kind: "RUN", text: "apt-get update"},
		"|2 A=1 B=2 /bin/sh -c make":                   {kind: "RUN", text: "make"},
		"RUN |1 X=y /bin/sh -c echo hi # buildkit":     {kind: "RUN", text: "echo hi"},
		"ADD https://x.org/a.tgz /a # buildkit":        {kind: "ADD", text: "https://x.org/a.tgz /a"},
		"/bin/sh -c #(nop) ADD file:abc in / ":         {kind: "ADD", text: "file:abc in /"},
		"RUN --mount=type=cache,target=/root/.cache/go-build |1 X=y /bin/sh -c go build # buildkit": {kind: "RUN", text: "go build"},
	} {
		if got := historyCommand(in); got != want {
			t.Errorf("historyCommand(%q) = %+v, want %+v", in, got, want)
		}
	}
	for cmd, want := range map[string]bool{
		"apt-get update": true,
		"apt-get update && apt-get install -y curl": false,
		"apt-get -y update; apt-get -y upgrade":     false,
		"apk update":                                true,
		"apk update && apk add curl":                false,
		"apk add --no-cache curl":                   false,
		"yum makecache":                             true,
		"echo update":                               false,
		"apt-get update && apt-get dist-upgrade -y": false,
	} {
		if got := updateWithoutInstall(cmd); got != want {
			t.Errorf("updateWithoutInstall(%q) = %v", cmd, got)
		}
	}
}

type fi struct {
	mode fs.FileMode
}

func (f fi) Name() string       { return "f" }
func (f fi) Size() int64        { return 1 }
func (f fi) Mode() fs.FileMode  { return f.mode }
func (f fi) ModTime() time.Time { return time.Time{} }
func (f fi) IsDir() bool        { return false }
func (f fi) Sys() any           { return nil }
