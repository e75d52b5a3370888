package misconfig

import (
	"testing"
)

// The trivy DS checks mamori lacked (bench/README.md), on Dockerfiles.
func TestDockerfileLintChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		want string
		line int
	}{
		{"apk no cache", "FROM alpine:3.20\nRUN apk add curl\n", DFPkgCache, 2},
		{"apk update add", "FROM alpine:3.20\nRUN apk --update add curl\n", DFPkgCache, 2},
		{"apt lists kept", "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n", DFPkgCache, 2},
		{"apt lists removed before update", "FROM debian:12\nRUN rm -rf /var/lib/apt/lists/* && apt-get update && apt-get install -y --no-install-recommends curl\n", DFPkgCache, 2},
		{"apt env prefix", "FROM debian:12\nRUN DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl\n", DFPkgCache, 2},
		{"sudo apk", "FROM alpine:3.20\nUSER app\nRUN sudo -E apk add curl\n", DFPkgCache, 3},
		{"yum in if", "FROM centos:7\nRUN if true; then yum install -y httpd; fi\n", DFPkgCache, 2},
		{"yum no clean", "FROM centos:7\nRUN yum install -y httpd\n", DFPkgCache, 2},
		{"yum clean before install", "FROM centos:7\nRUN yum clean all && yum -y install httpd\n", DFPkgCache, 2},
		{"dnf no clean", "FROM fedora:40\nRUN dnf -y --setopt=install_weak_deps=False install nginx\n", DFPkgCache, 2},
		{"microdnf no clean", "FROM ubi9/ubi-minimal:9.4\nRUN microdnf install -y nginx\n", DFPkgCache, 2},
		{"zypper no clean", "FROM opensuse/leap:15.6\nRUN zypper -n in nginx\n", DFPkgCache, 2},
		{"dist-upgrade", "FROM debian:12\nRUN apt-get update && apt-get -y dist-upgrade && rm -rf /var/lib/apt/lists/*\n", DFDistUpgrade, 2},
		{"full-upgrade", "FROM debian:12\nRUN apt full-upgrade -y\n", DFDistUpgrade, 2},
		{"apt-get no -y", "FROM debian:12\nRUN apt-get install --no-install-recommends curl\n", DFAptNoYes, 2},
		{"apt-get -y elsewhere", "FROM debian:12\nRUN apt-get install -y --no-install-recommends a && apt-get install --no-install-recommends b\n", DFAptNoYes, 2},
		{"two CMD", "FROM alpine:3.20\nCMD [\"a\"]\nUSER app\nCMD [\"b\"]\n", DFRepeated, 4},
		{"two ENTRYPOINT", "FROM alpine:3.20\nENTRYPOINT a\nENTRYPOINT b\n", DFRepeated, 3},
		{"two HEALTHCHECK", "FROM alpine:3.20\nHEALTHCHECK CMD a\nHEALTHCHECK CMD b\n", DFRepeated, 3},
		{"duplicate alias", "FROM golang:1.26 AS build\nRUN true\nFROM golang:1.26 AS Build\n", DFStageAlias, 3},
		{"copy from itself", "FROM golang:1.26 AS build\nCOPY --from=build /a /b\n", DFStageAlias, 2},
		{"copy from own index", "FROM golang:1.26\nCOPY --from=0 /a /b\n", DFStageAlias, 2},
		{"port out of range", "FROM alpine:3.20\nEXPOSE 8080 65536/tcp\n", DFPortRange, 2},
		{"port range out of range", "FROM alpine:3.20\nEXPOSE 65000-70000\n", DFPortRange, 2},
		{"port overflow", "FROM alpine:3.20\nEXPOSE 99999999999999999999999\n", DFPortRange, 2},
		{"relative workdir", "FROM alpine:3.20\nWORKDIR app\n", DFWorkdirRelative, 2},
		{"workdir proc", "FROM alpine:3.20\nWORKDIR /proc/self\n", DFWorkdirSystem, 2},
		{"workdir dev", "FROM alpine:3.20\nWORKDIR \"/dev\"\n", DFWorkdirSystem, 2},
		{"copy dest no slash", "FROM alpine:3.20\nCOPY a b /dest\n", DFCopyDestSlash, 2},
		{"copy json dest no slash", "FROM alpine:3.20\nCOPY [\"a\", \"b\", \"/dest\"]\n", DFCopyDestSlash, 2},
		{"add dest no slash", "FROM alpine:3.20\nADD a.tgz b.tgz /opt\n", DFCopyDestSlash, 2},
		{"run cd", "FROM alpine:3.20\nRUN cd /src && make\n", DFRunCd, 2},
		{"run cd after set", "FROM alpine:3.20\nRUN set -eux; cd /src; make\n", DFRunCd, 2},
		{"curl and wget", "FROM alpine:3.20\nRUN curl -fsSLo a https://x/a\nRUN wget -q https://x/b\n", DFCurlAndWget, 3},
		{"curl and wget one RUN", "FROM alpine:3.20\nRUN wget -q https://x/b && curl -fsSLo a https://x/a\n", DFCurlAndWget, 2},
		{"maintainer", "FROM alpine:3.20\nMAINTAINER someone@example.com\n", DFMaintainer, 2},
	} {
		fs, err := CheckDockerfile("Dockerfile", []byte(tc.df))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, fs, []string{tc.want}, nil)
		for _, f := range fs {
			if f.ID == tc.want && f.Location.StartLine != tc.line {
				t.Errorf("%s: %s at line %d, want %d", tc.name, f.ID, f.Location.StartLine, tc.line)
			}
		}
	}
}

