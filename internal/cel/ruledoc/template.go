package ruledoc

import (
	"errors"
	"strings"
)

// Template splits an output template ("{proc.exe} read {file.path}") into
// parts: {name} is a reference (name with the spaces around it trimmed),
// {{ and }} are literal braces, the rest is literal text. lit makes the
// part of a run of literal text and ref the part of a reference, or an
// error that ends the split; the first error in template order is
// returned.
func Template[P any](tmpl string, lit func(string) P, ref func(name string) (P, error)) ([]P, error) {
	var parts []P
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, lit(text.String()))
			text.Reset()
		}
	}
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && i+1 < len(tmpl) && tmpl[i+1] == '{':
			text.WriteByte('{')
			i++
		case c == '}' && i+1 < len(tmpl) && tmpl[i+1] == '}':
			text.WriteByte('}')
			i++
		case c == '}':
			return nil, errors.New(`unmatched "}" (write "}}" for a brace)`)
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return nil, errors.New(`unclosed "{"`)
			}
			p, err := ref(strings.TrimSpace(tmpl[i+1 : i+end]))
			if err != nil {
				return nil, err
			}
			flush()
			parts = append(parts, p)
			i += end
		default:
			text.WriteByte(c)
		}
	}
	flush()
	return parts, nil
}
