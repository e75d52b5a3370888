package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// store serves the named files of an archive or layout directory. Names are
// slash-separated and relative; a name that is absolute or climbs out with
// ".." is refused, so nothing outside the archive or directory is ever read.
type store interface {
	// open returns the file's bytes and size.
	open(name string) (io.ReadCloser, int64, error)
	// close releases the store.
	close() error
}

// cleanName returns the canonical form of an archive member name, or an
// error if the name is empty, absolute or escapes the root.
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: empty or NUL in path %q", ErrMalformed, name)
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("%w: unsafe path %q", ErrMalformed, name)
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: unsafe path %q", ErrMalformed, name)
	}
	return c, nil
}

// readCapped reads a whole named file of at most limit bytes.
func readCapped(s store, name string, limit int64) ([]byte, error) {
	rc, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d-byte cap", ErrTooLarge, name, size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is over the %d-byte cap", ErrTooLarge, name, limit)
	}
	return b, nil
}

// tarEntry is the data of one regular file in an indexed tar.
type tarEntry struct {
	offset, size int64
}

// tarStore serves the files of a tar archive as sections of the archive file,
// without extracting it: the archive is indexed once (headers only; data is
// skipped by seeking) and each open is an io.SectionReader.
type tarStore struct {
	f       *os.File
	entries map[string]tarEntry
	links   map[string]string // cleaned name -> cleaned target
}

var _ store = (*tarStore)(nil)

// maxLinkHops caps symlink chains inside an archive (docker save of old
// daemons links duplicate layers once; more is a loop or an attack).
const maxLinkHops = 8

// openTarStore opens and indexes the tar at p.
func openTarStore(p string) (*tarStore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", p, errNotExist(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat archive %s: %w", p, err)
	}
	s, err := indexTar(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("index archive %s: %w", p, err)
	}
	s.f = f
	return s, nil
}

func errNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// indexTar records the data offset and size of every regular file in the tar
// held by r (size bytes). The section reader's position after tar.Reader.Next
// is the first byte of the entry's data, because archive/tar reads headers in
// whole blocks and skips data with Seek.
func indexTar(r io.ReaderAt, size int64) (*tarStore, error) {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	s := &tarStore{entries: map[string]tarEntry{}, links: map[string]string{}}
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %w", ErrMalformed, err)
		}
		n++
		if n > MaxArchiveEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrTooLarge, MaxArchiveEntries)
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparseRecords(hdr) {
			return nil, fmt.Errorf("%w: sparse entry %q", ErrMalformed, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			continue // directories, devices, fifos: nothing an image reader needs
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			// Unsafe names are never served; they cannot be referenced
			// either, because references are cleaned the same way.
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			off, err := sr.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fmt.Errorf("tar offset: %w", err)
			}
			if hdr.Size < 0 || off+hdr.Size > size {
				return nil, fmt.Errorf("%w: tar truncated: %q needs %d bytes at offset %d of %d", ErrMalformed, hdr.Name, hdr.Size, off, size)
			}
			s.entries[name] = tarEntry{offset: off, size: hdr.Size}
			delete(s.links, name)
		case tar.TypeSymlink:
			// Symlink targets are relative to the link's directory.
			t := hdr.Linkname
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir(name), t)
			}
			if c, err := cleanName(t); err == nil {
				s.links[name] = c
				delete(s.entries, name)
			}
		case tar.TypeLink:
			// Hard link targets are archive member names.
			if c, err := cleanName(hdr.Linkname); err == nil {
				s.links[name] = c
				delete(s.entries, name)
			}
		}
	}
	return s, nil
}

func hasSparseRecords(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// lookup resolves name (following links inside the archive) to an entry.
func (s *tarStore) lookup(name string) (tarEntry, error) {
	c, err := cleanName(name)
	if err != nil {
		return tarEntry{}, err
	}
	for hop := 0; hop <= maxLinkHops; hop++ {
		if e, ok := s.entries[c]; ok {
			return e, nil
		}
		t, ok := s.links[c]
		if !ok {
			return tarEntry{}, fmt.Errorf("%w: %s not in archive", ErrNotFound, name)
		}
		c = t
	}
	return tarEntry{}, fmt.Errorf("%w: %s: link chain longer than %d", ErrMalformed, name, maxLinkHops)
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(io.NewSectionReader(s.f, e.offset, e.size)), e.size, nil
}

// section returns the entry as a section of the archive (supports ReadAt).
func (s *tarStore) section(name string) (*io.SectionReader, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(s.f, e.offset, e.size), nil
}

func (s *tarStore) has(name string) bool {
	_, err := s.lookup(name)
	return err == nil
}

func (s *tarStore) close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// dirStore serves files of a directory through os.Root, which refuses any
// path (or symlink) that leads outside the directory.
type dirStore struct {
	root *os.Root
}

var _ store = (*dirStore)(nil)

func openDirStore(p string) (*dirStore, error) {
	r, err := os.OpenRoot(p)
	if err != nil {
		return nil, fmt.Errorf("open layout directory %s: %w", p, errNotExist(err))
	}
	return &dirStore{root: r}, nil
}

func (d *dirStore) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := d.root.Open(c)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", name, errNotExist(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrMalformed, name)
	}
	return f, fi.Size(), nil
}

func (d *dirStore) close() error { return d.root.Close() }
