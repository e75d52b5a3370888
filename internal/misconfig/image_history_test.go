package misconfig

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// findingsAt maps check ID to the Location.Config of its findings.
func findingsAt(cfg *v1.ConfigFile) map[string][]string {
	got := map[string][]string{}
	for _, f := range CheckImage(cfg, ImageFacts{}) {
		got[f.ID] = append(got[f.ID], f.Location.Config)
	}
	return got
}

func TestImageHistoryAddLocal(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{User: "app"}, History: []v1.History{
		// The base image's root file system: not reported.
		{CreatedBy: "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / "},
		{CreatedBy: "/bin/sh -c #(nop)  CMD [\"bash\"]", EmptyLayer: true},
		// Classic builder: the source name is gone, so reported (dockle CIS-DI-0009).
		{CreatedBy: "/bin/sh -c #(nop) ADD file:0f2d1c2b3a4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4 in /srv/ "},
		{CreatedBy: "/bin/sh -c #(nop) ADD dir:9a8b7c6d5e4f in /srv/static "},
		// BuildKit: names kept; archives are ADD's legitimate use.
		{CreatedBy: "ADD app.py /srv/ # buildkit"},
		{CreatedBy: "ADD --chown=app:app rootfs.tar.xz /opt/ # buildkit"},
		{CreatedBy: `ADD ["conf d/app.conf", "/etc/app/"] # buildkit`},
		// Remote: MSC-IMG-004, not this check.
		{CreatedBy: "ADD https://example.org/tool.tgz /opt/ # buildkit"},
		{CreatedBy: "COPY app.py /srv/ # buildkit"},
	}}
	got := findingsAt(cfg)
	if strings.Join(got[ImgAddLocal], ",") != "History[2],History[3],History[4],History[6]" {
		t.Errorf("%s at %v", ImgAddLocal, got[ImgAddLocal])
	}
	if strings.Join(got[ImgAddRemote], ",") != "History[7]" {
		t.Errorf("%s at %v", ImgAddRemote, got[ImgAddRemote])
	}
	// A first ADD that is not to / is not a base root file system.
	cfg = &v1.ConfigFile{Config: v1.Config{User: "app"}, History: []v1.History{{CreatedBy: "ADD app /srv/ # buildkit"}}}
	if len(findingsAt(cfg)[ImgAddLocal]) != 1 {
		t.Errorf("scratch-based ADD not reported")
	}
}

func TestImageVolumesAndBaseLabel(t *testing.T) {
	vols := map[string]struct{}{}
	for _, v := range []string{"/etc", "/proc/sys", "/var/lib/postgresql/data", "/dev", "/etc/nginx/conf.d", "/root/", "/data", "C:\\data", "/sysroot"} {
		vols[v] = struct{}{}
	}
	cfg := &v1.ConfigFile{Config: v1.Config{User: "app", Volumes: vols,
		Labels: map[string]string{"org.opencontainers.image.base.name": "docker.io/library/alpine:latest"}}}
	var ev []string
	fs := CheckImage(cfg, ImageFacts{})
	for _, f := range fs {
		if f.ID == ImgSensitiveVolume {
			ev = append(ev, f.Evidence)
		}
	}
	if strings.Join(ev, ",") != "VOLUME /dev,VOLUME /etc,VOLUME /proc/sys,VOLUME /root/" {
		t.Errorf("volumes %v", ev)
	}
	expect(t, "latest base label", fs, []string{ImgLatestBase, ImgSensitiveVolume}, nil)

	for _, labels := range []map[string]string{
		{"org.opencontainers.image.base.name": "docker.io/library/alpine:3.20"},
		{"org.opencontainers.image.base.name": "alpine:latest", "org.opencontainers.image.base.digest": "sha256:0123"},
		{"org.opencontainers.image.base.name": "alpine@sha256:0123"},
		{"org.opencontainers.image.base.name": "scratch"},
		{"maintainer": "x"},
	} {
		cfg := &v1.ConfigFile{Config: v1.Config{User: "app", Labels: labels}}
		expect(t, "labels", CheckImage(cfg, ImageFacts{}), nil, []string{ImgLatestBase})
	}
	cfg = &v1.ConfigFile{Config: v1.Config{User: "app", Labels: map[string]string{"org.opencontainers.image.base.name": "registry.local:5000/team/base"}}}
	expect(t, "untagged base label", CheckImage(cfg, ImageFacts{}), []string{ImgLatestBase}, nil)
}

// TestImageHistoryPackageChecks: dockle DKL-DI-0003/0004/0005 and trivy
// DS-0024/0025 on the build's own record of each RUN.
func TestImageHistoryPackageChecks(t *testing.T) {
	cfg := &v1.ConfigFile{Config: v1.Config{User: "app"}, History: []v1.History{
		{CreatedBy: "/bin/sh -c apt-get update"},
		{CreatedBy: "/bin/sh -c apt-get install -y openssh-server curl"},
		{CreatedBy: "/bin/sh -c apt-get dist-upgrade -y"},
		{CreatedBy: "/bin/sh -c apk add curl"},
		{CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* # buildkit"},
		{CreatedBy: "RUN /bin/sh -c apk add --no-cache tini # buildkit"},
		{CreatedBy: "RUN --mount=type=cache,target=/var/lib/apt,sharing=locked /bin/sh -c apt-get update && apt-get install -y --no-install-recommends git # buildkit"},
		{CreatedBy: "|1 V=1 /bin/sh -c yum install -y httpd && yum clean all"},
		{CreatedBy: "/bin/sh -c microdnf install -y nginx"},
		{CreatedBy: "RUN |1 V=2 --mount=type=secret,id=npm /bin/sh -c apk add git # buildkit"},
		{CreatedBy: "RUN --network=none |1 V=2 /bin/sh -c apt-get -y dist-upgrade # buildkit"},
		{CreatedBy: "/bin/sh -c bash -c \"apk add curl\""},
		// apt-get without -y and cd are Dockerfile-only checks.
		{CreatedBy: "/bin/sh -c cd /src && apt-get install --no-install-recommends make"},
	}}
	got := findingsAt(cfg)
	if strings.Join(got[DFPkgCache], ",") != "History[0],History[3],History[8],History[9],History[11]" {
		t.Errorf("%s at %v", DFPkgCache, got[DFPkgCache])
	}
	if strings.Join(got[DFDistUpgrade], ",") != "History[2],History[10]" {
		t.Errorf("%s at %v", DFDistUpgrade, got[DFDistUpgrade])
	}
	if len(got[DFAptNoYes]) != 0 || len(got[DFRunCd]) != 0 {
		t.Errorf("Dockerfile-only checks on history: %v", got)
	}
}
