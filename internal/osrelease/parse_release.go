package osrelease

import (
	"bytes"
	"io"
	"regexp"
	"strings"

	"mamori/internal/model"
)

// ParseLSBRelease parses /etc/lsb-release (DISTRIB_ID, DISTRIB_RELEASE,
// DISTRIB_CODENAME, DISTRIB_DESCRIPTION), which Ubuntu and a few derivatives
// ship beside os-release.
func ParseLSBRelease(r io.Reader) (*model.OS, error) {
	data, err := readSmall(r)
	if err != nil {
		return nil, err
	}
	f := parseEnvFile(data)
	id := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(f["DISTRIB_ID"]), " ", ""))
	if id == "" {
		return nil, ErrNoID
	}
	return &model.OS{
		ID:         id,
		VersionID:  f["DISTRIB_RELEASE"],
		Codename:   f["DISTRIB_CODENAME"],
		PrettyName: f["DISTRIB_DESCRIPTION"],
	}, nil
}

// ParseAlpineRelease parses /etc/alpine-release, a single line holding the
// release ("3.18.4", or "3.19_alpha20230901" on edge).
func ParseAlpineRelease(r io.Reader) (*model.OS, error) {
	data, err := readSmall(r)
	if err != nil {
		return nil, err
	}
	v := firstLine(data)
	if v == "" || !versionish(v) {
		return nil, ErrMalformed
	}
	return &model.OS{ID: "alpine", VersionID: v}, nil
}

// releaseLine matches the one line of the Red Hat family's release files:
// "Red Hat Enterprise Linux release 9.3 (Plow)",
// "CentOS Linux release 7.9.2009 (Core)", "CentOS Stream release 9",
// "Rocky Linux release 9.3 (Blue Onyx)",
// "AlmaLinux release 9.3 (Shamrock Pampas Cat)",
// "Fedora release 39 (Thirty Nine)", "Amazon Linux release 2023 (Amazon Linux)",
// "Red Hat Enterprise Linux Server release 7.9 (Maipo)".
var releaseLine = regexp.MustCompile(`^(.+?)\s+release\s+([0-9][0-9A-Za-z._-]*)(?:\s+\((.*)\))?`)

// releaseIDs maps the distribution name of a Red Hat style release line to
// its os-release ID, longest prefixes first.
var releaseIDs = []struct{ prefix, id string }{
	{"red hat enterprise linux", "rhel"},
	{"centos", "centos"},
	{"rocky linux", "rocky"},
	{"almalinux", "almalinux"},
	{"fedora", "fedora"},
	{"amazon linux", "amzn"},
	{"oracle linux", "ol"},
	{"scientific linux", "scientific"},
}

// ParseRedHatRelease parses a Red Hat style release file (redhat-release,
// centos-release, rocky-release, almalinux-release, system-release).
// Unknown distribution names return ErrUnknownDistro.
func ParseRedHatRelease(r io.Reader) (*model.OS, error) {
	data, err := readSmall(r)
	if err != nil {
		return nil, err
	}
	line := firstLine(data)
	m := releaseLine.FindStringSubmatch(line)
	if m == nil {
		return nil, ErrMalformed
	}
	name := strings.ToLower(m[1])
	for _, r := range releaseIDs {
		if strings.HasPrefix(name, r.prefix) {
			os := &model.OS{ID: r.id, VersionID: m[2], PrettyName: line}
			if c := strings.ToLower(m[3]); c != "" && c != "core" && c != "final" && !strings.Contains(c, "linux") {
				os.Codename = m[3]
			}
			return os, nil
		}
	}
	return nil, ErrUnknownDistro
}

// ParseDebianVersion parses /etc/debian_version: a point release on stable
// ("12.5", "11.9") or "<codename>/sid" on testing and unstable
// ("trixie/sid"). Ubuntu ships one too ("bookworm/sid"), which is why it
// ranks last in Resolve.
func ParseDebianVersion(r io.Reader) (*model.OS, error) {
	data, err := readSmall(r)
	if err != nil {
		return nil, err
	}
	v := firstLine(data)
	switch {
	case v == "":
		return nil, ErrMalformed
	case v[0] >= '0' && v[0] <= '9' && versionish(v):
		return &model.OS{ID: "debian", VersionID: v}, nil
	default:
		codename, _, _ := strings.Cut(v, "/")
		if !versionish(codename) {
			return nil, ErrMalformed
		}
		return &model.OS{ID: "debian", Codename: codename}, nil
	}
}

// versionish reports whether s looks like a release string or codename:
// short, and only letters, digits, '.', '_', '-' and '~'.
func versionish(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-' || c == '~') {
			return false
		}
	}
	return true
}

func readSmall(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxReleaseFileSize+1))
	if err != nil {
		return nil, err
	}
	if n > maxReleaseFileSize {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}
