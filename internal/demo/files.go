package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// debPkg is one dpkg status paragraph of the demo's base layer. The
// versions are real Debian 12 versions that have advisories in the bundled
// data (old point releases), so the demo shows both fixed and open issues.
type debPkg struct{ name, version, source, arch, desc string }

var debPkgs = []debPkg{
	{"base-files", "12.4+deb12u1", "", "amd64", "Debian base system miscellaneous files"},
	{"bash", "5.2.15-2+b2", "", "amd64", "GNU Bourne Again SHell"},
	{"coreutils", "9.1-1", "", "amd64", "GNU core utilities"},
	{"curl", "7.88.1-10+deb12u4", "", "amd64", "command line tool for transferring data with URL syntax"},
	{"libcurl4", "7.88.1-10+deb12u4", "curl", "amd64", "easy-to-use client-side URL transfer library (OpenSSL flavour)"},
	{"libc6", "2.36-9+deb12u1", "glibc", "amd64", "GNU C Library: Shared libraries"},
	{"libc-bin", "2.36-9+deb12u1", "glibc", "amd64", "GNU C Library: Binaries"},
	{"libgnutls30", "3.7.9-2", "gnutls28", "amd64", "GNU TLS library - main runtime library"},
	{"libssl3", "3.0.11-1~deb12u1", "openssl", "amd64", "Secure Sockets Layer toolkit - shared libraries"},
	{"openssl", "3.0.11-1~deb12u1", "", "amd64", "Secure Sockets Layer toolkit - cryptographic utility"},
	{"libsqlite3-0", "3.40.1-2", "sqlite3", "amd64", "SQLite 3 shared library"},
	{"libsystemd0", "252.17-1~deb12u1", "systemd", "amd64", "systemd utility library"},
	{"libudev1", "252.17-1~deb12u1", "systemd", "amd64", "libudev shared library"},
	{"libtinfo6", "6.4-4", "ncurses", "amd64", "shared low-level terminfo library for terminal handling"},
	{"ncurses-base", "6.4-4", "ncurses", "all", "basic terminal type definitions"},
	{"libxml2", "2.9.14+dfsg-1.3~deb12u1", "", "amd64", "GNOME XML library"},
	{"perl-base", "5.36.0-7+deb12u1", "perl", "amd64", "minimal Perl system"},
	{"tar", "1.34+dfsg-1.2+deb12u1", "", "amd64", "GNU version of the tar archiving utility"},
	{"zlib1g", "1:1.2.13.dfsg-1", "zlib", "amd64", "compression library - runtime"},
	{"openssh-server", "1:9.2p1-2+deb12u1", "openssh", "amd64", "secure shell (SSH) server, for secure access from remote machines"},
}

func dpkgStatus() string {
	var b strings.Builder
	for _, p := range debPkgs {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 1024\n", p.name)
		fmt.Fprintf(&b, "Maintainer: Debian Developers <debian-devel@lists.debian.org>\nArchitecture: %s\n", p.arch)
		if p.source != "" {
			fmt.Fprintf(&b, "Source: %s\n", p.source)
		}
		fmt.Fprintf(&b, "Version: %s\nDescription: %s\n This package is part of the mamori demo image.\n\n", p.version, p.desc)
	}
	return b.String()
}

func baseFiles() map[string]file {
	return map[string]file{
		"etc/os-release": {body: `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`},
		"etc/debian_version":  {body: "12.2\n"},
		"var/lib/dpkg/status": {body: dpkgStatus()},
		"usr/bin/passwd":      {body: "\x7fELF demo placeholder\n", mode: 0o4755},
		"usr/sbin/sshd":       {body: "\x7fELF demo placeholder\n", mode: 0o755},
	}
}

type npmPkg struct{ name, version string }

var npmPkgs = []npmPkg{
	{"express", "4.17.1"}, {"lodash", "4.17.20"}, {"minimist", "1.2.5"}, {"qs", "6.7.0"},
	{"body-parser", "1.19.0"}, {"debug", "2.6.9"}, {"ms", "2.0.0"}, {"cookie", "0.4.0"},
	{"send", "0.17.1"}, {"path-to-regexp", "0.1.7"}, {"serve-static", "1.14.1"}, {"accepts", "1.3.7"},
}

type pyPkg struct{ name, version, license string }

var pyPkgs = []pyPkg{
	{"requests", "2.25.1", "Apache 2.0"}, {"urllib3", "1.26.4", "MIT"}, {"PyYAML", "5.3.1", "MIT"}, {"Jinja2", "2.11.2", "BSD-3-Clause"},
}

func appFiles() map[string]file {
	fs := map[string]file{}
	deps := []string{}
	for _, p := range npmPkgs {
		fs["srv/app/node_modules/"+p.name+"/package.json"] = file{body: fmt.Sprintf(`{
  "name": %q,
  "version": %q,
  "description": "demo copy of %s",
  "license": "MIT",
  "main": "index.js"
}
`, p.name, p.version, p.name)}
		deps = append(deps, fmt.Sprintf("    %q: %q", p.name, p.version))
	}
	fs["srv/app/package.json"] = file{body: "{\n  \"name\": \"checkout\",\n  \"version\": \"1.4.2\",\n  \"private\": true,\n  \"dependencies\": {\n" + strings.Join(deps, ",\n") + "\n  }\n}\n"}
	fs["srv/app/server.js"] = file{body: "const express = require('express');\nconst app = express();\napp.listen(8080);\n"}
	for _, p := range pyPkgs {
		dir := fmt.Sprintf("usr/local/lib/python3.11/site-packages/%s-%s.dist-info/", p.name, p.version)
		fs[dir+"METADATA"] = file{body: fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: demo copy of %s\nLicense: %s\n\n", p.name, p.version, p.name, p.license)}
	}
	// Planted secrets, assembled at run time so that this source file is
	// not itself a finding of secret scanners.
	fs["srv/app/.env"] = file{body: strings.Join([]string{
		"AWS_ACCESS_KEY_ID=" + "AKIA" + "IOSFODNN7DEMOKEY",
		"AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYDEMOMAMORI",
		"GITHUB_TOKEN=" + "ghp_" + "Dem0MamoriT0kenAbCdEfGhIjKlMnOpQrStUv",
		"DATABASE_URL=postgres://checkout:" + "S3cr3t-Pa55w0rd" + "@db.internal:5432/shop",
	}, "\n") + "\n"}
	fs["root/.ssh/id_rsa"] = file{body: demoKey(), mode: 0o600}
	eicar := strings.Join([]string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}, "")
	fs["srv/app/uploads/invoice-2291.pdf.exe"] = file{body: eicar}
	fs["srv/app/deploy/deployment.yaml"] = file{body: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
    spec:
      hostNetwork: true
      containers:
      - name: checkout
        image: demo.mamori.dev/shop/checkout:latest
        securityContext:
          privileged: true
        volumeMounts:
        - {name: docker, mountPath: /var/run/docker.sock}
      volumes:
      - name: docker
        hostPath: {path: /var/run/docker.sock}
`}
	fs["srv/app/tmp/cache.db"] = file{body: "cache\n", mode: 0o666}
	return fs
}

// demoKey is a freshly generated RSA key: a real private key for the
// secret scanner to find, worthless to anyone else.
func demoKey() string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return "" // crypto/rand does not fail on supported platforms
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}
