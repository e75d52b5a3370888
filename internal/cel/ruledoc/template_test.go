package ruledoc

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	lit := func(s string) string { return "L:" + s }
	ref := func(name string) (string, error) {
		if strings.HasPrefix(name, "bad") {
			return "", fmt.Errorf("unknown field {%s}", name)
		}
		return "R:" + name, nil
	}
	for _, tc := range []struct {
		tmpl string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"plain", []string{"L:plain"}, ""},
		{"{a} read {b.c}", []string{"R:a", "L: read ", "R:b.c"}, ""},
		{"{ a }{b}", []string{"R:a", "R:b"}, ""},
		{"{{x}} {a}}}", []string{"L:{x} ", "R:a", "L:}"}, ""},
		{"{}", []string{"R:"}, ""},
		{"a } b", nil, `unmatched "}" (write "}}" for a brace)`},
		{"a {b", nil, `unclosed "{"`},
		{"{bad} }", nil, "unknown field {bad}"}, // the first error in template order
		{"} {bad}", nil, `unmatched "}"`},
		{"{a}{", nil, `unclosed "{"`},
	} {
		got, err := Template(tc.tmpl, lit, ref)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err && !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.tmpl, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}
