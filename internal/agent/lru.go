package agent

// lru is a bounded map that forgets its least recently used entry when
// full. It is not safe for concurrent use: each table of the pipeline is
// owned by the pipeline's one worker goroutine.
type lru[K comparable, V any] struct {
	max     int
	m       map[K]*lruNode[K, V]
	head    *lruNode[K, V] // most recently used
	tail    *lruNode[K, V] // least recently used
	free    *lruNode[K, V] // one spare node, reused by the next put after an eviction
	evicted uint64
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	return &lru[K, V]{max: max, m: make(map[K]*lruNode[K, V], min(max, 4096))}
}

// get returns the value of k and marks it used.
func (l *lru[K, V]) get(k K) (V, bool) {
	n := l.m[k]
	if n == nil {
		var zero V
		return zero, false
	}
	l.moveFront(n)
	return n.val, true
}

// peek returns the value of k without marking it used.
func (l *lru[K, V]) peek(k K) (V, bool) {
	n := l.m[k]
	if n == nil {
		var zero V
		return zero, false
	}
	return n.val, true
}

// put sets k's value, evicting the least recently used entry when full.
func (l *lru[K, V]) put(k K, v V) {
	if n := l.m[k]; n != nil {
		n.val = v
		l.moveFront(n)
		return
	}
	if len(l.m) >= l.max {
		old := l.tail
		l.unlink(old)
		delete(l.m, old.key)
		l.evicted++
		var zero V
		old.val = zero
		l.free = old
	}
	n := l.free
	if n != nil {
		l.free = nil
	} else {
		n = &lruNode[K, V]{}
	}
	n.key, n.val = k, v
	l.m[k] = n
	l.pushFront(n)
}

// remove forgets k.
func (l *lru[K, V]) remove(k K) {
	n := l.m[k]
	if n == nil {
		return
	}
	l.unlink(n)
	delete(l.m, k)
}

func (l *lru[K, V]) len() int { return len(l.m) }

func (l *lru[K, V]) moveFront(n *lruNode[K, V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev, n.next = nil, l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
