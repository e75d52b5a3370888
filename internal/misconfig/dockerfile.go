package misconfig

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"mamori/internal/model"
	"mamori/internal/secret"
)

// Check IDs of this file.
const (
	DFRootUser      = "MSC-DF-001"
	DFNoHealthcheck = "MSC-DF-002"
	DFAddURL        = "MSC-DF-003"
	DFAddLocal      = "MSC-DF-004"
	DFUpdateAlone   = "MSC-DF-005"
	DFUnpinnedBase  = "MSC-DF-006"
	DFSudo          = "MSC-DF-007"
	DFPipeToShell   = "MSC-DF-008"
	DFSecretValue   = "MSC-DF-009"
	DFSensitiveArg  = "MSC-DF-010"
	DFNoInstallRecs = "MSC-DF-011"
	DFExposeSSH     = "MSC-DF-012"
	DFChmodWorld    = "MSC-DF-013"
	DFPkgCache      = "MSC-DF-014"
	DFDistUpgrade   = "MSC-DF-015"
	DFStageAlias    = "MSC-DF-018"
	DFPortRange     = "MSC-DF-019"
	DFCurlAndWget   = "MSC-DF-024"
	DFMaintainer    = "MSC-DF-025"
)

// dockerfileChecks are the Dockerfile checks of this file: metadata here, logic below, tests in dockerfile_test.go.
func dockerfileChecks() []CheckInfo {
	return []CheckInfo{
		df(DFRootUser, "Final stage runs as root", high,
			"The last stage has no USER instruction, or its last USER is root (0).",
			"Add USER <non-root user> near the end of the final stage.", nistImageConfig, "CIS-Docker-4.1").withPeers("DS-0002"),
		df(DFNoHealthcheck, "No HEALTHCHECK instruction", low,
			"The Dockerfile has no HEALTHCHECK (or HEALTHCHECK NONE).",
			"Add a HEALTHCHECK instruction (orchestrators use their own probes instead).", nistImageConfig, "CIS-Docker-4.6").withPeers("DS-0026"),
		df(DFAddURL, "ADD from a URL", med,
			"ADD fetches a remote URL without verifying it.",
			"Use curl/wget with checksum verification, or ADD --checksum=sha256:...", nistImageConfig, nistUntrustedImages, "CIS-Docker-4.9"),
		df(DFAddLocal, "ADD used instead of COPY", low,
			"ADD of a local file that is not an archive: ADD's implicit extraction and URL handling are surprises waiting to happen.",
			"Use COPY.", nistImageConfig, "CIS-Docker-4.9").withPeers("DS-0005"),
		df(DFUpdateAlone, "Package index update without install", med,
			"A RUN updates the package index (apt-get update, apk update ...) without installing in the same RUN; the layer cache keeps a stale index.",
			"Update and install in one RUN.", nistImageConfig, "CIS-Docker-4.7").withPeers("DS-0017"),
		df(DFUnpinnedBase, "Base image not pinned", med,
			"FROM names an image with no tag or the tag latest: builds are not reproducible and may pull an untrusted or changed base.",
			"Pin the base image by a version tag and, better, a digest (image:tag@sha256:...).", nistUntrustedImages, nistStaleImages).withPeers("DS-0001"),
		df(DFSudo, "RUN uses sudo", med,
			"sudo in a Dockerfile hides privilege changes and leaves sudo installed.",
			"Run privileged steps before USER switches to the unprivileged user; do not install sudo.", nistImageConfig).withPeers("DS-0010", "DKL-DI-0001"),
		df(DFPipeToShell, "Downloaded script piped into a shell", high,
			"A RUN pipes curl or wget output straight into a shell: whatever the server returns is executed unverified.",
			"Download to a file, verify its checksum or signature, then run it.", nistUntrustedImages, nistImageConfig),
		df(DFSecretValue, "Secret in ENV or ARG", crit,
			"An ENV or ARG instruction holds a credential; it is stored in the image configuration or its history.",
			"Remove and revoke it; use RUN --mount=type=secret or runtime secrets.", nistImageSecrets, "CIS-Docker-4.10").withPeers("DS-0031"),
		df(DFSensitiveArg, "Secret passed as a build argument", med,
			"An ARG whose name says it holds a secret (PASSWORD, TOKEN, API_KEY ...): build argument values used by RUN are recorded in the image history.",
			"Use RUN --mount=type=secret,id=... instead of build arguments.", nistImageSecrets, "CIS-Docker-4.10").withPeers("DS-0031"),
		df(DFNoInstallRecs, "apt-get install without --no-install-recommends", low,
			"apt-get install pulls recommended packages too, growing the attack surface.",
			"Add --no-install-recommends.", nistImageConfig, "CIS-Docker-4.3").withPeers("DS-0029"),
		df(DFExposeSSH, "EXPOSE of a remote administration port", med,
			"The Dockerfile exposes port 22 (SSH) or 23 (telnet).",
			"Remove the EXPOSE and the daemon.", nistImageConfig, "CIS-Docker-5.7").withPeers("DS-0004"),
		df(DFChmodWorld, "chmod makes files world-writable", med,
			"A RUN gives write permission to all users (chmod 777, 666, o+w, a+w).",
			"Grant write access to the owning user or group only.", nistImageConfig),
		df(DFPkgCache, "Package manager cache left in the layer", low,
			"A RUN leaves the package manager's index or cache in its layer: apt-get update without removing /var/lib/apt/lists, apk add without --no-cache, yum/dnf/microdnf install without a later clean all, zypper install without zypper clean. Later layers cannot shrink it, and the stale index is shipped. Cache mounts (RUN --mount=type=cache) are not reported.",
			"Clean in the same RUN: rm -rf /var/lib/apt/lists/*, apk add --no-cache, yum clean all, dnf clean all, microdnf clean all, zypper clean -a; or use a BuildKit cache mount.", nistImageConfig).withPeers("DS-0015", "DS-0019", "DS-0020", "DS-0025", "DS-0027", "DKL-DI-0004", "DKL-DI-0005"),
		df(DFDistUpgrade, "apt-get dist-upgrade in the build", low,
			"apt-get dist-upgrade (or full-upgrade) may install and remove packages to follow dependency changes, so the image drifts from its base release and builds stop being reproducible.",
			"Use a newer base image, or apt-get upgrade of the packages you need.", nistImageConfig, nistStaleImages).withPeers("DS-0024", "DKL-DI-0003"),
		df(DFStageAlias, "Stage name reused or copied from itself", low,
			"Two FROM instructions name the same stage (AS name), or COPY --from names the stage it is in: the build fails, or copies from a stage other than the one intended.",
			"Give every stage its own name, and copy only from earlier stages.", nistImageConfig).withPeers("DS-0006", "DS-0012"),
		df(DFPortRange, "EXPOSE of a port out of range", low,
			"EXPOSE names a port above 65535.",
			"Expose a port between 1 and 65535.", nistImageConfig).withPeers("DS-0008"),
		df(DFCurlAndWget, "Both curl and wget used", low,
			"RUN instructions call both curl and wget: two download tools where one does, more in the image and in its attack surface.",
			"Pick one of curl or wget.", nistImageConfig).withPeers("DS-0014"),
		df(DFMaintainer, "Deprecated MAINTAINER instruction", low,
			"MAINTAINER is deprecated since Docker 1.13.",
			"Use LABEL org.opencontainers.image.authors=\"...\" instead.", nistImageConfig).withPeers("DS-0022"),
	}
}

