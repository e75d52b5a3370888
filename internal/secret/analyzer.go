package secret

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// analyzerVersion is bumped whenever the rules or the scanning change.
const analyzerVersion = 1

// Analyzer is the secret analyzer: an analyzer.Analyzer over file contents
// and an analyzer.ConfigAnalyzer over the image configuration (Env,
// history — where build arguments appear as "|2 TOKEN=… /bin/sh -c …" —,
// Labels, Entrypoint and Cmd). Safe for concurrent use.
type Analyzer struct {
	s *Scanner
}

var (
	_ analyzer.Analyzer       = (*Analyzer)(nil)
	_ analyzer.ConfigAnalyzer = (*Analyzer)(nil)
)

// New returns the secret analyzer. With no options it uses the built-in
// rules, redacts evidence and skips files above DefaultMaxFileSize.
func New(opts ...Option) (*Analyzer, error) {
	s, err := NewScanner(opts...)
	if err != nil {
		return nil, err
	}
	return &Analyzer{s: s}, nil
}

// Scanner returns the analyzer's scanner (for scanning outside a walk).
func (a *Analyzer) Scanner() *Scanner { return a.s }

// Name implements analyzer.Analyzer.
func (a *Analyzer) Name() string { return "secret" }

// Version implements analyzer.Analyzer. Custom rules, allow rules and
// WithShowSecrets change the output too: a layer cache key must also
// include OptionsDigest.
func (a *Analyzer) Version() int { return analyzerVersion }

// skipDirs are path prefixes holding documentation, translations, time
// zones and package-manager bookkeeping: no secrets, many lookalikes.
var skipDirs = []string{
	"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/",
	"usr/share/i18n/", "usr/share/zoneinfo/", "usr/share/mime/", "usr/share/icons/",
	"usr/lib/locale/", "usr/share/X11/locale/", "usr/share/perl5/Locale/",
}

// skipExts are suffixes of binary or bookkeeping formats (checked on the
// lower-cased base name). Binary files would be dropped by the NUL test
// anyway; skipping them here avoids reading them at all.
var skipExts = []string{
	".md5sums", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".bmp", ".webp", ".svgz",
	".woff", ".woff2", ".ttf", ".otf", ".eot", ".pfb", ".mo", ".gz", ".xz", ".bz2",
	".zst", ".lz4", ".zip", ".jar", ".war", ".whl", ".egg", ".tar", ".tgz", ".7z",
	".so", ".a", ".o", ".pyc", ".pyo", ".class", ".dex", ".mp3", ".mp4", ".ogg",
	".wav", ".pdf", ".db", ".sqlite", ".deb", ".rpm", ".apk", ".wasm", ".node",
}

// Required implements analyzer.Analyzer: it wants the content of regular
// files up to the size cap, except documentation, locale data and known
// binary formats.
func (a *Analyzer) Required(path string, info fs.FileInfo) analyzer.Need {
	if info != nil && (info.Size() > a.s.maxFileSize || info.Size() == 0 || !info.Mode().IsRegular()) {
		return analyzer.Skip
	}
	for _, d := range skipDirs {
		if strings.HasPrefix(path, d) {
			return analyzer.Skip
		}
	}
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		ext := strings.ToLower(base[i:])
		for _, e := range skipExts {
			if ext == e {
				return analyzer.Skip
			}
		}
	}
	if strings.Contains(base, ".so.") { // versioned shared objects
		return analyzer.Skip
	}
	// Installed Python packages' PKG-INFO/METADATA are their READMEs,
	// full of documentation example tokens.
	if (base == "PKG-INFO" || base == "METADATA") && (strings.Contains(path, ".egg-info") || strings.Contains(path, ".dist-info/")) {
		return analyzer.Skip
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer.
func (a *Analyzer) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if in.Content == nil {
		return nil, nil
	}
	if in.Content.Size() > a.s.maxFileSize {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.NewSectionReader(in.Content, 0, a.s.maxFileSize))
	if err != nil {
		return nil, fmt.Errorf("secret: read %s: %w", in.Path, err)
	}
	if IsBinary(b) {
		return nil, nil
	}
	fs := a.s.Scan(in.Path, b)
	if len(fs) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Findings: fs}, nil
}

// AnalyzeConfig implements analyzer.ConfigAnalyzer. Findings carry
// Location.Config ("Env[2]", "History[5]", "Labels[com.example.token]",
// "Entrypoint", "Cmd") and the CIS-Docker-4.10 control.
func (a *Analyzer) AnalyzeConfig(ctx context.Context, cfg *v1.ConfigFile) ([]model.Finding, error) {
	if cfg == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return a.s.ScanConfig(cfg), nil
}

// ScanConfig scans the secret-bearing fields of an image configuration.
func (s *Scanner) ScanConfig(cfg *v1.ConfigFile) []model.Finding {
	var out []model.Finding
	for i, e := range cfg.Config.Env {
		out = append(out, s.ScanText("Env["+strconv.Itoa(i)+"]", withAssignments(e))...)
	}
	for i, h := range cfg.History {
		if h.CreatedBy != "" {
			out = append(out, s.ScanText("History["+strconv.Itoa(i)+"]", withAssignments(h.CreatedBy))...)
		}
	}
	keys := make([]string, 0, len(cfg.Config.Labels))
	for k := range cfg.Config.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, s.ScanText("Labels["+k+"]", k+"="+cfg.Config.Labels[k])...)
	}
	if len(cfg.Config.Entrypoint) > 0 {
		out = append(out, s.ScanText("Entrypoint", strings.Join(cfg.Config.Entrypoint, " "))...)
	}
	if len(cfg.Config.Cmd) > 0 {
		out = append(out, s.ScanText("Cmd", strings.Join(cfg.Config.Cmd, " "))...)
	}
	return out
}

// withAssignments appends each NAME=value word of a command line on a line
// of its own, so that the line-anchored generic rules see build arguments
// ("|2 NPM_TOKEN=… /bin/sh -c …") and ENV instructions in history as the
// config assignments they are. ScanText drops the resulting duplicates.
func withAssignments(text string) string {
	var b strings.Builder
	b.WriteString(text)
	for _, w := range strings.Fields(text) {
		eq := strings.IndexByte(w, '=')
		if eq <= 0 || eq == len(w)-1 || !isEnvName(w[:eq]) {
			continue
		}
		b.WriteByte('\n')
		b.WriteString(w[:eq])
		b.WriteByte('=')
		b.WriteString(strings.Trim(w[eq+1:], `"'`))
	}
	return b.String()
}

func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// OptionsDigest identifies the scanner's rules, allow rules and output
// options; combine it with Version in a cache key.
func (a *Analyzer) OptionsDigest() string { return a.s.digest }
