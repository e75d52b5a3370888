package misconfig

import (
	"errors"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Check IDs of this file.
const (
	DFAptNoYes        = "MSC-DF-016"
	DFRepeated        = "MSC-DF-017"
	DFWorkdirRelative = "MSC-DF-020"
	DFWorkdirSystem   = "MSC-DF-021"
	DFCopyDestSlash   = "MSC-DF-022"
	DFRunCd           = "MSC-DF-023"
)

// dockerfileLintChecks are the Dockerfile lint checks of this file: metadata here, logic below, tests in dockerfile_lint_test.go.
func dockerfileLintChecks() []CheckInfo {
	return []CheckInfo{
		df(DFAptNoYes, "apt-get install without -y", low,
			"apt-get install without -y (--yes, --assume-yes or -qq) asks for confirmation whenever it would install more than named, and a build has no one to answer: the build aborts.",
			"Add -y.", nistImageConfig).withPeers("DS-0021"),
		df(DFRepeated, "CMD, ENTRYPOINT or HEALTHCHECK repeated in a stage", low,
			"A stage has more than one CMD, ENTRYPOINT or HEALTHCHECK: only the last takes effect, so the image runs or probes something other than what the first one reads.",
			"Keep one of each per stage.", nistImageConfig).withPeers("DS-0007", "DS-0016", "DS-0023"),
		df(DFWorkdirRelative, "WORKDIR path not absolute", low,
			"A relative WORKDIR resolves against the previous one (or the base image's), so where files land depends on instructions elsewhere.",
			"Use an absolute path (or a variable holding one).", nistImageConfig).withPeers("DS-0009"),
		df(DFWorkdirSystem, "WORKDIR in a system directory", med,
			"WORKDIR is /proc, /sys, /dev, /boot, /initrd, /lost+found or below: at run time these hold the kernel's interfaces and boot files, so the process starts inside them and relative writes land there.",
			"Use an application directory such as /app or /srv/app.", nistImageConfig, nistRuntimeConfig).withPeers("DS-0030"),
		df(DFCopyDestSlash, "COPY or ADD of several sources to a destination without a trailing slash", low,
			"With more than one source, COPY and ADD need a directory destination ending in /; without it the build fails.",
			"End the destination with /.", nistImageConfig).withPeers("DS-0011"),
		df(DFRunCd, "RUN cd instead of WORKDIR", low,
			"A RUN changes directory with cd: the change lasts for that RUN only, which hides where later instructions run and makes the Dockerfile hard to follow.",
			"Use WORKDIR to change directory.", nistImageConfig).withPeers("DS-0013"),
	}
}

// Package-manager command patterns. opts matches the options between a
// tool and its subcommand ("-y", "--setopt=x=y", "-o Acquire::Retries=3").
const pmOpts = `(?:(?:-o\s+\S+|-{1,2}[\w=.:/,-]+)\s+)*`

var (
	aptUpdateRE   = regexp.MustCompile(`\b(?:apt-get|apt|aptitude)\s+` + pmOpts + `update\b`)
	aptListsRmRE  = regexp.MustCompile(`\brm\s+[^;&|\n]*/var/lib/apt/lists`)
	apkAddRE      = regexp.MustCompile(`\bapk\s+` + pmOpts + `add\b`)
	apkCacheRmRE  = regexp.MustCompile(`\brm\s+[^;&|\n]*/var/cache/apk`)
	distUpgradeRE = regexp.MustCompile(`\b(?:apt-get|apt|aptitude)\s+` + pmOpts + `(?:dist-upgrade|full-upgrade)\b`)
	aptGetInstRE  = regexp.MustCompile(`\bapt-get\s+` + pmOpts + `install\b`)
	// assumeYesRE: -y in a cluster of short options, the long forms, quiet
	// level 2 (which implies -y, apt-get(8)), or the configuration option.
	assumeYesRE = regexp.MustCompile(`(?:^|\s)-[a-zA-Z]*y[a-zA-Z]*(?:\s|$)|--(?:yes|assume-yes|force-yes)\b|(?:^|\s)-[a-zA-Z]*qq|(?:^|\s)(?:-q|--quiet)=2\b|Assume-Yes=(?:true|yes|1)\b|\byes\s*\|`)
	cdRE        = regexp.MustCompile(`^cd(?:\s|$)`)
	// A download tool in command position (or in a command substitution).
	curlRE = regexp.MustCompile(`(?:^\s*(?:sudo\s+(?:-\S+\s+)*)?|\$\(\s*)curl\b`)
	wgetRE = regexp.MustCompile(`(?:^\s*(?:sudo\s+(?:-\S+\s+)*)?|\$\(\s*)wget\b`)
)

// rpmCleaners are the RPM-family package managers whose install must be
// followed by "<tool> clean all" (or removing their cache) in the same RUN.
var rpmCleaners = []struct {
	tool           string
	install, clean *regexp.Regexp
	cacheDirs      []string
}{
	{"yum", regexp.MustCompile(`\byum\s+` + pmOpts + `(?:install|reinstall|groupinstall|localinstall)\b`),
		regexp.MustCompile(`\byum\s+` + pmOpts + `clean\s+` + pmOpts + `all\b|\brm\s+[^;&|\n]*/var/cache/yum`), []string{"/var/cache/yum"}},
	{"dnf", regexp.MustCompile(`\bdnf[0-9]?\s+` + pmOpts + `(?:install|in|reinstall|rei|install-n|install-na|install-nevra|groupinstall)\b`),
		regexp.MustCompile(`\bdnf[0-9]?\s+` + pmOpts + `clean\s+` + pmOpts + `all\b|\brm\s+[^;&|\n]*/var/cache/(?:dnf|libdnf5)`), []string{"/var/cache/dnf", "/var/cache/libdnf5"}},
	{"microdnf", regexp.MustCompile(`\bmicrodnf\s+` + pmOpts + `(?:install|reinstall)\b`),
		regexp.MustCompile(`\bmicrodnf\s+` + pmOpts + `clean\s+` + pmOpts + `all\b|\brm\s+[^;&|\n]*/var/cache/(?:yum|dnf)`), []string{"/var/cache/yum", "/var/cache/dnf"}},
	{"zypper", regexp.MustCompile(`\bzypper\s+` + pmOpts + `(?:install|in|source-install|si|patch)\b`),
		regexp.MustCompile(`\bzypper\s+` + pmOpts + `(?:clean|cc)\b|\brm\s+[^;&|\n]*/var/cache/zypp`), []string{"/var/cache/zypp"}},
}

// cacheMountTargets returns the targets of RUN --mount=type=cache (and
// tmpfs) mounts, from the parsed flags or, for image history, the text
// ("RUN --mount=type=cache,target=/var/lib/apt /bin/sh -c ...").
func cacheMountTargets(flags []string, text string) []string {
	var out []string
	toks := append(append([]string(nil), flags...), strings.Fields(text)...)
	for _, t := range toks {
		spec, ok := strings.CutPrefix(t, "--mount=")
		if !ok {
			continue
		}
		typ, target := "bind", ""
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "type":
				typ = v
			case "target", "dst", "destination":
				target = path.Clean("/" + strings.Trim(v, `"'`))
			}
		}
		if (typ == "cache" || typ == "tmpfs") && target != "" {
			out = append(out, target)
		}
	}
	return out
}

