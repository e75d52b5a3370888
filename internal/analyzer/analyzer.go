// Package analyzer is the single-pass walk of scanning: every layer of an
// image (or a file tree) is read once, and each file is handed to the
// analyzers that asked for it. Catalogers, secret rules, malware engines and
// misconfiguration checks are all analyzers.
package analyzer

import (
	"context"
	"io"
	"io/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mamori/internal/model"
)

// Need is what an analyzer wants of a file.
type Need uint8

const (
	// Skip: the analyzer does not want the file.
	Skip Need = iota
	// Metadata: the analyzer wants the path and fs.FileInfo only (mode, size);
	// Input.Content is nil.
	Metadata
	// Content: the analyzer wants the bytes too.
	Content
)

// Analyzer looks at single files of a layer or file tree.
//
// Implementations must be safe for concurrent use: layers are analysed in
// parallel with the same Analyzer values.
type Analyzer interface {
	// Name is a short stable identifier ("dpkg", "npm-lock", "secret").
	Name() string
	// Version is bumped whenever the analyzer's output for the same input may
	// change; it is part of the layer cache key.
	Version() int
	// Required says what the analyzer needs of the file at path (clean,
	// slash-separated, relative to the root, no leading slash). It is called
	// for every regular file, so it must be cheap: no I/O, no regexps over the
	// path when a suffix test will do. info.Mode() carries setuid/setgid and
	// permission bits as recorded in the layer.
	Required(path string, info fs.FileInfo) Need
	// Analyze looks at one file. An error is recorded against the file as a
	// warning and the walk goes on: a malformed package database must not
	// stop a scan. A non-nil Result returned with an error is kept (partial
	// results: all but one member of an archive scanned).
	Analyze(ctx context.Context, in Input) (*Result, error)
}

// Input is one file handed to an analyzer.
type Input struct {
	// Path is clean, slash-separated and relative to the root (no leading slash).
	Path string
	Info fs.FileInfo
	// Content reads the file's bytes; nil when the analyzer asked for
	// Metadata only. It is positioned at 0 and supports ReadAt, so zip and
	// ELF readers can use it directly. Its Size() is the file's size.
	Content *io.SectionReader
	// Layer is the diff ID of the layer the file is in; empty for file trees.
	Layer string
}

// Result is what an analyzer found in one file. Every field is optional.
type Result struct {
	Packages []model.Package `json:"packages,omitempty"`
	// OS is set by OS-detection analyzers.
	OS       *model.OS       `json:"os,omitempty"`
	Findings []model.Finding `json:"findings,omitempty"`
	// Present keeps a result that holds nothing else, so that this version
	// of the file still replaces lower layers' results for its path in
	// Merge. An analyzer whose findings a later, fixed version of a file
	// must clear (an /etc/shadow whose empty password was locked by a later
	// RUN) sets it on every version of the file it looks at; without it a
	// clean rewrite leaves no result and the stale findings below survive.
	Present bool `json:"present,omitempty"`
	// Owned lists the files an OS package database says its packages
	// installed, with their digests (dpkg's md5sums, rpm's file digests,
	// apk's Z: checksums). The scan decides at merge whether a file with a
	// finding is one of them, unmodified or changed after install.
	Owned OwnedFiles `json:"owned,omitempty"`
	// Digests are set by the walk on files that have findings or packages, so that the
	// merge can compare them with Owned.
	Digests *Digests `json:"digests,omitempty"`
	// Warnings are problems with this file that did not stop its analysis
	// (records of a package database that were skipped as malformed). The
	// walk turns them into the layer's warnings, which every output format
	// shows; they are not part of the per-file result.
	Warnings []string `json:"-"`
}

// Empty reports whether r holds nothing (and is not marked Present).
func (r *Result) Empty() bool {
	return r == nil || (len(r.Packages) == 0 && r.OS == nil && len(r.Findings) == 0 && len(r.Owned) == 0 && !r.Present)
}

// OwnedFile is one file of an OS package, as its package database lists it.
type OwnedFile struct {
	// Path is clean and root-relative, like every path of a result.
	Path string `json:"path"`
	// Package is the package's name; Arch its architecture when the
	// database names one (dpkg's "libc6:amd64.md5sums").
	Package string `json:"package"`
	Arch    string `json:"arch,omitempty"`
	// Type is the package-url type of the database (deb, rpm, apk).
	Type string `json:"type"`
	// Algo is the digest algorithm ("md5", "sha1", "sha256", "sha512" ...)
	// and Digest the lower-case hex digest the database recorded.
	Algo   string `json:"algo"`
	Digest string `json:"digest"`
}

// Digests are the digests of one file's content, in lower-case hex, in the
// algorithms package databases use.
type Digests struct {
	MD5    string `json:"md5"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512,omitempty"`
}

// Of returns the digest in algo, "" for an algorithm not computed.
func (d *Digests) Of(algo string) string {
	if d == nil {
		return ""
	}
	switch algo {
	case "md5":
		return d.MD5
	case "sha1":
		return d.SHA1
	case "sha256":
		return d.SHA256
	case "sha512":
		return d.SHA512
	}
	return ""
}

// ConfigAnalyzer looks at an image's configuration (Env, User, history ...)
// once per image, after the layers are walked.
type ConfigAnalyzer interface {
	Name() string
	Version() int
	AnalyzeConfig(ctx context.Context, cfg *v1.ConfigFile) ([]model.Finding, error)
}
