package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"unicode/utf8"
)

// Secrets are often stored encoded: a Kubernetes Secret's data is base64, a
// .dockerconfigjson is base64 JSON whose "auth" is base64 again, connection
// strings are percent-encoded, build tools hex-encode. The decoding stage
// finds encoded values in what was scanned, decodes those that turn into
// text, and scans the text again with every rule, to a bounded depth.
//
// Cost is bounded whatever the input: finding encoded values is one linear
// pass; each value is decoded once; the decoded bytes of one file are capped
// (decodeBudget) and so is the number of values tried (maxDecodeTokens), at
// every depth together. Scanning decoded text is linear in its size, so a
// file costs at most O(size + decodeBudget), with no quadratic blow-up on
// nested or enormous blobs.
const (
	// maxDecodeDepth is how many encodings deep a value is followed
	// (a Secret's base64 .dockerconfigjson holding a base64 "auth" is 2).
	maxDecodeDepth = 3
	// minBase64Len is the shortest base64 run tried: 16 characters decode
	// to 12 bytes, shorter than any credential format with a rule.
	minBase64Len = 16
	// minHexLen is the shortest hex run tried (16 bytes decoded).
	minHexLen = 32
	// maxTokenLen bounds one encoded value (a PEM key in base64 is 2-4 KiB;
	// a whole embedded file may be bigger but not by much).
	maxTokenLen = 1 << 20
	// decodeBudget bounds the decoded bytes of one file, all depths.
	decodeBudget = 4 << 20
	// maxDecodeTokens bounds the values decoded in one file, all depths.
	maxDecodeTokens = 4096
	// minTextLen is the shortest decoded text scanned again.
	minTextLen = 8
	// minPercentEscapes is the fewest %XX escapes a percent-encoded value
	// needs to be decoded.
	minPercentEscapes = 2
)

// Encodings, as Location.Encoding names them.
const (
	encBase64  = "base64"
	encHex     = "hex"
	encPercent = "percent"
)

// token is an encoded value found in content: content[start:end] in kind.
type token struct {
	start, end int
	kind       string
}

// Byte flags for findTokens, one table lookup per byte.
const (
	fB64    = 1 << iota // in a base64 alphabet (letters, digits, + / - _)
	fStd                // + or /: the standard alphabet only
	fURL                // - or _: the URL-safe alphabet only
	fUpper              // A-Z
	fLower              // a-z
	fNotHex             // not a hex digit
)

// byteFlags is built once: a constant table.
var byteFlags = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'A' && c <= 'Z':
			t[c] = fB64 | fUpper
		case c >= 'a' && c <= 'z':
			t[c] = fB64 | fLower
		case c >= '0' && c <= '9':
			t[c] = fB64
		case c == '+' || c == '/':
			t[c] = fB64 | fStd
		case c == '-' || c == '_':
			t[c] = fB64 | fURL
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			t[c] |= fNotHex
		}
	}
	return t
}()

// findTokens calls fn for each value of content that may be encoded, in
// order: runs of the base64 alphabets (standard or URL-safe, padding
// included) or of hex digits long enough to hold a credential, and runs of
// URL characters holding percent escapes. It stops when fn returns false.
func findTokens(content []byte, fn func(token) bool) {
	n := len(content)
	for i := 0; i < n; {
		if i == 0 || content[i-1] == '\n' {
			// A block of wrapped base64 lines (a key file, a MIME body):
			// one value, decoded whole.
			if end := base64Block(content, i); end > i {
				if !fn(token{i, end, encBase64}) {
					return
				}
				i = end
				continue
			}
		}
		c := content[i]
		if c == '%' && i+2 < n && isHex(content[i+1]) && isHex(content[i+2]) {
			start, end := urlRun(content, i)
			if !fn(token{start, end, encPercent}) {
				return
			}
			i = end
			continue
		}
		if byteFlags[c]&fB64 == 0 {
			i++
			continue
		}
		start := i
		var flags uint8
		for i < n {
			f := byteFlags[content[i]]
			if f&fB64 == 0 {
				break
			}
			flags |= f
			i++
		}
		end := i
		for i < n && content[i] == '=' && i-end < 2 {
			i++
		}
		if i < n && content[i] == '%' { // a percent-encoded run that starts with plain characters
			continue
		}
		hexOnly := flags&fNotHex == 0
		if l := end - start; l > 2 && content[start] == '0' && (content[start+1] == 'x' || content[start+1] == 'X') && allHex(content[start+2:end]) {
			start, hexOnly = start+2, true // 0x-prefixed hex
		}
		upper, lower := flags&fUpper != 0, flags&fLower != 0
		std, urlSafe := flags&fStd != 0, flags&fURL != 0
		l := end - start
		switch {
		case l > maxTokenLen:
		case hexOnly && l >= minHexLen && l%2 == 0:
			if !fn(token{start, end, encHex}) {
				return
			}
		case l >= minBase64Len && upper && lower && !(std && urlSafe):
			// Base64 of text has both cases (the top bits of ASCII land in
			// I-Z and a-f); one alphabet, not a mix of + / and - _.
			if !fn(token{start, i, encBase64}) {
				return
			}
		}
	}
}

