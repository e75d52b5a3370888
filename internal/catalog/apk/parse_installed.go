package apk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/package-url/packageurl-go"

	"mamori/internal/model"
)

type record struct {
	name, version, arch, origin, license string
	fields                               int
}

// ParseInstalled reads apk's installed database
// (https://wiki.alpinelinux.org/wiki/Apk_spec): one record per package,
// records separated by blank lines, each line "X:value" where X is one
// letter. P (name), V (version), A (arch), o (origin, the source package)
// and L (license) are read; the file lines (F, R, a, Z ...) are skipped.
// Records without P or V are skipped; a file with no record and lines that
// are not "X:value" is ErrMalformed. CRLF is tolerated. Locations are set
// to path. What was skipped is counted in Skipped, which the cataloger turns
// into a scan warning. Reading stops with ctx.Err() when ctx is done.
func ParseInstalled(ctx context.Context, r io.Reader, path string) ([]model.Package, Skipped, error) {
	cr := &countingReader{r: io.LimitReader(r, maxInstalledSize+1)}
	br := bufio.NewReaderSize(cr, maxLineSize)
	var (
		pkgs    []model.Package
		cur     record
		records int
		skipped int
		bad     int
		lines   int
	)
	flush := func() {
		if cur.fields == 0 {
			return
		}
		records++
		if cur.name == "" || cur.version == "" {
			skipped++
		} else {
			pkgs = append(pkgs, newPackage(cur, path))
		}
		cur = record{}
	}
	for {
		line, err := readLine(br)
		if cr.n > maxInstalledSize {
			return nil, Skipped{}, ErrTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, Skipped{}, err
		}
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			flush()
		case len(line) < 2 || line[1] != ':':
			bad++
		default:
			cur.fields++
			v := func() string { return string(bytes.TrimSpace(line[2:])) }
			switch line[0] {
			case 'P':
				cur.name = v()
			case 'V':
				cur.version = v()
			case 'A':
				cur.arch = v()
			case 'o':
				cur.origin = v()
			case 'L':
				cur.license = v()
			}
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
		return nil, Skipped{}, fmt.Errorf("%w: no package record, %d lines that are not X:value", ErrMalformed, bad)
	}
	return pkgs, Skipped{BadLines: bad, Records: skipped}, nil
}

// Skipped counts what a parse left out of the database as malformed.
type Skipped struct {
	// BadLines are lines that are not "X:value".
	BadLines int
	// Records are records without P (name) or V (version).
	Records int
}

// Warning says what was skipped in one line; "" when nothing was.
func (s Skipped) Warning() string {
	switch {
	case s.BadLines > 0 && s.Records > 0:
		return fmt.Sprintf("skipped %d malformed lines and %d records without P: or V:", s.BadLines, s.Records)
	case s.BadLines > 0:
		return fmt.Sprintf("skipped %d malformed lines", s.BadLines)
	case s.Records > 0:
		return fmt.Sprintf("skipped %d records without P: or V:", s.Records)
	}
	return ""
}

func newPackage(r record, path string) model.Package {
	p := model.Package{
		Name:      r.name,
		Version:   r.version,
		Type:      model.TypeAPK,
		Arch:      r.arch,
		Cataloger: Name,
		Locations: []model.PackageLocation{{Path: path}},
	}
	// Subpackages share their origin's version (pkgver-pkgrel of one
	// APKBUILD), and Alpine's advisories name the origin.
	if r.origin != "" && r.origin != r.name {
		p.SourceName, p.SourceVersion = r.origin, r.version
	}
	if r.license != "" {
		p.Licenses = []string{r.license}
	}
	var q packageurl.Qualifiers
	if r.arch != "" {
		q = packageurl.Qualifiers{{Key: "arch", Value: r.arch}}
	}
	p.PURL = packageurl.NewPackageURL(packageurl.TypeApk, "alpine", r.name, r.version, q, "").ToString()
	return p
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
