package misconfig

import (
	"encoding/json"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/model"
	"mamori/internal/secret"
)

// Check IDs of this file.
const (
	ImgRootUser        = "MSC-IMG-001"
	ImgNoHealthcheck   = "MSC-IMG-002"
	ImgUpdateAlone     = "MSC-IMG-003"
	ImgAddRemote       = "MSC-IMG-004"
	ImgSecrets         = "MSC-IMG-005"
	ImgRemoteAdminPkg  = "MSC-IMG-006"
	ImgPrivilegedPort  = "MSC-IMG-007"
	ImgRemoteAdminPort = "MSC-IMG-009"
	ImgSensitiveVolume = "MSC-IMG-014"
	ImgLatestBase      = "MSC-IMG-015"
	ImgAddLocal        = "MSC-IMG-016"
)

// imageChecks are the image configuration and build history checks of this file: metadata here, logic below, tests in image_test.go.
func imageChecks() []CheckInfo {
	return []CheckInfo{
		img(ImgRootUser, "Image runs as root", high,
			"The image configuration sets no user, or root (User empty, \"root\", \"0\", \"0:0\"): its processes run as root unless the runtime overrides it.",
			"Create an unprivileged user and end the Dockerfile with USER <name or uid>.", nistImageConfig, "CIS-Docker-4.1").withPeers("CIS-DI-0001", "DS-0002"),
		img(ImgNoHealthcheck, "Image has no HEALTHCHECK", low,
			"The image configuration has no health check, so the engine cannot tell a hung container from a healthy one.",
			"Add a HEALTHCHECK instruction (orchestrators use their own probes instead).", nistImageConfig, "CIS-Docker-4.6").withPeers("CIS-DI-0006", "DS-0026"),
		img(ImgUpdateAlone, "Package index update in its own layer", med,
			"A history entry runs a package index update (apt-get update, apk update, yum makecache ...) without installing in the same RUN; the cached index goes stale and later installs get old packages.",
			"Update and install in one RUN: apt-get update && apt-get install -y ...", nistImageConfig, "CIS-Docker-4.7").withPeers("CIS-DI-0007", "DS-0017"),
		img(ImgAddRemote, "ADD from a remote URL", med,
			"A layer was added from a URL with ADD: the content is fetched unverified at build time.",
			"Download with curl or wget and verify a checksum, or use ADD --checksum; prefer COPY for local files.", nistImageConfig, nistUntrustedImages, "CIS-Docker-4.9").withPeers("CIS-DI-0009"),
		img(ImgSecrets, "Secrets in the image configuration", crit,
			"The environment, labels, entrypoint or build history (where build arguments are recorded) holds credentials; anyone who can pull the image can read them.",
			"Remove the secret, revoke it, and pass secrets at run time or with BuildKit secret mounts.", nistImageSecrets, "CIS-Docker-4.10").withPeers("CIS-DI-0010", "DS-0031"),
		img(ImgRemoteAdminPkg, "Remote administration daemon installed", high,
			"A package providing a remote login or file-transfer daemon (sshd, telnetd, ftpd, rsh, VNC ...) is installed; containers should be administered through the runtime, not a daemon inside them.",
			"Remove the package from the image.", nistImageConfig, "CIS-Docker-4.3", "CIS-Docker-5.7"),
		img(ImgPrivilegedPort, "Exposes a privileged port", low,
			"The image exposes a TCP/UDP port below 1024, which needs root or CAP_NET_BIND_SERVICE to bind.",
			"Listen on a port at or above 1024 and map it at run time.", nistImageConfig, "CIS-Docker-5.8"),
		img(ImgRemoteAdminPort, "Exposes a remote administration port", med,
			"The image exposes port 22 (SSH) or 23 (telnet).",
			"Remove the EXPOSE and the daemon; use the runtime's exec for administration.", nistImageConfig, "CIS-Docker-5.7").withPeers("DS-0004"),
		img(ImgSensitiveVolume, "VOLUME on a system directory", med,
			"The image declares a VOLUME on a system directory (/, /etc, /root, /boot, /usr, /lib, /bin, /sbin, /var/run, /run, or /proc, /sys, /dev and below): the directory becomes a separate, persistent mount that outlives the container and image updates (a tampered /etc/passwd survives an upgrade), other containers can attach it with --volumes-from, and over /proc, /sys or /dev it hides the kernel interfaces the runtime sets up.",
			"Remove the VOLUME instruction; declare volumes only for application data directories.", nistImageConfig, nistRuntimeConfig).withPeers("DKL-DI-0002"),
		img(ImgLatestBase, "Base image tag latest or missing", med,
			"The image's org.opencontainers.image.base.name label names its base image by the tag latest or by no tag, with no base digest label: which base was used cannot be told, and rebuilds pick up whatever the tag points to.",
			"Build FROM a version tag and a digest, and record them in the base.name and base.digest labels.", nistUntrustedImages, nistStaleImages).withPeers("DKL-DI-0006"),
		img(ImgAddLocal, "ADD of a local file in the history", low,
			"A history entry (other than the base image's root file system) added local files with ADD rather than COPY (CIS Docker 4.9): ADD's implicit archive extraction and URL fetching are surprises waiting to happen. BuildKit history names the sources, and archives (a legitimate use of ADD) are not reported; the classic builder records only \"ADD file:<hash> in <dest>\", so those are all reported.",
			"Use COPY for local files and directories.", nistImageConfig, "CIS-Docker-4.9").withPeers("CIS-DI-0009", "DS-0005"),
	}
}

