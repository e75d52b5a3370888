package misconfig

import (
	"errors"
	"strings"
	"testing"
)

const goodDockerfile = `# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN go build -o /app ./cmd/app

FROM gcr.io/distroless/static:nonroot@sha256:0000000000000000000000000000000000000000000000000000000000000000
COPY --from=build /app /app
ADD rootfs.tar.gz /
ARG VERSION=1.0
ENV APP_MODE=production PASSWORD_FILE=/run/secrets/db
EXPOSE 8080
HEALTHCHECK CMD ["/app", "health"]
USER 65532:65532
ENTRYPOINT ["/app"]
`

func TestDockerfileGood(t *testing.T) {
	fs, err := CheckDockerfile("Dockerfile", []byte(goodDockerfile))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("clean Dockerfile: %+v", fs)
	}
}

func TestDockerfileChecks(t *testing.T) {
	tok := "gh" + "p_" + strings.Repeat("Qw3rTy7uIo", 3) + "P0aSdF"
	for _, tc := range []struct {
		name string
		df   string
		want []string
		line int // line of the first wanted finding, 0 = do not check
	}{
		{"no user", "FROM alpine:3.20\nRUN true\n", []string{DFRootUser}, 1},
		{"root user", "FROM alpine:3.20\nUSER app\nUSER root\n", []string{DFRootUser}, 3},
		{"user 0:0", "FROM alpine:3.20\nUSER 0:0\n", []string{DFRootUser}, 2},
		{"user in earlier stage only", "FROM alpine:3.20 AS a\nUSER app\nFROM alpine:3.20\nRUN true\n", []string{DFRootUser}, 3},
		{"no healthcheck", "FROM alpine:3.20\nUSER app\n", []string{DFNoHealthcheck}, 0},
		{"healthcheck none", "FROM alpine:3.20\nHEALTHCHECK NONE\nUSER app\n", []string{DFNoHealthcheck}, 0},
		{"add url", "FROM alpine:3.20\nADD https://example.org/x.sh /x.sh\n", []string{DFAddURL}, 2},
		{"add local", "FROM alpine:3.20\nADD app.py /app/\n", []string{DFAddLocal}, 2},
		{"update alone", "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n", []string{DFUpdateAlone}, 2},
		{"update alone continued", "FROM debian:12\nRUN set -eux; \\\n    apt-get update\n", []string{DFUpdateAlone}, 2},
		{"latest", "FROM ubuntu:latest\n", []string{DFUnpinnedBase}, 1},
		{"untagged", "FROM --platform=linux/amd64 ubuntu\n", []string{DFUnpinnedBase}, 1},
		{"untagged registry port", "FROM registry.local:5000/team/app\n", []string{DFUnpinnedBase}, 1},
		{"sudo", "FROM debian:12\nRUN sudo make install\n", []string{DFSudo}, 2},
		{"curl pipe sh", "FROM debian:12\nRUN curl -fsSL https://get.example.sh | sh\n", []string{DFPipeToShell}, 2},
		{"wget pipe sudo bash", "FROM debian:12\nRUN wget -qO- https://x.io/i | sudo -E bash -\n", []string{DFPipeToShell, DFSudo}, 2},
		{"sh -c curl", "FROM debian:12\nRUN sh -c \"$(curl -fsSL https://x.io/i)\"\n", []string{DFPipeToShell}, 2},
		{"env secret", "FROM debian:12\nENV GITHUB_TOKEN=" + tok + "\n", []string{DFSecretValue}, 2},
		{"env password literal", "FROM debian:12\nENV DB_PASSWORD changeme\n", []string{DFSecretValue}, 2},
		{"arg default secret", "FROM debian:12\nARG API_KEY=Zk38fJq02LmXw9\n", []string{DFSecretValue}, 2},
		{"sensitive arg", "FROM debian:12\nARG NPM_TOKEN\nRUN npm ci\n", []string{DFSensitiveArg}, 2},
		{"no recommends", "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n", []string{DFNoInstallRecs}, 2},
		{"expose 22", "FROM debian:12\nEXPOSE 80 22/tcp\n", []string{DFExposeSSH}, 2},
		{"chmod 777", "FROM debian:12\nRUN chmod -R 777 /data\n", []string{DFChmodWorld}, 2},
		{"chmod o+w", "FROM debian:12\nRUN chmod o+w /data/x\n", []string{DFChmodWorld}, 2},
		{"heredoc update", "# syntax=docker/dockerfile:1\nFROM debian:12\nRUN <<EOF\napt-get update\nEOF\n", []string{DFUpdateAlone}, 3},
		{"escape directive", "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN curl.exe -o x https://a `\n  | sh\n", []string{DFUnpinnedBase, DFPipeToShell}, 2},
	} {
		fs, err := CheckDockerfile("Dockerfile", []byte(tc.df))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, fs, tc.want, nil)
		if tc.line > 0 {
			for _, f := range fs {
				if f.ID == tc.want[0] && f.Location.StartLine != tc.line {
					t.Errorf("%s: %s at line %d, want %d", tc.name, f.ID, f.Location.StartLine, tc.line)
				}
			}
		}
		for _, f := range fs {
			if strings.Contains(f.Evidence, tok) || strings.Contains(f.Evidence, "Zk38fJq02LmXw9") {
				t.Errorf("%s: raw secret in evidence %q", tc.name, f.Evidence)
			}
		}
	}
}