// MaxDockerfileSize caps a Dockerfile read into memory: real Dockerfiles
// are a few KiB; 1 MiB leaves room for generated ones with huge heredocs.
const MaxDockerfileSize = 1 << 20

// dfInstr is one parsed instruction.
type dfInstr struct {
	cmd        string   // lower-case instruction ("run", "from" ...)
	args       []string // arguments (for shell-form RUN: one string)
	flags      []string // --flags
	heredocs   []string // heredoc bodies
	start, end int      // 1-based lines
	original   string
}

// parseDockerfile parses with BuildKit's parser — the reference grammar
// (line continuations, the escape directive, heredocs, JSON forms).
func parseDockerfile(content []byte) ([]dfInstr, error) {
	if len(content) > MaxDockerfileSize {
		return nil, fmt.Errorf("%w: Dockerfile of %d bytes (limit %d)", ErrTooLarge, len(content), MaxDockerfileSize)
	}
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("%w: Dockerfile: %w", ErrParse, err)
	}
	var out []dfInstr
	for _, n := range res.AST.Children {
		in := dfInstr{cmd: strings.ToLower(n.Value), flags: n.Flags, start: n.StartLine, end: n.EndLine, original: n.Original}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		for _, h := range n.Heredocs {
			in.heredocs = append(in.heredocs, h.Content)
		}
		out = append(out, in)
	}
	return out, nil
}

