package misconfig

import (
	"context"
	"io/fs"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Check IDs of this file.
const (
	ImgLeftoverFile = "MSC-IMG-013"
)

// leftoverChecks are the leftover-file check of this file: metadata here, logic below, tests in leftovers_test.go.
func leftoverChecks() []CheckInfo {
	return []CheckInfo{
		img(ImgLeftoverFile, "Unnecessary file in the image", low,
			"The image ships a file that only the build needed or that leaked in from a developer's machine: version-control metadata (.git, .svn, .hg: the source and its history), Dockerfiles and Compose files, cloud CLI profile directories (.aws, .azure, .gcp), IDE settings, caches, an SSH authorized_keys. This check reports that the file is there; credentials inside such files are reported by the secret scanner.",
			"Exclude it from the build context (.dockerignore) or delete it in the same RUN that created it; use multi-stage builds so that only the artefacts reach the final stage.", nistImageConfig, nistImageSecrets).withPeers("DKL-LI-0003"),
	}
}

// leftoversVersion is bumped when LeftoversAnalyzer's output can change.
const leftoversVersion = 1

// leftoverDirs are directories that should not be shipped, reported for
// every file directly inside them (dockle DKL-LI-0003 looks at the same
// level): cloud CLI profiles, editor and IDE settings, tool caches.
var leftoverDirs = map[string]string{
	".aws":    "AWS CLI profile directory",
	".azure":  "Azure CLI profile directory",
	".gcp":    "Google Cloud credentials directory",
	".vscode": "VS Code workspace settings",
	".idea":   "JetBrains IDE project settings",
	".npm":    "npm cache directory",
	".cache":  "user cache directory",
}

// leftoverFiles are files that should not be shipped, by base name.
var leftoverFiles = map[string]string{
	"docker-compose.yml":  "Compose file",
	"docker-compose.yaml": "Compose file",
	"compose.yml":         "Compose file",
	"compose.yaml":        "Compose file",
	".dockerignore":       "Docker build context file",
	".DS_Store":           "macOS Finder metadata",
	".vimrc":              "editor configuration",
	// A key in authorized_keys is a standing login for whoever holds the
	// private half; the file holds no secret, so the secret scanner is silent.
	"authorized_keys":  "SSH authorized_keys (a standing login)",
	"authorized_keys2": "SSH authorized_keys (a standing login)",
}

// vcsMarkers name, per version-control metadata directory, one file every
// repository has exactly once, so that a repository is reported once (not
// once per object file).
var vcsMarkers = map[string]string{
	".git": "HEAD",          // git: the current branch
	".svn": "entries",       // Subversion: every format (a stub since 1.7)
	".hg":  "00changelog.i", // Mercurial: always written for old clients
}

// thirdPartyDirs hold other people's packages: what they ship is not the
// image author's leftover (dockle skips node_modules/ and vendor/ too).
var thirdPartyDirs = []string{"/node_modules/", "/vendor/", "/site-packages/", "/dist-packages/",
	"/pkg/mod/", "/usr/share/doc/", "/gems/", "/.cargo/registry/", "/.cargo/git/"}

// notDockerfileExts are extensions of files named like Dockerfiles that are
// something else (editor syntax files: usr/share/vim/.../dockerfile.vim).
var notDockerfileExts = []string{".vim", ".el", ".elc", ".lua", ".py", ".js", ".ts", ".go", ".json", ".xml",
	".md", ".rst", ".txt", ".html", ".snippets", ".sublime-syntax", ".tmlanguage"}

// isDockerfileName is classify's Dockerfile test without the look-alikes.
func isDockerfileName(base string) bool {
	if classify(base) != kindDockerfile {
		return false
	}
	l := strings.ToLower(base)
	for _, e := range notDockerfileExts {
		if strings.HasSuffix(l, e) {
			return false
		}
	}
	return true
}

// leftover says whether the file at p (clean, root-relative) is an
// unnecessary file, and returns the path to report (the repository
// directory for version-control metadata, the file otherwise) and what it is.
// It runs for every file of an image: the name tests come first, and the
// path is only searched for third-party trees once a name matched.
func leftover(p string) (loc, what string, ok bool) {
	dir, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i], p[i+1:]
	}
	dirBase := dir[strings.LastIndexByte(dir, '/')+1:]
	switch m, isVCS := vcsMarkers[dirBase]; {
	case isVCS:
		if base != m {
			return "", "", false
		}
		loc, what = dir, "version control metadata ("+dirBase+"/)"
	case base == ".git":
		// A file named .git: a submodule's or worktree's link to its repository.
		loc, what = p, "git link file"
	case leftoverDirs[dirBase] != "":
		loc, what = p, leftoverDirs[dirBase]+" ("+dirBase+"/)"
	case leftoverFiles[base] != "":
		if strings.HasPrefix(base, "authorized_keys") && dirBase != ".ssh" {
			return "", "", false
		}
		loc, what = p, leftoverFiles[base]
	case isDockerfileName(base):
		loc, what = p, "Dockerfile"
	default:
		return "", "", false
	}
	sp := "/" + p
	for _, d := range thirdPartyDirs {
		if strings.Contains(sp, d) {
			return "", "", false
		}
	}
	return loc, what, true
}

// LeftoversAnalyzer is a Metadata-only analyzer reporting files that have no
// business in an image (MSC-IMG-013, dockle DKL-LI-0003): version-control
// metadata, build files, cloud CLI profile and IDE directories, caches,
// SSH authorized_keys. It reports that the file is there, never its
// content: credentials inside such files are the secret scanner's findings.
// Whiteouts of a later layer (rm -rf .git) drop its findings in the merge.
type LeftoversAnalyzer struct{}

var _ analyzer.Analyzer = LeftoversAnalyzer{}

// NewLeftoversAnalyzer returns the analyzer.
func NewLeftoversAnalyzer() LeftoversAnalyzer { return LeftoversAnalyzer{} }

// Name implements analyzer.Analyzer.
func (LeftoversAnalyzer) Name() string { return "misconfig-leftovers" }

// Version implements analyzer.Analyzer.
func (LeftoversAnalyzer) Version() int { return leftoversVersion }

// Required implements analyzer.Analyzer: Metadata for unnecessary files.
func (LeftoversAnalyzer) Required(p string, info fs.FileInfo) analyzer.Need {
	if info == nil || !info.Mode().IsRegular() {
		return analyzer.Skip
	}
	if _, _, ok := leftover(p); ok {
		return analyzer.Metadata
	}
	return analyzer.Skip
}

// Analyze implements analyzer.Analyzer.
func (LeftoversAnalyzer) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	loc, what, ok := leftover(in.Path)
	if !ok {
		return nil, nil
	}
	ev := loc + ": " + what
	f := newFinding(ImgLeftoverFile, model.Location{Path: loc, LayerDiffID: in.Layer}, ev)
	return &analyzer.Result{Findings: []model.Finding{f}}, nil
}
