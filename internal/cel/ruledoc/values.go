package ruledoc

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Str is s as a CEL string, cut at limit bytes: the field getters of the
// rule kinds clamp their values to the sizes they declare, so that the
// static cost estimate of a condition is a true bound.
func Str(s string, limit int) ref.Val {
	if len(s) > limit {
		s = s[:limit]
	}
	return types.String(s)
}

// StrList is ss as a CEL list of strings, at most maxLen of them, each
// cut at elemLen bytes (ss itself is not changed).
func StrList(ss []string, maxLen, elemLen int) ref.Val {
	if len(ss) > maxLen {
		ss = ss[:maxLen]
	}
	for _, s := range ss {
		if len(s) > elemLen {
			clamped := make([]string, len(ss))
			for i, s := range ss {
				clamped[i] = s[:min(len(s), elemLen)]
			}
			ss = clamped
			break
		}
	}
	return types.NewStringList(types.DefaultTypeAdapter, ss)
}
