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
