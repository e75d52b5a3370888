// Package java catalogs Maven artifacts in Java archives (jar, war, ear,
// Jenkins plugins ...), including archives nested inside archives
// (WEB-INF/lib/*.jar, BOOT-INF/lib/*.jar, ear modules), read in place with
// archive/zip and bounded by explicit caps.
//
// Identity of an archive, in order (as syft does):
//  1. every META-INF/maven/<group>/<artifact>/pom.properties: shaded and
//     uber jars hold several, and each is reported;
//  2. when no pom.properties names the archive itself, META-INF/MANIFEST.MF
//     (Implementation-*, Bundle-*, Jenkins plugin fields) together with the
//     file name ("commons-text-1.9.jar" is commons-text 1.9).
//
// Nested locations use Java's jar-URL notation: a package found in
// WEB-INF/lib/x.jar inside app/app.war is located at
// "app/app.war!/WEB-INF/lib/x.jar", and deeper nesting chains the same way
// ("a.ear!/web.war!/WEB-INF/lib/x.jar"). The part before the first "!/" is
// always the path of the file in the image.
package java

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"mamori/internal/analyzer"
)

const (
	// Name is the analyzer's name and the Cataloger of its packages.
	Name = "java-archive"
	// version is bumped whenever the output for the same input may change.
	version = 1

	// NestedSeparator separates an archive's path from the path of a member
	// inside it in Location.Path, as in jar: URLs (java.net.JarURLConnection).
	NestedSeparator = "!/"
)

// Caps. Every byte read into memory is bounded by one of these.
const (
	// maxDepth is how deep archives are opened inside archives. Real
	// applications nest three levels at most (ear > war > jar); 8 leaves room
	// and stops a recursive archive quickly.
	maxDepth = 8
	// maxTotalBytes bounds the bytes decompressed for one top-level archive,
	// all nested members included. It is also the most memory one Analyze
	// can hold in nested archives at a time. The largest real fat jars and
	// ears are a few hundred MiB compressed; their metadata is a tiny part.
	maxTotalBytes = 512 << 20
	// maxEntryBytes bounds one compressed nested archive read into memory.
	// Larger nested archives are skipped with a warning (stored, i.e.
	// uncompressed, members are read in place and need no memory).
	maxEntryBytes = 64 << 20
	// maxEntries bounds the central-directory entries of one top-level
	// archive and all its nested archives together (archive/zip keeps a
	// File struct of a few hundred bytes per entry). The largest real
	// uber jars have tens of thousands of entries.
	maxEntries = 100_000
	// maxMetaBytes bounds one MANIFEST.MF or pom.properties; real ones are
	// a few KiB.
	maxMetaBytes = 1 << 20
	// maxWarnings bounds the warnings kept for one top-level archive.
	maxWarnings = 16
)

// Sentinel errors. Warnings about skipped members wrap one of these.
var (
	// ErrNotZip: the file is not a readable zip archive.
	ErrNotZip = errors.New("java: not a readable zip archive")
	// ErrTooDeep: an archive nested deeper than maxDepth was not opened.
	ErrTooDeep = errors.New("java: archive nesting too deep")
	// ErrEntryTooLarge: a nested member is larger than maxEntryBytes.
	ErrEntryTooLarge = errors.New("java: archive member too large")
	// ErrBudget: the decompression budget of the top-level archive is spent.
	ErrBudget = errors.New("java: decompression budget exceeded")
	// ErrTooManyEntries: the archives hold more entries than maxEntries.
	ErrTooManyEntries = errors.New("java: too many archive entries")
)

// limits are the caps a Cataloger applies; tests shrink them.
type limits struct {
	depth      int
	totalBytes int64
	entryBytes int64
	entries    int
	metaBytes  int64
}

func defaultLimits() limits {
	return limits{
		depth:      maxDepth,
		totalBytes: maxTotalBytes,
		entryBytes: maxEntryBytes,
		entries:    maxEntries,
		metaBytes:  maxMetaBytes,
	}
}

// Cataloger is the Java archive analyzer. Create it with New.
type Cataloger struct {
	lim limits
}

var _ analyzer.Analyzer = (*Cataloger)(nil)

// New returns the Java archive analyzer. It is safe for concurrent use.
func New() analyzer.Analyzer { return &Cataloger{lim: defaultLimits()} }

// Name implements analyzer.Analyzer.
func (*Cataloger) Name() string { return Name }

// Version implements analyzer.Analyzer.
func (*Cataloger) Version() int { return version }

// archiveExts are the zip-based Java archive kinds looked at, top-level and
// nested: jar, web (war), enterprise (ear), resource adapter (rar),
// Jenkins plugins (jpi, hpi), JBoss (sar, par), NiFi (nar), Karaf (kar),
// Liferay (lpkg).
var archiveExts = [...]string{".jar", ".war", ".ear", ".rar", ".jpi", ".hpi", ".sar", ".par", ".nar", ".kar", ".lpkg"}

// isArchiveName reports whether name ends with a Java archive extension,
// in any case.
func isArchiveName(name string) bool {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || len(name)-i > 5 {
		return false
	}
	ext := name[i:]
	for _, e := range archiveExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

// Required wants the content of regular files with a Java archive extension.
func (*Cataloger) Required(path string, info fs.FileInfo) analyzer.Need {
	if info != nil && !info.Mode().IsRegular() {
		return analyzer.Skip
	}
	if isArchiveName(path) {
		return analyzer.Content
	}
	return analyzer.Skip
}

// Analyze catalogs one archive and the archives nested in it.
//
// When the top-level file is not a readable zip, it returns an error
// wrapping ErrNotZip and no result. Otherwise it returns every package it
// could identify, and, when members were skipped (too deep, too large,
// corrupt, budget spent), also a non-nil error joining one warning per
// skip, each wrapping a sentinel of this package: callers should keep the
// result even when the error is not nil.
func (c *Cataloger) Analyze(ctx context.Context, in analyzer.Input) (*analyzer.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.Content == nil {
		return nil, fmt.Errorf("java %s: no content", in.Path)
	}
	w := newWalker(ctx, c.lim)
	if err := w.archive(in.Content, in.Content.Size(), in.Path, 0); err != nil {
		return nil, fmt.Errorf("java %s: %w", in.Path, err)
	}
	res := &analyzer.Result{Packages: w.pkgs}
	if err := w.warnings(); err != nil {
		return res, fmt.Errorf("java %s: %w", in.Path, err)
	}
	return res, nil
}
