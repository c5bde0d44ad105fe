package session

import (
	"container/list"

	"github.com/diffsim/diffsim/features"
)

// lru holds extractions under a byte budget, evicting the least recently used.
type lru struct {
	budget, bytes int64
	order         *list.List // front = most recent; values are *entry
	index         map[extractKey]*list.Element
}

type entry struct {
	key extractKey
	ex  features.Extraction
}

func newLRU(budget int64) *lru {
	return &lru{budget: budget, order: list.New(), index: map[extractKey]*list.Element{}}
}

func (c *lru) get(k extractKey) (features.Extraction, bool) {
	el, ok := c.index[k]
	if !ok {
		return features.Extraction{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).ex, true
}

func (c *lru) peek(k extractKey) (features.Extraction, bool) {
	el, ok := c.index[k]
	if !ok {
		return features.Extraction{}, false
	}
	return el.Value.(*entry).ex, true
}

// put stores an extraction; one larger than the whole budget is still kept (alone), since the
// caller is about to use it.
func (c *lru) put(k extractKey, ex features.Extraction) {
	if el, ok := c.index[k]; ok {
		c.bytes -= el.Value.(*entry).ex.Bytes()
		c.order.Remove(el)
	}
	c.index[k] = c.order.PushFront(&entry{k, ex})
	c.bytes += ex.Bytes()
	for c.bytes > c.budget && c.order.Len() > 1 {
		last := c.order.Back()
		e := last.Value.(*entry)
		c.order.Remove(last)
		delete(c.index, e.key)
		c.bytes -= e.ex.Bytes()
	}
}

// removeIf drops the extractions whose keys drop says.
func (c *lru) removeIf(drop func(extractKey) bool) {
	for k, el := range c.index {
		if drop(k) {
			c.bytes -= el.Value.(*entry).ex.Bytes()
			c.order.Remove(el)
			delete(c.index, k)
		}
	}
}
