package event

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultRenderLimit bounds one rendered value (a path, an argument) in
// String and in the model conversion.
const DefaultRenderLimit = 1024

// Sanitize renders a hostile value on one line: control characters
// (newline, carriage return, escape, DEL, C1), Unicode direction overrides
// and invalid UTF-8 bytes become escapes (\n, \x1b, \u202e), a backslash
// becomes \\ so the escapes cannot be forged, and the result holds at most
// limit bytes of input (limit <= 0: no limit) followed by a marker naming
// how much was cut. The result is valid UTF-8 without NUL.
func Sanitize(s string, limit int) string {
	if clean(s) && (limit <= 0 || len(s) <= limit) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max(limit, 0)+16))
	i := 0
	for i < len(s) {
		if limit > 0 && i >= limit {
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	if i < len(s) {
		fmt.Fprintf(&b, "…(+%d bytes)", len(s)-i)
	}
	return b.String()
}

// Quote is Sanitize within double quotes, with a double quote escaped.
func Quote(s string, limit int) string {
	return `"` + strings.ReplaceAll(Sanitize(s, limit), `"`, `\"`) + `"`
}

// clean says whether s needs no escaping.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			if c >= 0x80 {
				return cleanUTF8(s[i:])
			}
			return false
		}
	}
	return true
}

func cleanUTF8(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return false
			}
		}
		if r < 0x20 || r == 0x7f || r == '\\' || unsafeRune(r) {
			return false
		}
	}
	return true
}

// unsafeRune: C1 controls, bidirectional overrides and isolates, line and
// paragraph separators, zero-width characters and BOM, which can make a
// rendered line read as something else (Trojan Source, CVE-2021-42574).
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
		return true
	}
	return false
}

// SanitizeArgs renders argv on one line: each argument sanitized (at most
// limit bytes each), separated by spaces, quoted when it is empty or holds
// a space or a quote.
func SanitizeArgs(args []string, limit int) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \"'") {
			b.WriteString(Quote(a, limit))
		} else {
			b.WriteString(Sanitize(a, limit))
		}
	}
	return b.String()
}

// String renders the event on one line for logs and terminals, every
// value sanitized.
func (e *Event) String() string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	b.WriteString(Sanitize(string(e.Kind), 32))
	if e.Syscall != "" {
		fmt.Fprintf(&b, "(%s)=%d", Sanitize(e.Syscall, 32), e.Ret)
	}
	p := &e.Process
	fmt.Fprintf(&b, " pid=%d ppid=%d uid=%d euid=%d exe=%s comm=%s",
		p.PID, p.PPID, p.UID, p.EUID, Quote(p.Exe, DefaultRenderLimit), Quote(p.Comm, 64))
	if len(p.Args) > 0 {
		fmt.Fprintf(&b, " args=[%s]", SanitizeArgs(p.Args, 256))
		if p.ArgsTruncated {
			b.WriteString("…")
		}
	}
	if p.Cwd != "" {
		fmt.Fprintf(&b, " cwd=%s", Quote(p.Cwd, DefaultRenderLimit))
	}
	if p.ExeFromMemfd {
		b.WriteString(" memfd-exec")
	}
	if e.Container.ID != "" {
		fmt.Fprintf(&b, " container=%s", Sanitize(e.Container.ID, 80))
		if e.Container.Image != "" {
			fmt.Fprintf(&b, " image=%s", Quote(e.Container.Image, 256))
		}
	} else {
		fmt.Fprintf(&b, " cgroup=%d", e.CgroupID)
	}
	switch {
	case e.Kind.IsFile():
		fmt.Fprintf(&b, " path=%s", Quote(e.File.Path, DefaultRenderLimit))
		if e.File.NewPath != "" {
			fmt.Fprintf(&b, " newpath=%s", Quote(e.File.NewPath, DefaultRenderLimit))
		}
		if e.File.Flags != 0 {
			fmt.Fprintf(&b, " flags=%#x", e.File.Flags)
		}
		if e.Kind == KindChmod {
			fmt.Fprintf(&b, " mode=%#o", e.File.Mode)
		}
	case e.Kind.IsNetwork():
		n := &e.Net
		fmt.Fprintf(&b, " proto=%s", Sanitize(n.Protocol, 16))
		if n.SrcAddr != "" || n.SrcPort != 0 {
			fmt.Fprintf(&b, " src=%s", hostPort(n.SrcAddr, n.SrcPort))
		}
		if n.DstAddr != "" || n.DstPort != 0 {
			fmt.Fprintf(&b, " dst=%s", hostPort(n.DstAddr, n.DstPort))
		}
	case e.Kind == KindPtrace:
		fmt.Fprintf(&b, " request=%s target=%d", ptraceName(e.Ptrace), e.Ptrace.TargetPID)
	case e.Kind == KindMount:
		fmt.Fprintf(&b, " source=%s target=%s fstype=%s flags=%#x", Quote(e.Mount.Source, 256),
			Quote(e.Mount.Target, DefaultRenderLimit), Quote(e.Mount.FSType, 64), e.Mount.Flags)
	case e.Kind == KindSetuid:
		fmt.Fprintf(&b, " uid=%d euid=%d suid=%d prev_uid=%d", e.SetID.UID, e.SetID.EUID, e.SetID.SUID, e.SetID.PrevUID)
	case e.Kind == KindSetgid:
		fmt.Fprintf(&b, " gid=%d egid=%d sgid=%d", e.SetID.GID, e.SetID.EGID, e.SetID.SGID)
	case e.Kind == KindCapset:
		fmt.Fprintf(&b, " effective=%#x permitted=%#x", e.SetID.CapEffective, e.SetID.CapPermitted)
	case e.Kind == KindModuleLoad:
		fmt.Fprintf(&b, " module=%s", Quote(e.Module.Name, 256))
	case e.Kind == KindUnshare || e.Kind == KindSetns:
		fmt.Fprintf(&b, " flags=%#x types=%s", e.NS.Flags, Sanitize(strings.Join(e.NS.Types, ","), 64))
	case e.Kind == KindMemfdCreate:
		fmt.Fprintf(&b, " name=%s", Quote(e.Memfd.Name, 256))
	case e.Kind == KindSocket:
		fmt.Fprintf(&b, " domain=%d type=%d protocol=%d", e.Socket.Domain, e.Socket.Type, e.Socket.Protocol)
	case e.Kind == KindBPF:
		fmt.Fprintf(&b, " cmd=%s", bpfName(e.BPF))
	}
	if e.Drift {
		b.WriteString(" drift")
	}
	return b.String()
}

func hostPort(addr string, port int) string {
	a := Sanitize(addr, 256)
	if strings.Contains(a, ":") {
		a = "[" + a + "]"
	}
	return a + ":" + strconv.Itoa(port)
}

func ptraceName(p Ptrace) string {
	if p.RequestName != "" {
		return Sanitize(p.RequestName, 32)
	}
	return strconv.Itoa(p.Request)
}

func bpfName(p BPF) string {
	if p.CmdName != "" {
		return Sanitize(p.CmdName, 32)
	}
	return strconv.Itoa(p.Cmd)
}