// ImageFacts are the facts about an image's file system that the image
// checks need, taken from the merged (whiteout-applied) inventory.
type ImageFacts struct {
	// Packages are the names of installed packages (any ecosystem; the
	// remote-administration check reads OS package names).
	Packages []string
	// SetuidFiles and WorldWritableFiles are paths of regular files with
	// the setuid/setgid bit, or the other-write bit. Leave them empty when
	// the FileModeAnalyzer ran in the walk: it reports the same findings
	// per file (MSC-IMG-008, MSC-IMG-010) and whiteouts already apply to them.
	SetuidFiles        []string
	WorldWritableFiles []string
}

// remoteAdminPackages are packages that install a remote login, remote
// shell, file transfer or remote desktop daemon (Debian/Ubuntu, Alpine,
// Red Hat family names).
var remoteAdminPackages = map[string]string{
	"openssh-server": "sshd", "openssh-server-pam": "sshd", "dropbear": "dropbear sshd",
	"dropbear-bin": "dropbear sshd", "telnetd": "telnetd", "inetutils-telnetd": "telnetd",
	"telnetd-ssl": "telnetd", "telnet-server": "telnetd", "vsftpd": "ftpd", "proftpd": "ftpd",
	"proftpd-basic": "ftpd", "proftpd-core": "ftpd", "pure-ftpd": "ftpd", "inetutils-ftpd": "ftpd",
	"tftpd": "tftpd", "tftpd-hpa": "tftpd", "atftpd": "tftpd", "tftp-server": "tftpd",
	"rsh-server": "rshd", "rsh-redone-server": "rshd", "xinetd": "inetd", "openbsd-inetd": "inetd",
	"inetutils-inetd": "inetd", "tigervnc-standalone-server": "VNC server", "tigervnc-server": "VNC server",
	"tightvncserver": "VNC server", "x11vnc": "VNC server", "xrdp": "RDP server",
}

// defaultSecretScanner is built once: a Scanner is immutable.
var defaultSecretScanner = sync.OnceValues(func() (*secret.Scanner, error) { return secret.NewScanner() })

// CheckImage runs the image checks (CIS Docker Benchmark §4) on an image
// configuration and the facts of its file system. Findings about the
// configuration carry Location.Config ("User", "History[3]", "Env[1]",
// "ExposedPorts"); findings about files carry Location.Path.
func CheckImage(cfg *v1.ConfigFile, facts ImageFacts) []model.Finding {
	var out []model.Finding
	if cfg != nil {
		out = append(out, checkImageConfig(cfg)...)
	}
	for _, p := range sortedUnique(facts.Packages) {
		if d, ok := remoteAdminPackages[p]; ok {
			out = append(out, newFinding(ImgRemoteAdminPkg, model.Location{Config: "Packages"}, p+" ("+d+")"))
		}
	}
	for _, p := range sortedUnique(facts.SetuidFiles) {
		out = append(out, newFinding(ImgSetuid, model.Location{Path: p}, p))
	}
	for _, p := range sortedUnique(facts.WorldWritableFiles) {
		out = append(out, newFinding(ImgWorldWritable, model.Location{Path: p}, p))
	}
	return out
}

