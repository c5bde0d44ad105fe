package session

import (
	"container/list"
	"slices"

	"github.com/diffsim/diffsim/features"
)

// kept is one image's features at a t and conditioning as the cache holds them, with the
// self-attention outputs computed from them so far: attn(Q, K, V) of each layer compared,
// which AAS needs of the image whatever its partner (aas.Selves). They count in the cache's
// budget and go with the features.
type kept struct {
	key  extractKey
	ex   features.Extraction
	self map[int][]float32 // layer → attn(Q, K, V) of ex.Layers[layer], [T][C]
}

func (k *kept) bytes() int64 {
	n := k.ex.Bytes()
	for _, o := range k.self {
		n += int64(4 * len(o))
	}
	return n
}

// lru holds kept features under a byte budget, evicting the least recently used.
type lru struct {
	budget, bytes int64
	order         *list.List // front = most recent; values are *kept
	index         map[extractKey]*list.Element
}

func newLRU(budget int64) *lru {
	return &lru{budget: budget, order: list.New(), index: map[extractKey]*list.Element{}}
}

func (c *lru) get(k extractKey) (*kept, bool) {
	el, ok := c.index[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*kept), true
}

func (c *lru) peek(k extractKey) (*kept, bool) {
	el, ok := c.index[k]
	if !ok {
		return nil, false
	}
	return el.Value.(*kept), true
}

// put stores an extraction and returns it as kept; one larger than the whole budget is still
// kept (alone), since the caller is about to use it.
func (c *lru) put(k extractKey, ex features.Extraction) *kept {
	if el, ok := c.index[k]; ok {
		c.bytes -= el.Value.(*kept).bytes()
		c.order.Remove(el)
	}
	e := &kept{key: k, ex: ex}
	c.index[k] = c.order.PushFront(e)
	c.bytes += e.bytes()
	c.evict()
	return e
}

// keepSelf adds a copy of e's self-attention output at layer, when e is still in the cache (one
// evicted meanwhile is not kept: its bytes would be counted nowhere). It is then the most
// recent. A copy, because an Attention may return views into one buffer for a whole batch
// (RuntimeAttention does): keeping the view would hold the cross terms beside it too.
func (c *lru) keepSelf(e *kept, layer int, out []float32) {
	el, ok := c.index[e.key]
	if !ok || el.Value.(*kept) != e || out == nil {
		return
	}
	if _, have := e.self[layer]; have {
		return
	}
	if e.self == nil {
		e.self = map[int][]float32{}
	}
	e.self[layer] = slices.Clone(out)
	c.bytes += int64(4 * len(out))
	c.order.MoveToFront(el)
	c.evict()
}

// evict drops the least recent entries while over budget, always keeping the most recent.
func (c *lru) evict() {
	for c.bytes > c.budget && c.order.Len() > 1 {
		last := c.order.Back()
		e := last.Value.(*kept)
		c.order.Remove(last)
		delete(c.index, e.key)
		c.bytes -= e.bytes()
	}
}

// removeIf drops the entries whose keys drop says.
func (c *lru) removeIf(drop func(extractKey) bool) {
	for k, el := range c.index {
		if drop(k) {
			c.bytes -= el.Value.(*kept).bytes()
			c.order.Remove(el)
			delete(c.index, k)
		}
	}
}