func TestDockerfileLintNegatives(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		not  []string
	}{
		{"apk no-cache", "FROM alpine:3.20\nRUN apk add --no-cache curl && apk --no-cache add git\n", []string{DFPkgCache}},
		{"apk cache removed", "FROM alpine:3.20\nRUN apk add curl && rm -rf /var/cache/apk/*\n", []string{DFPkgCache}},
		{"apk cache mount", "# syntax=docker/dockerfile:1\nFROM alpine:3.20\nRUN --mount=type=cache,target=/var/cache/apk apk add curl\n", []string{DFPkgCache}},
		{"apt cleaned", "FROM debian:12\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends curl \\\n && rm -rf /var/lib/apt/lists/*\n", []string{DFPkgCache, DFAptNoYes}},
		{"apt cache mount", "# syntax=docker/dockerfile:1\nFROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked --mount=type=cache,target=/var/cache/apt apt-get update && apt-get install -y --no-install-recommends gcc\n", []string{DFPkgCache}},
		{"apt install without update", "FROM debian:12\nRUN apt-get install -y --no-install-recommends ./pkg.deb\n", []string{DFPkgCache}},
		{"yum cleaned", "FROM centos:7\nRUN yum -y install httpd && yum clean all && rm -rf /var/cache/yum\n", []string{DFPkgCache}},
		{"dnf cleaned", "FROM fedora:40\nRUN dnf install -y nginx && dnf clean all\n", []string{DFPkgCache}},
		{"microdnf cleaned", "FROM ubi9/ubi-minimal:9.4\nRUN microdnf install -y nginx && microdnf clean all\n", []string{DFPkgCache}},
		{"zypper cleaned", "FROM opensuse/leap:15.6\nRUN zypper -n in nginx && zypper clean -a\n", []string{DFPkgCache}},
		{"package names", "FROM debian:12\nRUN echo apk add && echo yum install\n", []string{DFPkgCache}},
		{"upgrade", "FROM debian:12\nRUN apt-get update && apt-get upgrade -y && rm -rf /var/lib/apt/lists/*\n", []string{DFDistUpgrade, DFPkgCache}},
		{"apt-get -y forms", "FROM debian:12\nRUN apt-get install -qy a && apt-get -y install b && apt-get install --yes c && apt-get -qq install d && apt-get install --assume-yes e && yes | apt-get install f && apt-get -o APT::Get::Assume-Yes=true install g\n", []string{DFAptNoYes}},
		{"apt-get package with y", "FROM debian:12\nRUN apt-get install -y python3-yaml\n", []string{DFAptNoYes}},
		{"one of each per stage", "FROM golang:1.26 AS build\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\nHEALTHCHECK CMD c\nFROM alpine:3.20\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\nHEALTHCHECK CMD c\n", []string{DFRepeated}},
		{"onbuild cmd", "FROM alpine:3.20\nONBUILD CMD [\"x\"]\nCMD [\"y\"]\n", []string{DFRepeated}},
		{"distinct aliases", "FROM golang:1.26 AS build\nFROM alpine:3.20 AS run\nCOPY --from=build /a /b\nCOPY --from=0 /a /c\n", []string{DFStageAlias}},
		{"copy from image", "FROM alpine:3.20\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\n", []string{DFStageAlias}},
		{"ports", "FROM alpine:3.20\nEXPOSE 80 443/tcp 8000-8010 65535 ${PORT}\n", []string{DFPortRange}},
		{"absolute workdirs", "FROM alpine:3.20\nWORKDIR /app\nWORKDIR $HOME/x\nWORKDIR ${APP}\nWORKDIR C:\\\\app\nWORKDIR /devices\nWORKDIR /srv/proc\n", []string{DFWorkdirRelative, DFWorkdirSystem}},
		{"copy dests", "FROM alpine:3.20\nCOPY a b /dest/\nCOPY a /dest\nCOPY a b $DEST\nCOPY --chown=1:1 a /b\n", []string{DFCopyDestSlash}},
		{"cd in subshell", "FROM alpine:3.20\nRUN (cd /src && make) && echo cdrom\n", []string{DFRunCd}},
		{"curl only", "FROM alpine:3.20\nRUN apk add --no-cache curl wget && curl -fsSLo a https://x/a\n", []string{DFCurlAndWget}},
		{"good file", goodDockerfile, []string{DFPkgCache, DFDistUpgrade, DFAptNoYes, DFRepeated, DFStageAlias, DFPortRange,
			DFWorkdirRelative, DFWorkdirSystem, DFCopyDestSlash, DFRunCd, DFCurlAndWget, DFMaintainer}},
	} {
		fs, err := CheckDockerfile("Dockerfile", []byte(tc.df))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, fs, nil, tc.not)
	}
}
