package rust

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"mamori/internal/model"
)

// Section names cargo-auditable writes the audit data to
// (cargo-auditable's auditable-serde and the linker arguments in
// cargo-auditable/src/object_file.rs): ".dep-v0" in ELF and PE, section
// "__dep_v0" of segment "__DATA" in Mach-O.
const (
	sectionELFPE  = ".dep-v0"
	sectionMachO  = "__dep_v0"
	segmentMachO  = "__DATA"
	kindBuildDeps = "build"
)

// auditData is the JSON cargo-auditable stores, zlib-compressed
// (auditable-serde's VersionInfo): "kind" is omitted for runtime
// dependencies, "root" for non-root packages.
type auditData struct {
	Packages []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Source  string `json:"source"`
		Kind    string `json:"kind"`
		Root    bool   `json:"root"`
	} `json:"packages"`
}

// parseAuditableBinary finds the audit section of the executable in r and
// parses it. It returns errNoAudit when r is not an ELF, PE or Mach-O file
// or has no audit section.
func parseAuditableBinary(r io.ReaderAt, loc string) ([]model.Package, error) {
	sec, err := auditSection(r)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(sec, maxSectionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable %s: read section: %w", loc, err)
	}
	if len(raw) > maxSectionBytes {
		return nil, fmt.Errorf("cargo-auditable %s: %w: section over %d bytes", loc, ErrTooLarge, maxSectionBytes)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable %s: %w: %w", loc, ErrMalformed, err)
	}
	defer zr.Close() // reads from memory-backed section; nothing to report
	js, err := io.ReadAll(io.LimitReader(zr, maxAuditJSONBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable %s: inflate: %w: %w", loc, ErrMalformed, err)
	}
	if len(js) > maxAuditJSONBytes {
		return nil, fmt.Errorf("cargo-auditable %s: %w: audit data inflates past %d bytes", loc, ErrTooLarge, maxAuditJSONBytes)
	}
	return parseAuditJSON(js, loc)
}

// auditSection returns a reader over the audit section's bytes.
func auditSection(r io.ReaderAt) (io.Reader, error) {
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, errNoAudit // shorter than any executable
	}
	switch {
	case string(magic[:]) == "\x7fELF":
		f, err := elf.NewFile(r)
		if err != nil {
			return nil, fmt.Errorf("%w: elf: %w", ErrMalformed, err)
		}
		if s := f.Section(sectionELFPE); s != nil && s.Type != elf.SHT_NOBITS {
			return s.Open(), nil // decompresses SHF_COMPRESSED sections
		}
	case string(magic[:2]) == "MZ":
		f, err := pe.NewFile(r)
		if err != nil {
			return nil, errNoAudit // many MZ files are not PE images
		}
		if s := f.Section(sectionELFPE); s != nil {
			// PE sections are padded to the file alignment; VirtualSize
			// is the unpadded size when set.
			n := s.Size // raw size, a multiple of the file alignment
			if s.VirtualSize != 0 && s.VirtualSize < n {
				n = s.VirtualSize
			}
			return io.NewSectionReader(s, 0, int64(n)), nil
		}
	default:
		f, err := macho.NewFile(r)
		if err != nil {
			return nil, errNoAudit
		}
		if s := f.Section(sectionMachO); s != nil && s.Seg == segmentMachO {
			return io.NewSectionReader(s, 0, int64(s.Size)), nil
		}
	}
	return nil, errNoAudit
}

// parseAuditJSON turns audit JSON into packages, leaving out build-time
// dependencies (build scripts and proc macros run at build time and are not
// in the binary; trivy does the same).
func parseAuditJSON(js []byte, loc string) ([]model.Package, error) {
	var d auditData
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("cargo-auditable %s: %w: %w", loc, ErrMalformed, err)
	}
	if d.Packages == nil {
		return nil, fmt.Errorf("cargo-auditable %s: %w: %w", loc, ErrMalformed, errors.New(`no "packages" array`))
	}
	pkgs := make([]model.Package, 0, len(d.Packages))
	seen := make(map[string]bool, len(d.Packages))
	for _, p := range d.Packages {
		if p.Name == "" || p.Version == "" || p.Kind == kindBuildDeps {
			continue
		}
		k := p.Name + "@" + p.Version
		if seen[k] {
			continue
		}
		seen[k] = true
		pkgs = append(pkgs, newPackage(p.Name, p.Version, CatalogerAuditable, loc))
	}
	return pkgs, nil
}
