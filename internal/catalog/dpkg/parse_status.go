package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

// paragraph holds the fields of one control paragraph that are read here.
type paragraph struct {
	pkg, version, arch, source, status string
	hasStatus                          bool
	fields                             int
}

// ParseStatus reads a dpkg status file (deb822 / RFC 822 style paragraphs,
// https://www.debian.org/doc/debian-policy/ch-controlfields.html) and
// returns the installed packages, Locations set to path.
//
// A package is installed when the third word of its Status is "installed"
// ("install ok installed", also "hold ok installed" and "deinstall ok
// installed": its files are on disk until it is removed). Paragraphs
// without Status count as installed only when statusD is true (distroless
// status.d files are bare control files). Continuation lines, any number of
// blank lines between paragraphs, CRLF line ends and "#" comment lines are
// tolerated; field names are case-insensitive. Paragraphs without Package or
// Version are skipped. A file with no paragraph at all and lines that are not
// fields is ErrMalformed. What was skipped is counted in Skipped, which the
// cataloger turns into a scan warning. Reading stops with ctx.Err() when ctx
// is done.
func ParseStatus(ctx context.Context, r io.Reader, path string, statusD bool) ([]model.Package, Skipped, error) {
	cr := &countingReader{r: io.LimitReader(r, maxStatusSize+1)}
	br := bufio.NewReaderSize(cr, maxLineSize)
	var (
		pkgs    []model.Package
		cur     paragraph
		lines   int
		bad     int // lines that are not fields
		skipped int // paragraphs without Package or Version
		notInst int // paragraphs of packages not installed
		nParas  int
		inField bool
	)
	flush := func() {
		if cur.fields == 0 {
			return
		}
		nParas++
		switch {
		case cur.pkg == "" || cur.version == "":
			skipped++
		case !installed(cur, statusD):
			notInst++
		default:
			pkgs = append(pkgs, newPackage(cur, path))
		}
		cur = paragraph{}
	}
	for {
		line, err := readLine(br)
		if cr.n > maxStatusSize {
			return nil, Skipped{}, ErrTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, Skipped{}, err
		}
		if len(line) > 0 || err == nil {
			handleLine(line, &cur, &inField, &bad, flush)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if lines++; lines%4096 == 0 && ctx.Err() != nil {
			return nil, Skipped{}, ctx.Err()
		}
	}
	flush()
	if len(pkgs) == 0 && bad > 0 {
		return nil, Skipped{}, fmt.Errorf("%w: no package paragraph, %d lines that are not fields", ErrMalformed, bad)
	}
	if notInst > 0 {
		slog.Debug("dpkg status: packages not installed", "path", path, "count", notInst)
	}
	return pkgs, Skipped{BadLines: bad, Records: skipped}, nil
}

// Skipped counts what a parse left out of a package database as malformed.
type Skipped struct {
	// BadLines are lines that are not fields (or stray continuations).
	BadLines int
	// Records are paragraphs without Package or Version.
	Records int
}

// Warning says what was skipped in one line; "" when nothing was.
func (s Skipped) Warning() string {
	switch {
	case s.BadLines > 0 && s.Records > 0:
		return fmt.Sprintf("skipped %d malformed lines and %d paragraphs without Package or Version", s.BadLines, s.Records)
	case s.BadLines > 0:
		return fmt.Sprintf("skipped %d malformed lines", s.BadLines)
	case s.Records > 0:
		return fmt.Sprintf("skipped %d paragraphs without Package or Version", s.Records)
	}
	return ""
}

// handleLine applies one line (without its line end) to the paragraph.
// inField tells whether a field has been seen since the last blank line, so
// that a continuation line can be told from a stray indented one.
func handleLine(line []byte, cur *paragraph, inField *bool, bad *int, flush func()) {
	if len(bytes.TrimSpace(line)) == 0 {
		flush()
		*inField = false
		return
	}
	switch line[0] {
	case ' ', '\t':
		// Continuation of the previous field; none of the fields read here
		// is multi-line.
		if !*inField {
			*bad++
		}
		return
	case '#':
		return
	}
	k, v, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(k) == 0 {
		*bad++
		return
	}
	*inField = true
	cur.fields++
	k = bytes.TrimSpace(k)
	// Field names are case-insensitive (Debian Policy 5.1); EqualFold avoids
	// an allocation per line.
	switch {
	case bytes.EqualFold(k, []byte("Package")):
		cur.pkg = string(bytes.TrimSpace(v))
	case bytes.EqualFold(k, []byte("Version")):
		cur.version = string(bytes.TrimSpace(v))
	case bytes.EqualFold(k, []byte("Architecture")):
		cur.arch = string(bytes.TrimSpace(v))
	case bytes.EqualFold(k, []byte("Source")):
		cur.source = string(bytes.TrimSpace(v))
	case bytes.EqualFold(k, []byte("Status")):
		cur.status = string(bytes.TrimSpace(v))
		cur.hasStatus = true
	}
}

// readLine returns the next line without "\n" or "\r\n". A line longer than
// the reader's buffer is truncated to the buffer and the rest discarded.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, err
}

func installed(p paragraph, statusD bool) bool {
	if !p.hasStatus {
		return statusD
	}
	f := strings.Fields(p.status)
	return len(f) == 3 && f[2] == "installed"
}

// parseSource splits "foo (1.2-3)" into name and version; "foo" has no
// version.
func parseSource(s string) (name, version string) {
	name, rest, ok := strings.Cut(s, " ")
	if !ok {
		return name, ""
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")") {
		version = strings.TrimSpace(rest[1 : len(rest)-1])
	}
	return name, version
}

func newPackage(p paragraph, path string) model.Package {
	pkg := model.Package{
		Name:      p.pkg,
		Version:   p.version,
		Type:      model.TypeDeb,
		Arch:      p.arch,
		Cataloger: Name,
		Locations: []model.PackageLocation{{Path: path}},
	}
	if p.source != "" {
		name, version := parseSource(p.source)
		if version == "" {
			version = p.version // "Source: foo" means the same version
		}
		// Both are set whenever the source differs from the binary package,
		// so a matcher never pairs a source name with a binary version.
		if name != "" && (name != p.pkg || version != p.version) {
			pkg.SourceName, pkg.SourceVersion = name, version
		}
	}
	var q packageurl.Qualifiers
	if p.arch != "" {
		q = packageurl.Qualifiers{{Key: "arch", Value: p.arch}}
	}
	pkg.PURL = packageurl.NewPackageURL(packageurl.TypeDebian, "debian", p.pkg, p.version, q, "").ToString()
	return pkg
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