func checkImageConfig(cfg *v1.ConfigFile) []model.Finding {
	var out []model.Finding
	if isRootUser(cfg.Config.User) {
		u := cfg.Config.User
		if u == "" {
			u = "(not set)"
		}
		out = append(out, newFinding(ImgRootUser, model.Location{Config: "User"}, "User: "+u))
	}
	if hc := cfg.Config.Healthcheck; hc == nil || len(hc.Test) == 0 || strings.EqualFold(hc.Test[0], "NONE") {
		out = append(out, newFinding(ImgNoHealthcheck, model.Location{Config: "Healthcheck"}, ""))
	}
	seenAdd := false
	for i, h := range cfg.History {
		field := "History[" + strconv.Itoa(i) + "]"
		cmd := historyCommand(h.CreatedBy)
		if cmd.kind == "RUN" && updateWithoutInstall(cmd.text) {
			out = append(out, newFinding(ImgUpdateAlone, model.Location{Config: field}, h.CreatedBy))
		}
		if cmd.kind == "RUN" {
			// The Dockerfile RUN checks (sudo, curl | sh, apt without
			// --no-install-recommends, chmod 777) on the build's own record
			// of each RUN, so images built from an unseen Dockerfile get them
			// too (dockle DKL-DI-0001, trivy DS-0010/DS-0029 on images).
			in := dfInstr{cmd: "run", args: []string{cmd.text}, original: h.CreatedBy}
			checkRun(in, func(id string, _ dfInstr, ev string) {
				if id != DFUpdateAlone { // reported above as MSC-IMG-003
					out = append(out, newFinding(id, model.Location{Config: field}, ev))
				}
			})
		}
		if cmd.kind == "ADD" {
			switch {
			case addFromURL(cmd.text):
				out = append(out, newFinding(ImgAddRemote, model.Location{Config: field}, h.CreatedBy))
			case !seenAdd && addHistoryDest(cmd.text) == "/":
				// The base image's root file system (FROM's first layer).
			case addHistoryLocal(cmd.text):
				out = append(out, newFinding(ImgAddLocal, model.Location{Config: field}, h.CreatedBy))
			}
			seenAdd = true
		}
	}
	vols := make([]string, 0, len(cfg.Config.Volumes))
	for v := range cfg.Config.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for _, v := range vols {
		if sensitiveVolume(v) {
			out = append(out, newFinding(ImgSensitiveVolume, model.Location{Config: "Volumes"}, "VOLUME "+v))
		}
	}
	if ref := cfg.Config.Labels[labelBaseName]; ref != "" && cfg.Config.Labels[labelBaseDigest] == "" && unpinnedBase(ref, nil) {
		out = append(out, newFinding(ImgLatestBase, model.Location{Config: "Labels"}, labelBaseName+"="+ref))
	}
	ports := make([]string, 0, len(cfg.Config.ExposedPorts))
	for p := range cfg.Config.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	for _, p := range ports {
		n, ok := portNumber(p)
		if !ok {
			continue
		}
		if n == 22 || n == 23 {
			out = append(out, newFinding(ImgRemoteAdminPort, model.Location{Config: "ExposedPorts"}, p))
		} else if n < 1024 {
			out = append(out, newFinding(ImgPrivilegedPort, model.Location{Config: "ExposedPorts"}, p))
		}
	}
	if sc, err := defaultSecretScanner(); err == nil {
		// One finding per configuration field, naming the secret rules.
		byField := map[string][]string{}
		var fields []string
		for _, f := range sc.ScanConfig(cfg) {
			if _, ok := byField[f.Location.Config]; !ok {
				fields = append(fields, f.Location.Config)
			}
			byField[f.Location.Config] = append(byField[f.Location.Config], f.ID+" "+f.Evidence)
		}
		// Environment variables whose name says secret and whose value is a
		// literal (CIS Docker 4.10; dockle CIS-DI-0010): the value may be
		// too plain for a rule ("hunter2"), the name is evidence enough.
		for i, e := range cfg.Config.Env {
			fld := "Env[" + strconv.Itoa(i) + "]"
			if _, done := byField[fld]; done {
				continue
			}
			name, val, ok := strings.Cut(e, "=")
			if !ok || val == "" || strings.HasPrefix(val, "$") || !sensitiveName.MatchString(name) || nonSecretSuffix.MatchString(name) {
				continue
			}
			fields = append(fields, fld)
			byField[fld] = append(byField[fld], name+"="+secret.Redact(val))
		}
		for _, fld := range fields {
			out = append(out, newFinding(ImgSecrets, model.Location{Config: fld}, strings.Join(byField[fld], ", ")))
		}
	}
	return out
}

