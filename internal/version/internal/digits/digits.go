// Package digits compares runs of ASCII decimal digits of any length, so
// that no version scheme overflows on a long number (dates, build stamps).
package digits

// Compare orders two strings of ASCII digits by numeric value, ignoring
// leading zeros; an empty string is 0. It returns -1, 0 or +1.
func Compare(a, b string) int {
	a, b = TrimZeros(a), TrimZeros(b)
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TrimZeros removes leading zeros.
func TrimZeros(s string) string {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return s[i:]
}

// IsDigit reports whether c is an ASCII decimal digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// All reports whether s is non-empty and only ASCII digits.
func All(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsDigit(s[i]) {
			return false
		}
	}
	return true
}

// Span returns the length of the run of digits at the start of s.
func Span(s string) int {
	i := 0
	for i < len(s) && IsDigit(s[i]) {
		i++
	}
	return i
}
