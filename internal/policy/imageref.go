package policy

import "strings"

// imageRef is an image reference split the way container runtimes read it:
// [registry/]repository[:tag][@digest], with Docker Hub's defaults
// (docker.io, library/) filled in.
type imageRef struct {
	raw        string
	registry   string // lower-case host[:port]; "docker.io" when none is written
	repository string // path without the registry ("library/nginx")
	tag        string
	digest     string
}

// parseImageRef never fails: a malformed reference keeps what could be read
// (the runtime would refuse it anyway; the policy still sees its parts).
func parseImageRef(s string) imageRef {
	r := imageRef{raw: s}
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.digest = rest[i+1:]
		rest = rest[:i]
	}
	// A tag is after the last colon that follows the last slash.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		r.tag = rest[i+1:]
		rest = rest[:i]
	}
	first, path, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost" || hasUpper(first)) {
		r.registry = strings.ToLower(first)
		r.repository = path
	} else {
		r.registry = "docker.io"
		r.repository = rest
		if !hasSlash {
			r.repository = "library/" + rest
		}
	}
	if r.registry == "index.docker.io" || r.registry == "registry-1.docker.io" {
		r.registry = "docker.io"
	}
	return r
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// name is registry/repository.
func (r imageRef) name() string { return r.registry + "/" + r.repository }

// full is the normalized reference: registry/repository[:tag][@digest].
func (r imageRef) full() string {
	s := r.name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// latest: tagged latest, or neither tagged nor pinned (which pulls latest).
func (r imageRef) latest() bool {
	return r.tag == "latest" || (r.tag == "" && r.digest == "")
}

// defaultPullPolicy is what Kubernetes fills in when imagePullPolicy is
// unset: Always for latest (explicit or implied), IfNotPresent otherwise.
func (r imageRef) defaultPullPolicy() string {
	if r.latest() {
		return "Always"
	}
	return "IfNotPresent"
}
