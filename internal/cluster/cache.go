package cluster

import (
	"container/list"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Decision cache defaults, each with its reason.
const (
	// DefaultDecisionTTL bounds how long a decision is reused: exceptions
	// expire and scans age by the clock, which the key does not hold.
	DefaultDecisionTTL = time.Minute
	// DefaultDecisionEntries: distinct pod templates in use at once in a
	// large cluster; an answer is a few KiB at most.
	DefaultDecisionEntries = 4096
)

// decisionCache keeps admission answers by what decided them (policy
// version, vulnerability database, namespace, pod template, image digests
// and scans), least recently used first out.
type decisionCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu  sync.Mutex
	ll  *list.List
	idx map[string]*list.Element
}

type cached struct {
	key  string
	resp *admissionv1.AdmissionResponse
	at   time.Time
}

func newDecisionCache(ttl time.Duration, max int, now func() time.Time) *decisionCache {
	if ttl <= 0 {
		ttl = DefaultDecisionTTL
	}
	if max <= 0 {
		max = DefaultDecisionEntries
	}
	return &decisionCache{ttl: ttl, max: max, now: now, ll: list.New(), idx: map[string]*list.Element{}}
}

// get returns a copy of a fresh answer (the caller sets its UID).
func (c *decisionCache) get(key string) (*admissionv1.AdmissionResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.idx[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cached)
	if c.now().Sub(e.at) >= c.ttl {
		c.ll.Remove(el)
		delete(c.idx, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.resp.DeepCopy(), true
}

func (c *decisionCache) put(key string, resp *admissionv1.AdmissionResponse, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[key]; ok {
		el.Value.(*cached).resp, el.Value.(*cached).at = resp.DeepCopy(), at
		c.ll.MoveToFront(el)
		return
	}
	c.idx[key] = c.ll.PushFront(&cached{key: key, resp: resp.DeepCopy(), at: at})
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.idx, el.Value.(*cached).key)
	}
}
