package ruledoc

// Bits is the type of a set of the items of a fixed list (event kinds,
// record sources): bit i stands for the list's item i, so the list has at
// most as many items as the type has bits.
type Bits interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Bit is the bit of v in a set over known, 0 when v is not in known.
func Bit[S Bits, T comparable](known []T, v T) S {
	for i, k := range known {
		if k == v {
			return S(1) << i
		}
	}
	return 0
}

// BitsOf is the set of vs over known.
func BitsOf[S Bits, T comparable](known []T, vs ...T) S {
	var s S
	for _, v := range vs {
		s |= Bit[S](known, v)
	}
	return s
}

// AllBits is the set of every item of known.
func AllBits[S Bits, T any](known []T) S {
	var s S
	for i := range known {
		s |= S(1) << i
	}
	return s
}

// Members lists the items of known in s, in known's order.
func Members[S Bits, T any](known []T, s S) []T {
	var out []T
	for i, k := range known {
		if s&(S(1)<<i) != 0 {
			out = append(out, k)
		}
	}
	return out
}

// Names lists the items of known in s as strings, in known's order.
func Names[S Bits, T ~string](known []T, s S) []string {
	var out []string
	for _, k := range Members(known, s) {
		out = append(out, string(k))
	}
	return out
}