// mountedUnder reports whether dir is a cache mount or below one.
func mountedUnder(mounts []string, dirs ...string) bool {
	for _, m := range mounts {
		for _, d := range dirs {
			if d == m || strings.HasPrefix(d, m+"/") || strings.HasPrefix(m, d+"/") {
				return true
			}
		}
	}
	return false
}

// commandPrefixWords may stand between a command separator and the
// command itself ("DEBIAN_FRONTEND=noninteractive apt-get", "sudo -E apk",
// "then yum").
var commandPrefixWords = map[string]bool{"sudo": true, "env": true, "exec": true, "xargs": true, "nice": true,
	"time": true, "nohup": true, "then": true, "do": true, "else": true, "elif": true, "if": true, "!": true, "{": true,
	"sh": true, "bash": true, "/bin/sh": true, "/bin/bash": true}

// atCommand reports whether s[i:] starts a command: only separators,
// variable assignments, and wrappers such as sudo stand before it since the
// previous separator. It keeps "echo apk add" and "grep 'yum install'" from
// counting as package installs.
func atCommand(s string, i int) bool {
	start := strings.LastIndexAny(s[:i], ";&|(`\n") + 1
	for _, w := range strings.Fields(s[start:i]) {
		w = strings.TrimLeft(w, `"'`)
		if w == "" || commandPrefixWords[w] || strings.HasPrefix(w, "-") || (strings.Contains(w, "=") && !strings.ContainsAny(w[:1], `"'`)) {
			continue
		}
		return false
	}
	return true
}

// lastIndex is the start of the last match of re in s at a command
// position, or -1.
func lastIndex(re *regexp.Regexp, s string) int {
	locs := re.FindAllStringIndex(s, -1)
	for j := len(locs) - 1; j >= 0; j-- {
		if atCommand(s, locs[j][0]) {
			return locs[j][0]
		}
	}
	return -1
}

// matchCommand reports whether re matches s at a command position.
func matchCommand(re *regexp.Regexp, s string) bool { return lastIndex(re, s) >= 0 }

// pkgCacheLeft reports what package-manager cache a RUN command leaves in
// its layer (MSC-DF-014), or "".
func pkgCacheLeft(cmd string, mounts []string) string {
	var left []string
	if i := lastIndex(aptUpdateRE, cmd); i >= 0 && !mountedUnder(mounts, "/var/lib/apt/lists") && lastIndex(aptListsRmRE, cmd) < i {
		left = append(left, "apt-get update without rm -rf /var/lib/apt/lists/*")
	}
	if !mountedUnder(mounts, "/var/cache/apk", "/etc/apk/cache") {
		for _, part := range cmdSplitRE.Split(cmd, -1) {
			if matchCommand(apkAddRE, part) && !strings.Contains(part, "--no-cache") && apkCacheRmRE.FindStringIndex(cmd) == nil {
				left = append(left, "apk add without --no-cache")
				break
			}
		}
	}
	for _, c := range rpmCleaners {
		if mountedUnder(mounts, c.cacheDirs...) {
			continue
		}
		if i := lastIndex(c.install, cmd); i >= 0 && lastIndex(c.clean, cmd) < i {
			left = append(left, c.tool+" install without "+c.tool+" clean")
		}
	}
	return strings.Join(left, "; ")
}