// OCI pre-defined annotations (image-spec annotations.md), also set as
// labels: the base image's reference and digest.
const (
	labelBaseName   = "org.opencontainers.image.base.name"
	labelBaseDigest = "org.opencontainers.image.base.digest"
)

// Directories whose VOLUME is reported: exact paths, and trees (the path or
// anything below it: kernel interfaces and boot files).
var (
	sensitiveVolumeExact = map[string]bool{"/": true, "/etc": true, "/root": true, "/usr": true, "/lib": true,
		"/lib64": true, "/bin": true, "/sbin": true, "/var/run": true, "/run": true}
	sensitiveVolumeTrees = []string{"/proc", "/sys", "/dev", "/boot"}
)

// sensitiveVolume reports whether a VOLUME path is a system directory.
func sensitiveVolume(v string) bool {
	v = strings.Trim(strings.TrimSpace(v), `"'`)
	if v == "" || !strings.HasPrefix(v, "/") {
		return false // Windows (C:\...) or junk
	}
	v = path.Clean(v)
	if sensitiveVolumeExact[v] {
		return true
	}
	for _, t := range sensitiveVolumeTrees {
		if v == t || strings.HasPrefix(v, t+"/") {
			return true
		}
	}
	return false
}

// addHistoryArgs splits the arguments of an ADD history entry into sources
// and destination. The classic builder records "file:<hash> in <dest>"
// (dir:, multi: for directories and several sources); BuildKit records the
// instruction as written: "[--flags] src... dest" or its JSON form.
func addHistoryArgs(text string) (srcs []string, dest string, classic bool) {
	var args []string
	if strings.HasPrefix(text, "[") {
		if err := json.Unmarshal([]byte(text), &args); err != nil {
			args = nil
		}
	}
	if args == nil {
		args = strings.Fields(text)
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		args = args[1:]
	}
	if len(args) < 2 {
		return nil, "", false
	}
	if len(args) == 3 && args[1] == "in" {
		for _, p := range []string{"file:", "dir:", "multi:"} {
			if strings.HasPrefix(args[0], p) {
				return args[:1], args[2], true
			}
		}
	}
	return args[:len(args)-1], args[len(args)-1], false
}

// addHistoryDest is the destination of an ADD history entry, cleaned.
func addHistoryDest(text string) string {
	_, d, _ := addHistoryArgs(text)
	if d == "" {
		return ""
	}
	return path.Clean("/" + d)
}

// addHistoryLocal reports whether an ADD history entry added local files
// that are not archives (for the classic builder's "file:<hash>" form,
// which hides the source name, every entry).
func addHistoryLocal(text string) bool {
	srcs, _, classic := addHistoryArgs(text)
	if classic {
		return true
	}
	for _, s := range srcs {
		if !strings.HasPrefix(s, "<<") && !isArchiveName(s) {
			return true
		}
	}
	return false
}

// isRootUser reports whether a USER value ("name", "uid", "name:group",
// "uid:gid", empty) selects root.
func isRootUser(u string) bool {
	u = strings.TrimSpace(u)
	if i := strings.IndexByte(u, ':'); i >= 0 {
		u = u[:i]
	}
	return u == "" || u == "root" || u == "0"
}

// portNumber parses "80/tcp", "53/udp" or "8080".
func portNumber(p string) (int, bool) {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	n, err := strconv.Atoi(p)
	return n, err == nil && n > 0 && n < 65536
}

// historyCmd is an image history entry reduced to its instruction.
type historyCmd struct {
	kind string // RUN, ADD, COPY, ENV ... ("" when unknown)
	text string // the instruction's arguments (for RUN, the shell command)
}