var (
	sudoRE        = regexp.MustCompile(`(?:^|[;&|(]\s*|\s)sudo\s`)
	pipeShellRE   = regexp.MustCompile(`\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/(?:usr/)?bin/)?(?:ba|z|da|k|a)?sh\b|\b(?:ba)?sh\s+-c\s+["']?\$\((?:curl|wget)\b|\b(?:ba)?sh\s+<\(\s*(?:curl|wget)\b`)
	aptInstallRE  = regexp.MustCompile(`\bapt-get\s+(?:[^;&|]*\s)?install\b`)
	noRecsRE      = regexp.MustCompile(`--no-install-recommends|APT::Install-Recommends=(?:"?false"?|0)`)
	chmodWorldRE  = regexp.MustCompile(`\bchmod\s+(?:-[A-Za-z]+\s+)*(?:[0-7]?[0-7]{2}[2367]\b|[ugo]*[ao][ugoa]*[+=][rwxXst]*w)`)
	cmdSplitRE    = regexp.MustCompile(`&&|\|\||;|\n`)
	sensitiveName = regexp.MustCompile(`(?i)passw(?:or)?d|passwd|pwd|secret|token|api_?key|apikey|access_?key|private_?key|credential|auth_?key`)
	// Suffixes of names that point at a secret rather than hold it.
	nonSecretSuffix = regexp.MustCompile(`(?i)_(?:file|path|dir|url|uri|name|host|port|user|username|id|endpoint|type|length|len|enabled|required)$`)
	archiveSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.lz", ".tar.lzma"}
)

// CheckDockerfile runs the Dockerfile checks on content, read from path
// (used in the findings' Location.Path).
func CheckDockerfile(path string, content []byte) ([]model.Finding, error) {
	instrs, err := parseDockerfile(content)
	if err != nil {
		return nil, err
	}
	sc, err := defaultSecretScanner()
	if err != nil {
		return nil, err
	}
	var out []model.Finding
	loc := func(in dfInstr) model.Location {
		return model.Location{Path: path, StartLine: in.start, EndLine: in.end}
	}
	add := func(id string, in dfInstr, ev string) { out = append(out, newFinding(id, loc(in), ev)) }

	stages := map[string]bool{}
	stageLines := map[string]int{}
	var (
		finalFrom   *dfInstr
		lastUser    *dfInstr
		healthcheck bool
		stage       *stageState
		curlAt      *dfInstr // first RUN using curl / wget
		wgetAt      *dfInstr
	)
	for i := range instrs {
		in := instrs[i]
		switch in.cmd {
		case "from":
			finalFrom, lastUser, healthcheck = &instrs[i], nil, false
			idx := 0
			if stage != nil {
				stage.flushRepeats(add)
				idx = stage.index + 1
			}
			stage = &stageState{index: idx, name: fromAlias(in.args), repeats: map[string][]dfInstr{}}
			if stage.name != "" {
				if l, dup := stageLines[stage.name]; dup {
					add(DFStageAlias, in, "stage name "+stage.name+" already defined at line "+strconv.Itoa(l))
				} else {
					stageLines[stage.name] = in.start
				}
			}
			if len(in.args) == 0 {
				continue
			}
			ref := in.args[0]
			if unpinnedBase(ref, stages) {
				add(DFUnpinnedBase, in, "FROM "+ref)
			}
		case "user":
			lastUser = &instrs[i]
		case "healthcheck":
			healthcheck = len(in.args) > 0 && !strings.EqualFold(in.args[0], "NONE")
		case "add":
			checkAdd(in, add)
			checkCopyDest(in, add)
		case "copy":
			checkCopyDest(in, add)
			if from, ok := copyFrom(in.flags); ok && stage != nil {
				if strings.EqualFold(from, stage.name) || from == strconv.Itoa(stage.index) {
					add(DFStageAlias, in, "COPY --from="+from+" inside that stage")
				}
			}
		case "run":
			checkRun(in, add)
			checkRunDockerfile(in, add)
			if curlAt == nil && usesTool(curlRE, in) {
				curlAt = &instrs[i]
			}
			if wgetAt == nil && usesTool(wgetRE, in) {
				wgetAt = &instrs[i]
			}
		case "workdir":
			workdirChecks(in, add)
		case "maintainer":
			add(DFMaintainer, in, in.original)
		case "expose":
			for _, p := range in.args {
				if n, ok := portNumber(p); ok && (n == 22 || n == 23) {
					add(DFExposeSSH, in, "EXPOSE "+p)
				}
				if exposeOutOfRange(p) {
					add(DFPortRange, in, "EXPOSE "+p)
				}
			}
		case "env":
			// key, value, separator triples.
			for j := 0; j+1 < len(in.args); j += 3 {
				checkAssignment(sc, in, in.args[j], in.args[j+1], true, add)
			}
		case "arg":
			for _, a := range in.args {
				name, val, hasVal := strings.Cut(a, "=")
				checkAssignment(sc, in, name, val, hasVal, add)
			}
		}
		if stage != nil && (in.cmd == "cmd" || in.cmd == "entrypoint" || in.cmd == "healthcheck") {
			stage.repeats[in.cmd] = append(stage.repeats[in.cmd], in)
		}
		// A stage name is known to the FROMs after its own.
		if in.cmd == "from" && len(in.args) >= 3 && strings.EqualFold(in.args[1], "as") {
			stages[strings.ToLower(in.args[2])] = true
		}
	}
	if stage != nil {
		stage.flushRepeats(add)
	}
	if curlAt != nil && wgetAt != nil {
		second := curlAt
		if wgetAt.start > curlAt.start {
			second = wgetAt
		}
		add(DFCurlAndWget, *second, fmt.Sprintf("curl at line %d, wget at line %d", curlAt.start, wgetAt.start))
	}
	if finalFrom != nil {
		if lastUser == nil {
			add(DFRootUser, *finalFrom, "no USER in the final stage")
		} else if len(lastUser.args) > 0 && isRootUser(lastUser.args[0]) {
			add(DFRootUser, *lastUser, "USER "+lastUser.args[0])
		}
		if !healthcheck {
			out = append(out, newFinding(DFNoHealthcheck, model.Location{Path: path}, ""))
		}
	}
	return out, nil
}