// checkRunDockerfile runs the RUN checks that only make sense on a
// Dockerfile, not on an image's history (there the build already ran: an
// apt-get without -y that succeeded never had to ask, and cd is style).
func checkRunDockerfile(in dfInstr, add func(string, dfInstr, string)) {
	cmd := strings.Join(in.args, " ")
	for _, h := range in.heredocs {
		cmd += "\n" + h
	}
	aptDone, cdDone := false, false
	for _, part := range cmdSplitRE.Split(cmd, -1) {
		p := strings.TrimSpace(part)
		if !aptDone && matchCommand(aptGetInstRE, p) && !assumeYesRE.MatchString(p) {
			add(DFAptNoYes, in, p)
			aptDone = true
		}
		if !cdDone && cdRE.MatchString(p) {
			add(DFRunCd, in, p)
			cdDone = true
		}
	}
}

// usesTool reports whether a RUN command runs curl or wget (re) as a
// command, not as a package name being installed.
func usesTool(re *regexp.Regexp, in dfInstr) bool {
	cmd := strings.Join(in.args, " ")
	for _, h := range in.heredocs {
		cmd += "\n" + h
	}
	for _, part := range cmdSplitRE.Split(cmd, -1) {
		if re.MatchString(part) {
			return true
		}
	}
	return false
}

// stageState tracks one build stage for the per-stage checks.
type stageState struct {
	index   int
	name    string // lower-case, "" when unnamed
	repeats map[string][]dfInstr
}

// flushRepeats reports CMD, ENTRYPOINT and HEALTHCHECK given more than once
// in the stage (MSC-DF-017), at the second one.
func (st *stageState) flushRepeats(add func(string, dfInstr, string)) {
	for _, kind := range []string{"cmd", "entrypoint", "healthcheck"} {
		ins := st.repeats[kind]
		if len(ins) < 2 {
			continue
		}
		lines := make([]string, len(ins))
		for i, in := range ins {
			lines[i] = strconv.Itoa(in.start)
		}
		add(DFRepeated, ins[1], strings.ToUpper(kind)+" at lines "+strings.Join(lines, ", ")+": only the last takes effect")
	}
}

// fromAlias returns the lower-case stage name of FROM args ("img AS name").
func fromAlias(args []string) string {
	if len(args) >= 3 && strings.EqualFold(args[1], "as") {
		return strings.ToLower(args[2])
	}
	return ""
}

// copyFrom returns the value of a --from flag.
func copyFrom(flags []string) (string, bool) {
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			return strings.Trim(v, `"'`), true
		}
	}
	return "", false
}

// checkCopyDest reports COPY/ADD with several sources and a destination
// without a trailing slash (MSC-DF-022).
func checkCopyDest(in dfInstr, add func(string, dfInstr, string)) {
	if len(in.args) < 3 {
		return
	}
	dest := in.args[len(in.args)-1]
	if strings.Contains(dest, "$") || strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, `\`) {
		return
	}
	add(DFCopyDestSlash, in, strings.ToUpper(in.cmd)+" of "+strconv.Itoa(len(in.args)-1)+" sources to "+dest)
}

// exposeOutOfRange returns the EXPOSE argument naming a port above 65535.
func exposeOutOfRange(arg string) bool {
	p, _, _ := strings.Cut(arg, "/")
	if strings.Contains(p, "$") {
		return false
	}
	lo, hi, isRange := strings.Cut(p, "-")
	for i, s := range []string{lo, hi} {
		if i == 1 && !isRange {
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if errors.Is(err, strconv.ErrRange) || (err == nil && n > 65535) {
			return true
		}
	}
	return false
}

var winAbsRE = regexp.MustCompile(`^[A-Za-z]:[\\/]|^\\`)

// workdirChecks reports a relative WORKDIR (MSC-DF-020) and one in a system
// directory (MSC-DF-021).
func workdirChecks(in dfInstr, add func(string, dfInstr, string)) {
	if len(in.args) == 0 {
		return
	}
	w := strings.Trim(strings.TrimSpace(in.args[0]), `"'`)
	if w == "" || strings.HasPrefix(w, "$") || winAbsRE.MatchString(w) {
		return
	}
	if !strings.HasPrefix(w, "/") {
		add(DFWorkdirRelative, in, "WORKDIR "+w)
		return
	}
	c := path.Clean(w)
	for _, d := range []string{"/proc", "/sys", "/dev", "/boot", "/initrd", "/lost+found"} {
		if c == d || strings.HasPrefix(c, d+"/") {
			add(DFWorkdirSystem, in, "WORKDIR "+w)
			return
		}
	}
}
