package policy

import (
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Workload and image checks beyond the Pod Security Standards.

// ctlReadOnlyRootFS: every container mounts its root file system read-only
// (Windows pods are exempt: they cannot).
func ctlReadOnlyRootFS(s *state) {
	if isWindows(s.spec) {
		return
	}
	eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
		if sc := c.SecurityContext; sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) {
			s.fail(CtlReadOnlyRootFS, s.ctrField(list, i, "securityContext.readOnlyRootFilesystem"), c.Name, c.Image,
				"container "+ctrName(c)+" has a writable root file system")
		}
	})
}

// ctlResources: limits and requests set on init and regular containers
// (ephemeral containers may not have resources).
func ctlResources(limits, requests []string) func(*state) {
	return func(s *state) {
		check := func(list string, i int, c *corev1.Container) {
			if list == listEphemeral {
				return
			}
			for _, r := range limits {
				if _, ok := c.Resources.Limits[corev1.ResourceName(r)]; !ok {
					s.fail(CtlResources, s.ctrField(list, i, "resources.limits."+r), c.Name, c.Image,
						"container "+ctrName(c)+" has no "+r+" limit")
				}
			}
			for _, r := range requests {
				if _, ok := c.Resources.Requests[corev1.ResourceName(r)]; !ok {
					s.fail(CtlResources, s.ctrField(list, i, "resources.requests."+r), c.Name, c.Image,
						"container "+ctrName(c)+" has no "+r+" request")
				}
			}
		}
		eachContainer(s.spec, check)
	}
}

// ctlPullPolicy: the effective imagePullPolicy must be allowed.
func ctlPullPolicy(allowed []string) func(*state) {
	return func(s *state) {
		eachContainer(s.spec, func(list string, i int, c *corev1.Container) {
			p := string(c.ImagePullPolicy)
			if p == "" {
				p = parseImageRef(c.Image).defaultPullPolicy()
			}
			if !slices.Contains(allowed, p) {
				s.fail(CtlImagePullPolicy, s.ctrField(list, i, "imagePullPolicy"), c.Name, c.Image,
					"container "+ctrName(c)+" pulls with policy "+p+" (allowed: "+strings.Join(allowed, ", ")+")")
			}
		})
	}
}

// ctlAutomountToken: the pod must opt out of mounting its service account
// token. A pod that leaves the field unset gets the token unless its service
// account opts out, which the pod alone does not show: it is reported.
func ctlAutomountToken(s *state) {
	if a := s.spec.AutomountServiceAccountToken; a == nil || *a {
		s.fail(CtlAutomountToken, s.specField("automountServiceAccountToken"), "", "",
			"pod mounts its service account token (set automountServiceAccountToken: false)")
	}
}

// registryCheck restricts where images come from.
type registryCheck struct {
	allowHosts, denyHosts []string
	allowRepos, denyRepos globs
}

func newRegistryCheck(r *Registries) *registryCheck {
	c := &registryCheck{}
	split := func(entries []string) (hosts []string, repos globs) {
		for _, e := range entries {
			if strings.Contains(e, "/") {
				repos = append(repos, newGlob(strings.ToLower(e)))
			} else {
				hosts = append(hosts, normalizeRegistry(e))
			}
		}
		return hosts, repos
	}
	c.allowHosts, c.allowRepos = split(r.Allow)
	c.denyHosts, c.denyRepos = split(r.Deny)
	return c
}

func normalizeRegistry(h string) string {
	h = strings.ToLower(h)
	if h == "index.docker.io" || h == "registry-1.docker.io" {
		return "docker.io"
	}
	return h
}

// hostMatch: a host entry may be a glob ("*.example.com").
func hostMatch(entries []string, host string) bool {
	for _, e := range entries {
		if e == host || (strings.ContainsAny(e, "*?") && wildcard(e, host)) {
			return true
		}
	}
	return false
}

func (c *registryCheck) image(s *state, im *imageInfo) {
	host, repo := im.ref.registry, strings.ToLower(im.ref.name())
	switch {
	case hostMatch(c.denyHosts, host) || c.denyRepos.any(repo):
		s.failImage(CtlRegistries, im, "image "+strconv.Quote(im.ref.raw)+" comes from a denied registry ("+host+")")
	case (len(c.allowHosts) > 0 || len(c.allowRepos) > 0) && !hostMatch(c.allowHosts, host) && !c.allowRepos.any(repo):
		s.failImage(CtlRegistries, im, "image "+strconv.Quote(im.ref.raw)+" does not come from an allowed registry ("+host+")")
	}
}

func ctlLatestTag(s *state, im *imageInfo) {
	if im.ref.digest == "" && im.ref.latest() {
		what := "has no tag (pulls latest)"
		if im.ref.tag != "" {
			what = "is tagged latest"
		}
		s.failImage(CtlLatestTag, im, "image "+strconv.Quote(im.ref.raw)+" "+what)
	}
}

func ctlRequireDigest(s *state, im *imageInfo) {
	if im.ref.digest == "" {
		s.failImage(CtlRequireDigest, im, "image "+strconv.Quote(im.ref.raw)+" is not pinned by digest")
	}
}

// podAccessCheck matches exec/attach/portforward requests.
type podAccessCheck struct {
	ops           []string
	users, groups globs
}

func (c *podAccessCheck) access(s *state, a *Access) {
	if len(c.ops) > 0 && !slices.Contains(c.ops, a.Operation) {
		return
	}
	if c.users.any(a.User) {
		return
	}
	for _, g := range a.Groups {
		if c.groups.any(g) {
			return
		}
	}
	msg := a.Operation + " into pod " + a.Namespace + "/" + a.Pod
	if a.Container != "" {
		msg += " container " + strconv.Quote(a.Container)
	}
	if len(a.Command) > 0 {
		msg += " (" + strconv.Quote(strings.Join(a.Command, " ")) + ")"
	}
	if a.User != "" {
		msg += " by " + a.User
	}
	s.fail(CtlPodAccess, "", a.Container, "", msg)
}

func cleanAbs(p string) string { return path.Clean("/" + p) }
