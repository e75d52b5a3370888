package appcontrol

import (
	"bytes"
	"encoding/binary"
	"io"
	"path"
	"strings"
)

// Kind is what a file is to application control.
type Kind string

const (
	// KindExecutable: an ELF executable (or anything exec'd).
	KindExecutable Kind = "executable"
	// KindLibrary: an ELF shared object without an interpreter.
	KindLibrary Kind = "library"
	// KindScript: a file starting with "#!", or with a script extension.
	KindScript Kind = "script"
)

// scriptExtensions are the source files interpreters load by name
// (module imports included); they count as scripts even without "#!".
var scriptExtensions = map[string]bool{
	".sh": true, ".bash": true, ".zsh": true, ".ksh": true,
	".py": true, ".pl": true, ".pm": true, ".rb": true,
	".js": true, ".mjs": true, ".cjs": true, ".php": true,
	".lua": true, ".tcl": true, ".awk": true,
}

// ELF constants (elf(5)).
const (
	elfTypeExec  = 2
	elfTypeDyn   = 3
	ptInterp     = 3
	maxPhnum     = 4096
	elfHeader64  = 64
	elfHeader32  = 52
	classifyRead = 64
)

// Classify says whether a file is executable content and of which kind,
// from its first bytes (read through r), its name and its mode: ELF
// executables (ET_EXEC, or ET_DYN with a PT_INTERP program header: PIE) and
// shared objects (ET_DYN without one), "#!" scripts, files with a script
// extension, and any other file with an execute bit (an executable of
// another format, or a script without "#!", which shells run). ok is false
// for everything else.
func Classify(r io.ReaderAt, size int64, name string, mode uint32) (Kind, bool) {
	head := make([]byte, classifyRead)
	n, _ := r.ReadAt(head, 0) // a short read is a short file
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		if k, ok := elfKind(r, size, head); ok {
			return k, true
		}
		return KindExecutable, true // an ELF we cannot read still runs: treat as executable
	case bytes.HasPrefix(head, []byte("#!")):
		return KindScript, true
	}
	if scriptExtensions[strings.ToLower(path.Ext(name))] {
		return KindScript, true
	}
	if mode&0o111 != 0 {
		return KindExecutable, true
	}
	return "", false
}

// elfKind reads the ELF header and program headers (bounded) to tell a
// PIE executable from a shared object.
func elfKind(r io.ReaderAt, size int64, head []byte) (Kind, bool) {
	if len(head) < elfHeader32 {
		return "", false
	}
	var bo binary.ByteOrder
	switch head[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return "", false
	}
	typ := bo.Uint16(head[16:])
	var phoff uint64
	var phentsize, phnum uint16
	switch head[4] {
	case 1: // ELFCLASS32
		phoff = uint64(bo.Uint32(head[28:]))
		phentsize, phnum = bo.Uint16(head[42:]), bo.Uint16(head[44:])
	case 2: // ELFCLASS64
		if len(head) < elfHeader64 {
			return "", false
		}
		phoff = bo.Uint64(head[32:])
		phentsize, phnum = bo.Uint16(head[54:]), bo.Uint16(head[56:])
	default:
		return "", false
	}
	switch typ {
	case elfTypeExec:
		return KindExecutable, true
	case elfTypeDyn:
	default:
		return "", false
	}
	if phnum == 0 || phnum > maxPhnum || phentsize < 4 || phoff >= uint64(size) {
		return KindLibrary, true
	}
	if uint64(phnum)*uint64(phentsize) > uint64(size)-phoff {
		return "", false
	}
	buf := make([]byte, 4)
	for i := uint64(0); i < uint64(phnum); i++ {
		if _, err := r.ReadAt(buf, int64(phoff+i*uint64(phentsize))); err != nil {
			return "", false
		}
		if bo.Uint32(buf) == ptInterp {
			return KindExecutable, true
		}
	}
	return KindLibrary, true
}
