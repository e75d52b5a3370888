package apk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/package-url/packageurl-go"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

type record struct {
	name, version, arch, origin, license string
	fields                               int
	// dir is the current F: directory, file the last R: file of it.
	dir, file string
	owned     []analyzer.OwnedFile
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
	pkgs, _, skipped, err := parseInstalled(ctx, r, path, false)
	return pkgs, skipped, err
}

// ParseInstalledFiles is ParseInstalled that also returns the files each
// package installed with their checksums: F: (a directory), R: (a file in
// it) and Z: (its checksum: "Q1" and the base64 SHA-1 of the content, or
// the hex MD5 of old databases). Files without a checksum are left out.
func ParseInstalledFiles(ctx context.Context, r io.Reader, path string) ([]model.Package, []analyzer.OwnedFile, Skipped, error) {
	return parseInstalled(ctx, r, path, true)
}

func parseInstalled(ctx context.Context, r io.Reader, path string, files bool) ([]model.Package, []analyzer.OwnedFile, Skipped, error) {
	cr := &countingReader{r: io.LimitReader(r, maxInstalledSize+1)}
	br := bufio.NewReaderSize(cr, maxLineSize)
	var (
		pkgs    []model.Package
		owned   []analyzer.OwnedFile
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
			for i := range cur.owned {
				cur.owned[i].Package, cur.owned[i].Arch = cur.name, cur.arch
			}
			owned = append(owned, cur.owned...)
		}
		cur = record{}
	}
	for {
		line, err := readLine(br)
		if cr.n > maxInstalledSize {
			return nil, nil, Skipped{}, ErrTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, Skipped{}, err
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
			case 'F':
				if files {
					cur.dir, cur.file = v(), ""
				}
			case 'R':
				if files {
					cur.file = v()
				}
			case 'Z':
				if files && cur.file != "" {
					if o, ok := ownedFile(cur.dir, cur.file, v()); ok {
						cur.owned = append(cur.owned, o)
					}
					cur.file = ""
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if lines++; lines%4096 == 0 && ctx.Err() != nil {
			return nil, nil, Skipped{}, ctx.Err()
		}
	}
	flush()
	if len(pkgs) == 0 && bad > 0 {
		return nil, nil, Skipped{}, fmt.Errorf("%w: no package record, %d lines that are not X:value", ErrMalformed, bad)
	}
	return pkgs, owned, Skipped{BadLines: bad, Records: skipped}, nil
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

// ownedFile turns an R: file of directory F: and its Z: checksum into an
// owned file; ok is false for a path with ".." or a checksum of no known
// form.
func ownedFile(dir, file, sum string) (analyzer.OwnedFile, bool) {
	p, err := analyzer.CleanTarPath(dir + "/" + file)
	if err != nil || p == "" || strings.Contains(file, "/") {
		return analyzer.OwnedFile{}, false
	}
	o := analyzer.OwnedFile{Path: p, Type: model.TypeAPK}
	switch {
	case strings.HasPrefix(sum, "Q1"):
		b, err := base64.StdEncoding.DecodeString(sum[2:])
		if err != nil || len(b) != sha1.Size {
			return analyzer.OwnedFile{}, false
		}
		o.Algo, o.Digest = "sha1", hex.EncodeToString(b)
	case len(sum) == 32:
		if _, err := hex.DecodeString(sum); err != nil {
			return analyzer.OwnedFile{}, false
		}
		o.Algo, o.Digest = "md5", strings.ToLower(sum)
	default:
		return analyzer.OwnedFile{}, false
	}
	return o, true
}