// unpinnedBase reports whether a FROM reference has no tag or the tag
// latest (not scratch, not an earlier stage, not a build-arg expression).
func unpinnedBase(ref string, stages map[string]bool) bool {
	if ref == "" || strings.EqualFold(ref, "scratch") || stages[strings.ToLower(ref)] || strings.Contains(ref, "$") {
		return false
	}
	if strings.Contains(ref, "@") {
		return false // digest-pinned
	}
	tag := imageTag(ref)
	return tag == "" || tag == "latest"
}

// imageTag returns the tag of an image reference ("" when none). A colon
// before the last slash is a registry port, not a tag.
func imageTag(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if c := strings.LastIndexByte(ref, ':'); c > slash {
		return ref[c+1:]
	}
	return ""
}

func checkAdd(in dfInstr, add func(string, dfInstr, string)) {
	if len(in.args) < 2 {
		return
	}
	checksum := false
	for _, f := range in.flags {
		if strings.HasPrefix(f, "--checksum") {
			checksum = true
		}
	}
	srcs := in.args[:len(in.args)-1]
	for _, s := range srcs {
		if strings.HasPrefix(s, "<<") { // heredoc source: inline content
			continue
		}
		if addFromURL(s) || strings.HasPrefix(s, "git@") {
			if !checksum {
				add(DFAddURL, in, "ADD "+s)
			}
			continue
		}
		if !isArchiveName(s) {
			add(DFAddLocal, in, "ADD "+s)
		}
	}
}

// isArchiveName reports whether a file name ends like a tar archive that
// ADD extracts.
func isArchiveName(s string) bool {
	ls := strings.ToLower(s)
	for _, suf := range archiveSuffixes {
		if strings.HasSuffix(ls, suf) {
			return true
		}
	}
	return false
}

func checkRun(in dfInstr, add func(string, dfInstr, string)) {
	cmd := strings.Join(in.args, " ")
	for _, h := range in.heredocs {
		cmd += "\n" + h
	}
	if updateWithoutInstall(cmd) {
		add(DFUpdateAlone, in, in.original)
	}
	if sudoRE.MatchString(cmd) {
		add(DFSudo, in, in.original)
	}
	if pipeShellRE.MatchString(cmd) {
		add(DFPipeToShell, in, in.original)
	}
	for _, part := range cmdSplitRE.Split(cmd, -1) {
		if aptInstallRE.MatchString(part) && !noRecsRE.MatchString(part) && !noRecsRE.MatchString(cmd) {
			add(DFNoInstallRecs, in, strings.TrimSpace(part))
			break
		}
	}
	if chmodWorldRE.MatchString(cmd) {
		add(DFChmodWorld, in, chmodWorldRE.FindString(cmd))
	}
	if left := pkgCacheLeft(cmd, cacheMountTargets(in.flags, in.original)); left != "" {
		add(DFPkgCache, in, left)
	}
	if i := lastIndex(distUpgradeRE, cmd); i >= 0 {
		add(DFDistUpgrade, in, distUpgradeRE.FindString(cmd[i:]))
	}
}

// checkAssignment checks an ENV or ARG NAME=value for secrets.
func checkAssignment(sc *secret.Scanner, in dfInstr, name, val string, hasVal bool, add func(string, dfInstr, string)) {
	kind := strings.ToUpper(in.cmd)
	if hasVal && val != "" {
		if fs := sc.ScanText(kind, name+"="+val); len(fs) > 0 {
			var ev []string
			for _, f := range fs {
				ev = append(ev, f.ID+" "+f.Evidence)
			}
			add(DFSecretValue, in, kind+" "+name+": "+strings.Join(ev, ", "))
			return
		}
	}
	if !sensitiveName.MatchString(name) || nonSecretSuffix.MatchString(name) {
		return
	}
	literal := hasVal && val != "" && !strings.HasPrefix(val, "$")
	switch {
	case literal:
		add(DFSecretValue, in, kind+" "+name+"="+secret.Redact(val))
	case in.cmd == "arg":
		add(DFSensitiveArg, in, "ARG "+name)
	}
}
