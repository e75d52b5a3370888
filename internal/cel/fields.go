package cel

// Fields is a reusable Activation for hot paths: it resolves the environment's declared
// variables through a getter indexed by declaration order (Env.Vars) and keeps each value for
// the current round, so a variable read by many programs is converted once per input. Call
// Reset before evaluating a new input. A Fields is not safe for concurrent use: keep one per
// goroutine.
type Fields struct {
	env   *Env
	index map[string]int
	get   func(i int) Value
	vals  []Value
	round []uint32
	cur   uint32
}

var _ Activation = (*Fields)(nil)

// NewFields returns a Fields over e's variables; get(i) returns the value of e.Vars()[i] for
// the current input.
func (e *Env) NewFields(get func(i int) Value) *Fields {
	return &Fields{
		env:   e,
		index: e.index,
		get:   get,
		vals:  make([]Value, len(e.vars)),
		round: make([]uint32, len(e.vars)),
		cur:   1,
	}
}

// Reset forgets the values of the previous input.
func (f *Fields) Reset() {
	f.cur++
	if f.cur == 0 { // wrapped: clear so that no stale round number matches
		clear(f.round)
		f.cur = 1
	}
}

// ResolveName implements Activation.
func (f *Fields) ResolveName(name string) (any, bool) {
	i, ok := f.index[name]
	if !ok {
		return nil, false
	}
	return f.value(i), true
}

// value is variable i's value for the current input, fetched once per Reset.
func (f *Fields) value(i int) Value {
	if f.round[i] != f.cur {
		f.vals[i] = f.get(i)
		f.round[i] = f.cur
	}
	return f.vals[i]
}

// Parent implements Activation.
func (f *Fields) Parent() Activation { return nil }
