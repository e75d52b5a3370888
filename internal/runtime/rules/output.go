package rules

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"mamori/internal/cel/ruledoc"
	"mamori/internal/runtime/event"
)

// outputPart is a literal or a field reference of an output template.
type outputPart struct {
	lit string
	get func(*Input) ref.Val // nil for a literal
}

// outputValueLimit bounds one rendered value.
const outputValueLimit = 512

// parseOutput reads a template: {field} is replaced by the field's value, {{ and }} are literal
// braces. Fields must exist and be set for every kind of the rule.
func parseOutput(tmpl string, byName map[string]*field, kinds kindSet) ([]outputPart, error) {
	return ruledoc.Template(tmpl, func(lit string) outputPart { return outputPart{lit: lit} }, func(name string) (outputPart, error) {
		f, ok := byName[name]
		if !ok {
			return outputPart{}, fmt.Errorf("unknown field {%s}", name)
		}
		if f.kinds&kinds != kinds {
			return outputPart{}, fmt.Errorf("{%s} is not set for %s events", name, strings.Join(kindNames(kinds&^f.kinds), ", "))
		}
		return outputPart{get: f.get}, nil
	})
}

func renderOutput(parts []outputPart, in *Input) string {
	var b strings.Builder
	for _, p := range parts {
		if p.get == nil {
			b.WriteString(p.lit)
			continue
		}
		writeValue(&b, p.get(in))
	}
	return b.String()
}

func writeValue(b *strings.Builder, v ref.Val) {
	switch x := v.(type) {
	case types.String:
		b.WriteString(event.Quote(string(x), outputValueLimit))
	case types.Int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case types.Bool:
		b.WriteString(strconv.FormatBool(bool(x)))
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
	case traits.Mapper:
		var keys []ref.Val
		for it := x.Iterator(); it.HasNext() == types.True; {
			keys = append(keys, it.Next())
		}
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i].Value()) < fmt.Sprint(keys[j].Value()) })
		b.WriteByte('{')
		for n, k := range keys {
			if n > 0 {
				b.WriteString(", ")
			}
			if n == 16 {
				b.WriteString("…")
				break
			}
			writeValue(b, k)
			b.WriteString(": ")
			writeValue(b, x.Get(k))
		}
		b.WriteByte('}')
	default:
		b.WriteString(event.Quote(fmt.Sprint(v.Value()), outputValueLimit))
	}
}
