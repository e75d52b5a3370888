package secret

// keywordIndex finds many ASCII keywords case-insensitively in one pass.
//
// Every keyword is at least two bytes long, so each position of the input
// is tested against a table of the lower-cased first two bytes of all
// keywords (a 64 Ki-entry table: one load per input byte); only on a hit are
// the keywords sharing that bigram compared in full. This is one pass over
// the bytes whatever the number of keywords, where a bytes.Contains per
// keyword would be one pass per keyword (BenchmarkKeywordScan compares).
type keywordIndex struct {
	// bucket maps a lower-cased bigram to 1+index into buckets; 0 = none.
	bucket  []uint16
	buckets [][]int // keyword indexes per bigram
	kws     [][]byte
}

// lowerTable maps ASCII upper case to lower case and every other byte to itself.
var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

// newKeywordIndex builds an index of kws (already lower-case, len >= 2).
func newKeywordIndex(kws []string) *keywordIndex {
	ix := &keywordIndex{bucket: make([]uint16, 1<<16)}
	for i, k := range kws {
		ix.kws = append(ix.kws, []byte(k))
		bg := uint16(k[0])<<8 | uint16(k[1])
		if ix.bucket[bg] == 0 {
			ix.buckets = append(ix.buckets, nil)
			ix.bucket[bg] = uint16(len(ix.buckets))
		}
		b := ix.bucket[bg] - 1
		ix.buckets[b] = append(ix.buckets[b], i)
	}
	return ix
}

// scan calls hit(keyword, offset) for every occurrence of every keyword in
// data, in increasing offset order.
func (ix *keywordIndex) scan(data []byte, hit func(kw, off int)) {
	if len(ix.kws) == 0 || len(data) < 2 {
		return
	}
	bucket := ix.bucket
	prev := uint16(lowerTable[data[0]])
	for i := 1; i < len(data); i++ {
		cur := uint16(lowerTable[data[i]])
		bg := prev<<8 | cur
		prev = cur
		b := bucket[bg]
		if b == 0 {
			continue
		}
		start := i - 1
		for _, k := range ix.buckets[b-1] {
			if hasPrefixFold(data[start:], ix.kws[k]) {
				hit(k, start)
			}
		}
	}
}

// hasPrefixFold reports whether data starts with the lower-case ASCII kw,
// ignoring ASCII case in data.
func hasPrefixFold(data, kw []byte) bool {
	if len(data) < len(kw) {
		return false
	}
	for i, c := range kw {
		if lowerTable[data[i]] != c {
			return false
		}
	}
	return true
}