func TestDockerfileNegatives(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		not  []string
	}{
		{"stage ref", "FROM golang:1.26 AS build\nFROM build\n", []string{DFUnpinnedBase}},
		{"scratch", "FROM scratch\n", []string{DFUnpinnedBase}},
		{"arg base", "ARG BASE=debian:12\nFROM ${BASE}\n", []string{DFUnpinnedBase}},
		{"add checksum", "FROM debian:12\nADD --checksum=sha256:abc https://x.org/a.tgz /a\n", []string{DFAddURL}},
		{"add archive", "FROM debian:12\nADD rootfs.tar.xz /\n", []string{DFAddLocal}},
		{"update with install", "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n", []string{DFUpdateAlone, DFNoInstallRecs}},
		{"apt config no recs", "FROM debian:12\nRUN apt-get -o APT::Install-Recommends=false install -y curl\n", []string{DFNoInstallRecs}},
		{"sudo word", "FROM debian:12\nRUN echo pseudo && grep sudoers /etc/x\n", []string{DFSudo}},
		{"curl to file", "FROM debian:12\nRUN curl -o /tmp/i.sh https://x && sha256sum -c s && sh /tmp/i.sh\n", []string{DFPipeToShell}},
		{"env ref", "FROM debian:12\nENV DB_PASSWORD=$DB_PASSWORD TOKEN_URL=https://x\n", []string{DFSecretValue, DFSensitiveArg}},
		{"password file", "FROM debian:12\nARG PASSWORD_FILE=/run/secrets/pw\n", []string{DFSecretValue, DFSensitiveArg}},
		{"expose 2222", "FROM debian:12\nEXPOSE 2222 8022\n", []string{DFExposeSSH}},
		{"chmod 755", "FROM debian:12\nRUN chmod 755 /x && chmod u+w /y && chmod 0644 /z\n", []string{DFChmodWorld}},
	} {
		fs, err := CheckDockerfile("Dockerfile", []byte(tc.df))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, fs, nil, tc.not)
	}
}

func TestDockerfileErrors(t *testing.T) {
	if _, err := CheckDockerfile("Dockerfile", make([]byte, MaxDockerfileSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	fs, err := CheckDockerfile("Dockerfile", []byte(""))
	if err == nil && len(fs) != 0 {
		t.Errorf("empty: %v %v", fs, err)
	}
}