var (
	// buildArgsPrefix is how the classic builder and BuildKit record the
	// build arguments in scope of a RUN: "|2 A=1 B=2 ".
	buildArgsPrefix = regexp.MustCompile(`^\|\d+(?:\s+\S+=\S*)*\s+`)
	runFlagsPrefix  = regexp.MustCompile(`^(?:--[a-z]+(?:=\S*)?\s+)+`)
	shellPrefix     = regexp.MustCompile(`^(?:/bin/(?:ba)?sh|sh|bash|cmd /S /C|powershell(?:\.exe)?)\s+(?:-\w+\s+)*-c\s+`)
)

// historyCommand reduces a created_by string to its instruction: the
// classic builder writes "/bin/sh -c #(nop)  ADD file:… in /" for
// metadata instructions and "/bin/sh -c apt-get …" for RUN; BuildKit writes
// "RUN /bin/sh -c apt-get … # buildkit", "ADD https://… /x # buildkit".
func historyCommand(createdBy string) historyCmd {
	s := strings.TrimSpace(createdBy)
	s = strings.TrimSuffix(s, "# buildkit")
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "RUN "); ok {
		// BuildKit keeps RUN's flags (--mount=type=cache,..., --network=none)
		// before the shell; the build-argument prefix may come on either side.
		s = strings.TrimSpace(rest)
		for {
			t := runFlagsPrefix.ReplaceAllString(buildArgsPrefix.ReplaceAllString(s, ""), "")
			if t == s {
				break
			}
			s = t
		}
		s = shellPrefix.ReplaceAllString(s, "")
		return historyCmd{kind: "RUN", text: s}
	}
	s = buildArgsPrefix.ReplaceAllString(s, "")
	if loc := shellPrefix.FindStringIndex(s); loc != nil {
		s = s[loc[1]:]
		if rest, ok := strings.CutPrefix(s, "#(nop)"); ok {
			s = strings.TrimSpace(rest)
		} else {
			return historyCmd{kind: "RUN", text: s}
		}
	}
	word, rest, _ := strings.Cut(s, " ")
	switch w := strings.ToUpper(word); w {
	case "ADD", "COPY", "ENV", "ARG", "USER", "EXPOSE", "HEALTHCHECK", "LABEL", "WORKDIR", "CMD", "ENTRYPOINT", "VOLUME", "SHELL", "STOPSIGNAL", "ONBUILD", "MAINTAINER":
		return historyCmd{kind: w, text: strings.TrimSpace(rest)}
	}
	return historyCmd{text: s}
}

var (
	// updateRE matches a package index refresh.
	updateRE = regexp.MustCompile(`\b(?:apt-get|apt|aptitude)\s+(?:-{1,2}[\w=.-]+\s+)*update\b|\bapk\s+(?:-{1,2}[\w=.-]+\s+)*update\b|\bzypper\s+(?:-{1,2}[\w=.-]+\s+)*(?:refresh|ref)\b|\b(?:yum|dnf|microdnf)\s+(?:-{1,2}[\w=.-]+\s+)*makecache\b`)
	// installRE matches a package installation or upgrade.
	installRE = regexp.MustCompile(`\b(?:apt-get|apt|aptitude|yum|dnf|microdnf|zypper)\s+(?:-{1,2}[\w=.-]+\s+)*(?:install|upgrade|dist-upgrade|full-upgrade|in|up)\b|\bapk\s+(?:-{1,2}[\w=.-]+\s+)*(?:add|upgrade)\b|\bdpkg\s+-i\b`)
	urlRE     = regexp.MustCompile(`(?i)(?:^|\s)(?:https?|ftp)://|(?:^|\s)url:[0-9a-f]`)
)

// updateWithoutInstall reports whether a shell command refreshes a package
// index without installing anything in the same command.
func updateWithoutInstall(cmd string) bool {
	if !updateRE.MatchString(cmd) {
		return false
	}
	// Look for an install in what is left once the updates are removed.
	rest := updateRE.ReplaceAllString(cmd, "")
	return !installRE.MatchString(rest)
}

// addFromURL reports whether ADD arguments fetch a remote URL (or a git
// repository).
func addFromURL(args string) bool {
	return urlRE.MatchString(args) || strings.Contains(args, "git@")
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	w := 0
	for i, s := range out {
		if i == 0 || s != out[w-1] {
			out[w] = s
			w++
		}
	}
	return out[:w]
}
