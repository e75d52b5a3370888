package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"mamori/internal/cel/ruledoc"
	"mamori/internal/host/loginspect/decode"
)

// outputPart is a literal, a field reference or a threshold value of an output template.
type outputPart struct {
	lit     string
	get     func(*decode.Record) ref.Val // nil for literals and specials
	special string                       // "count", "window", "key", "distinct", "first"
}

// outputValueLimit bounds one rendered value.
const outputValueLimit = 512

var specials = map[string]bool{"count": true, "window": true, "key": true, "distinct": true, "first": true}

// parseOutput reads a template: {field} is replaced by the field's value, {count}, {window},
// {key}, {distinct} and {first} by the threshold's, {{ and }} are literal braces.
func parseOutput(tmpl string, fs []field, byName map[string]int, srcs sourceSet, threshold bool) ([]outputPart, error) {
	return ruledoc.Template(tmpl, func(lit string) outputPart { return outputPart{lit: lit} }, func(name string) (outputPart, error) {
		if specials[name] {
			if !threshold {
				return outputPart{}, fmt.Errorf("{%s} needs a threshold", name)
			}
			return outputPart{special: name}, nil
		}
		fi, ok := byName[name]
		if !ok {
			return outputPart{}, fmt.Errorf("unknown field {%s}", name)
		}
		if fs[fi].sources&srcs != srcs {
			return outputPart{}, fmt.Errorf("{%s} is not set for %s records", name, strings.Join(sourceNames(srcs&^fs[fi].sources), ", "))
		}
		return outputPart{get: fs[fi].get}, nil
	})
}

func renderOutput(parts []outputPart, r *decode.Record, d *Detection) string {
	var b strings.Builder
	for _, p := range parts {
		switch {
		case p.get != nil:
			writeValue(&b, p.get(r))
		case p.special != "":
			switch p.special {
			case "count":
				b.WriteString(strconv.Itoa(d.Count))
			case "window":
				b.WriteString(d.Window.String())
			case "key":
				b.WriteString(quote(d.Key, outputValueLimit))
			case "first":
				b.WriteString(d.First.UTC().Format("2006-01-02T15:04:05Z07:00"))
			case "distinct":
				b.WriteByte('[')
				for i, v := range d.Distinct {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(quote(v, 128))
				}
				b.WriteByte(']')
			}
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

func writeValue(b *strings.Builder, v ref.Val) {
	switch x := v.(type) {
	case types.String:
		b.WriteString(quote(string(x), outputValueLimit))
	case types.Int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case traits.Lister:
		b.WriteByte('[')
		n := 0
		for it := x.Iterator(); it.HasNext() == types.True; n++ {
			if n > 0 {
				b.WriteString(", ")
			}
			if n == 16 {
				b.WriteString("…")
				break
			}
			writeValue(b, it.Next())
		}
		b.WriteByte(']')
	default:
		b.WriteString(quote(fmt.Sprint(v.Value()), outputValueLimit))
	}
}

// quote renders a value from a log line safely: control characters, bidirectional overrides
// and invalid UTF-8 escaped, cut at limit bytes with a note of what was cut, so that a
// hostile user name cannot forge text or break a line. Plain values are not quoted.
func quote(s string, limit int) string {
	plain := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || r == '"' || r == '\\' || unicode.Is(unicode.Bidi_Control, r) || (r >= 0x80 && !unicode.IsGraphic(r)) {
			plain = false
			break
		}
	}
	if plain && len(s) <= limit && !strings.ContainsRune(s, ' ') {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	n := 0
	for i := 0; i < len(s); {
		if n >= limit {
			fmt.Fprintf(&b, `…(+%d bytes)`, len(s)-i)
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Bidi_Control, r) || (r >= 0x80 && !unicode.IsGraphic(r)):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
		n += size
	}
	b.WriteByte('"')
	return b.String()
}
