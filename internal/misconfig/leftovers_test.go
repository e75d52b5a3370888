package misconfig

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"mamori/internal/analyzer"
)

func TestLeftovers(t *testing.T) {
	a := NewLeftoversAnalyzer()
	for p, wantLoc := range map[string]string{
		// Version control: one finding per repository, at the directory.
		"srv/app/.git/HEAD":      "srv/app/.git",
		".git/HEAD":              ".git",
		"srv/app/lib/.git":       "srv/app/lib/.git", // submodule link file
		"src/.svn/entries":       "src/.svn",
		"repo/.hg/00changelog.i": "repo/.hg",
		// Build files.
		"srv/app/Dockerfile":      "srv/app/Dockerfile",
		"Containerfile":           "Containerfile",
		"srv/app/Dockerfile.prod": "srv/app/Dockerfile.prod",
		"srv/docker-compose.yml":  "srv/docker-compose.yml",
		"srv/compose.yaml":        "srv/compose.yaml",
		"srv/app/.dockerignore":   "srv/app/.dockerignore",
		// Profiles, IDE settings, caches, editor and OS litter.
		"root/.aws/credentials":                "root/.aws/credentials",
		"root/.aws/config":                     "root/.aws/config",
		"home/dev/.azure/azureProfile.json":    "home/dev/.azure/azureProfile.json",
		"srv/app/.vscode/settings.json":        "srv/app/.vscode/settings.json",
		"srv/app/.idea/workspace.xml":          "srv/app/.idea/workspace.xml",
		"root/.npm/anonymous-cli-metrics.json": "root/.npm/anonymous-cli-metrics.json",
		"root/.cache/motd.legal-displayed":     "root/.cache/motd.legal-displayed",
		"srv/app/.DS_Store":                    "srv/app/.DS_Store",
		"root/.vimrc":                          "root/.vimrc",
		"root/.ssh/authorized_keys":            "root/.ssh/authorized_keys",
	} {
		if a.Required(p, fi{0o644}) != analyzer.Metadata {
			t.Errorf("Required(%s) = Skip", p)
			continue
		}
		res, err := a.Analyze(context.Background(), analyzer.Input{Path: p, Info: fi{0o644}, Layer: "sha256:l"})
		if err != nil || res == nil || len(res.Findings) != 1 {
			t.Errorf("%s: %v %+v", p, err, res)
			continue
		}
		f := res.Findings[0]
		expect(t, p, res.Findings, []string{ImgLeftoverFile}, nil)
		if f.Location.Path != wantLoc || f.Location.LayerDiffID != "sha256:l" {
			t.Errorf("%s: location %+v, want %s", p, f.Location, wantLoc)
		}
	}
	for _, p := range []string{
		"srv/app/.git/config", "srv/app/.git/objects/ab/cdef0123", "srv/.git/logs/HEAD", "srv/.git/refs/remotes/origin/HEAD",
		"app/node_modules/left-pad/.git/HEAD", "usr/lib/node_modules/npm/Dockerfile", "srv/vendor/x/Dockerfile",
		"usr/local/lib/python3.12/site-packages/pkg/Dockerfile", "usr/lib/python3/dist-packages/x/compose.yml",
		"root/go/pkg/mod/github.com/x/y@v1.0.0/Dockerfile", "usr/share/doc/x/examples/Dockerfile",
		"usr/share/vim/vim90/syntax/dockerfile.vim", "usr/share/nvim/runtime/ftplugin/dockerfile.lua",
		// The secret scanner reports private keys by content; known_hosts holds none.
		"root/.ssh/id_rsa", "root/.ssh/known_hosts", "home/x/authorized_keys",
		// Only files directly inside the directories, as dockle.
		"root/.aws/sso/cache/abc.json", "root/.cache/pip/http/a/b",
		"etc/ssh/sshd_config", "usr/bin/docker-compose", "srv/app/main.py",
	} {
		if got := a.Required(p, fi{0o644}); got != analyzer.Skip {
			t.Errorf("Required(%s) = %v, want Skip", p, got)
		}
	}
	if a.Required("srv/.git/HEAD", fi{0o777 | 1<<27}) != analyzer.Skip { // symlink
		t.Error("symlink wanted")
	}
}

// TestLeftoversWhiteout: rm -rf .git in a later layer removes the finding.
func TestLeftoversWhiteout(t *testing.T) {
	set, err := analyzer.NewSet([]analyzer.Analyzer{NewLeftoversAnalyzer()})
	if err != nil {
		t.Fatal(err)
	}
	l1, err := set.WalkLayer(context.Background(), "sha256:1", bytes.NewReader(tarOf(t, map[string]string{
		"srv/app/.git/HEAD": "ref: refs/heads/main\n", "srv/app/.git/config": "[core]\n", "srv/app/Dockerfile": "FROM x\n",
	})), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "srv/app/.wh..git", Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := set.WalkLayer(context.Background(), "sha256:2", &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	var locs []string
	for _, r := range analyzer.Merge([]*analyzer.LayerResult{l1}).Files {
		for _, f := range r.Findings {
			locs = append(locs, f.Location.Path)
		}
	}
	if len(locs) != 2 {
		t.Errorf("one layer: %v", locs)
	}
	locs = nil
	for _, r := range analyzer.Merge([]*analyzer.LayerResult{l1, l2}).Files {
		for _, f := range r.Findings {
			locs = append(locs, f.Location.Path)
		}
	}
	if len(locs) != 1 || locs[0] != "srv/app/Dockerfile" {
		t.Errorf("after rm -rf .git: %v", locs)
	}
}
