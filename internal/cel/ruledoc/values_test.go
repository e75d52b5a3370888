package ruledoc

import (
	"reflect"
	"testing"

	"cel.dev/cel-go/common/types"
)

func TestStr(t *testing.T) {
	if got := Str("abcdef", 3); got != types.String("abc") {
		t.Errorf("Str = %v", got)
	}
	if got := Str("ab", 3); got != types.String("ab") {
		t.Errorf("Str = %v", got)
	}
}

func TestStrList(t *testing.T) {
	in := []string{"abcdef", "x", "yyyy", "z"}
	got, err := StrList(in, 3, 2).ConvertToNative(reflect.TypeFor[[]string]())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"ab", "x", "yy"}) {
		t.Errorf("StrList = %q", got)
	}
	if in[0] != "abcdef" || in[2] != "yyyy" {
		t.Errorf("StrList changed its input: %q", in)
	}
	got, _ = StrList([]string{"a", "b"}, 8, 8).ConvertToNative(reflect.TypeFor[[]string]())
	if !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("StrList = %q", got)
	}
}