// urlRun returns the run of URL characters around the escape at i.
func urlRun(content []byte, i int) (start, end int) {
	start, end = i, i
	for start > 0 && isURLChar(content[start-1]) && i-start < maxTokenLen {
		start--
	}
	for end < len(content) && isURLChar(content[end]) && end-i < maxTokenLen {
		end++
	}
	return start, end
}

func isURLChar(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' && c != '\\' && c != '{' && c != '}'
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// decodeToken decodes t; ok is false when it is not valid in its encoding
// or does not decode to text worth scanning.
func decodeToken(content []byte, t token) ([]byte, bool) {
	raw := content[t.start:t.end]
	var out []byte
	switch t.kind {
	case encHex:
		out = make([]byte, len(raw)/2)
		if _, err := hex.Decode(out, raw); err != nil {
			return nil, false
		}
	case encBase64:
		if bytes.IndexByte(raw, '\n') >= 0 {
			raw = bytes.Join(bytes.Fields(raw), nil) // a wrapped block
		}
		s := bytes.TrimRight(raw, "=")
		enc := base64.RawStdEncoding
		if bytes.ContainsAny(s, "-_") {
			enc = base64.RawURLEncoding
		}
		if len(s)%4 == 1 {
			return nil, false
		}
		out = make([]byte, enc.DecodedLen(len(s)))
		n, err := enc.Decode(out, s)
		if err != nil {
			return nil, false
		}
		out = out[:n]
	case encPercent:
		// One escape is usually a name (Debian's "passwd_1%3a4.13" for an
		// epoch colon), whose plain form rules already see; encoded
		// credentials (a whole URL or a key=value list) have several.
		if bytes.Count(raw, []byte("%")) < minPercentEscapes {
			return nil, false
		}
		d, err := url.PathUnescape(string(raw))
		if err != nil || d == string(raw) {
			return nil, false
		}
		out = []byte(d)
	default:
		return nil, false
	}
	return out, texty(out)
}

// texty reports whether b is text: valid UTF-8, at least minTextLen bytes,
// no control characters but tab, CR and LF. Decoded binary (hashes, images,
// compressed data, random identifiers read as base64) is not scanned.
func texty(b []byte) bool {
	if len(b) < minTextLen || !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}

// lineIndex maps byte offsets of a text to 1-based line numbers.
type lineIndex []int // offsets of '\n'

func newLineIndex(content []byte) lineIndex {
	var idx lineIndex
	for i := bytes.IndexByte(content, '\n'); i >= 0; {
		idx = append(idx, i)
		j := bytes.IndexByte(content[i+1:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return idx
}

// line is the 1-based line of offset off.
func (l lineIndex) line(off int) int { return sort.SearchInts(l, off) + 1 }

// column is the 1-based byte column of offset off.
func (l lineIndex) column(off int) int {
	i := sort.SearchInts(l, off)
	if i == 0 {
		return off + 1
	}
	return off - l[i-1]
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}

// minBlockLine is the shortest line of a wrapped base64 block (PEM and
// MIME wrap at 64 and 76 characters; base64(1) at 76).
const minBlockLine = 40

// base64Block returns the end of a block of base64 lines starting at
// start: at least two lines of only base64 characters, all but the last of
// one length (a multiple of 4, at least minBlockLine), the last no longer
// and padded as base64 allows. It returns start when there is none.
func base64Block(content []byte, start int) int {
	width, lines, pos := 0, 0, start
	for pos < len(content) && pos-start <= maxTokenLen {
		eol := bytes.IndexByte(content[pos:], '\n')
		line := content[pos:]
		next := len(content)
		if eol >= 0 {
			line, next = content[pos:pos+eol], pos+eol+1
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !isBase64Line(line) {
			break
		}
		switch {
		case lines == 0:
			if len(line) < minBlockLine || len(line)%4 != 0 {
				return start
			}
			width = len(line)
		case len(line) > width:
			return blockEnd(start, pos, lines)
		}
		lines++
		if len(line) < width || bytes.HasSuffix(line, []byte("=")) {
			return blockEnd(start, pos+len(line), lines) // the last, short line
		}
		pos = next
	}
	return blockEnd(start, pos, lines)
}

func blockEnd(start, end, lines int) int {
	if lines < 2 {
		return start
	}
	return end
}

func isBase64Line(l []byte) bool {
	if len(l) == 0 {
		return false
	}
	body := bytes.TrimRight(l, "=")
	if len(l)-len(body) > 2 {
		return false
	}
	for _, c := range body {
		if byteFlags[c]&fB64 == 0 || byteFlags[c]&fURL != 0 {
			return false
		}
	}
	return true
}
