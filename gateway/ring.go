package gateway

import (
	"hash/maphash"
	"sort"
)

// ring keeps the most recent events, in sequence order, so that a client that reconnects
// after a short while catches up from memory instead of from the stream.
type ring struct {
	buf []*event
	// topics holds a hash of each held event's topic, at the event's index in buf: a
	// subscriber of literal topics finds its events among thousands without reading them.
	topics []uint64
	head   int    // index of the oldest event
	n      int    // events held
	start  uint64 // every event with a sequence >= start is held (up to the hub's last)
}

// topicSeed seeds the hashes of topics (ring.topics, subscriber.hashes).
var topicSeed = maphash.MakeSeed()

func topicHash(topic string) uint64 { return maphash.String(topicSeed, topic) }

func newRing(size int, start uint64) ring {
	return ring{buf: make([]*event, size), topics: make([]uint64, size), start: start}
}

func (r *ring) push(e *event) {
	if len(r.buf) == 0 {
		r.start = e.seq + 1
		return
	}
	if r.n == len(r.buf) {
		r.start = r.buf[r.head].seq + 1
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	i := (r.head + r.n) % len(r.buf)
	r.buf[i], r.topics[i] = e, topicHash(e.topic)
	r.n++
}

func (r *ring) at(i int) *event { return r.buf[(r.head+i)%len(r.buf)] }

// covers reports whether the ring holds every event after the sequence cursor.
func (r *ring) covers(cursor uint64) bool { return cursor+1 >= r.start }

// since appends to dst the held events after cursor that s matches.
func (r *ring) since(dst []*event, cursor uint64, s *subscriber) []*event {
	i := sort.Search(r.n, func(i int) bool { return r.at(i).seq > cursor })
	if !s.literal {
		for ; i < r.n; i++ {
			if e := r.at(i); s.matches(e.topic) {
				dst = append(dst, e)
			}
		}
		return dst
	}
	for ; i < r.n; i++ {
		j := (r.head + i) % len(r.buf)
		for k, h := range s.hashes {
			if h == r.topics[j] && r.buf[j].topic == s.filters[k] {
				dst = append(dst, r.buf[j])
				break
			}
		}
	}
	return dst
}
