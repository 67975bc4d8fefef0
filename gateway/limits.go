package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/natsse/natsse/auth"
	"golang.org/x/time/rate"
)

// maxPublishers bounds the publish rate limiters kept; beyond it, those of clients that
// have been idle long enough to have a full bucket are dropped.
const maxPublishers = 10000

// maxSurveys bounds the presence requests in progress on a gateway: each one makes every
// gateway sharing the stream count its streams.
const maxSurveys = 32

// limits caps the open streams, in all and per client, the rate of HTTP publishes per
// client, and the presence requests in progress. A client is a token's subject, or the address a request comes from. It is safe
// for concurrent use.
type limits struct {
	maxStreams, perClient int
	rate                  rate.Limit
	burst                 int
	trusted               []netip.Prefix

	mu         sync.Mutex
	streams    int
	byClient   map[string]int
	publishers map[string]*rate.Limiter

	surveys chan struct{} // a slot per presence request in progress
}

func newLimits(o Options) *limits {
	return &limits{
		maxStreams: o.MaxStreams, perClient: o.MaxStreamsPerClient,
		rate: rate.Limit(o.PublishRate), burst: o.PublishBurst, trusted: o.TrustedProxies,
		byClient: make(map[string]int), publishers: make(map[string]*rate.Limiter),
		surveys: make(chan struct{}, maxSurveys),
	}
}

// beginSurvey takes a slot for a presence request, unless all are taken. end gives it back.
func (l *limits) beginSurvey() (end func(), ok bool) {
	select {
	case l.surveys <- struct{}{}:
		return func() { <-l.surveys }, true
	default:
		return nil, false
	}
}

// client names who sent r: the token's subject, else the address it came from. A request
// from a trusted proxy comes from the last address in X-Forwarded-For that is not a
// trusted proxy itself.
func (l *limits) client(r *http.Request, gr *auth.Grants) string {
	if gr != nil && !gr.Anonymous && gr.Subject != "" {
		return "sub:" + gr.Subject
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "ip:" + host
	}
	if !l.isTrusted(addr) {
		return clientAddr(addr)
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if addr = hop.Unmap(); !l.isTrusted(addr) {
			break
		}
	}
	return clientAddr(addr)
}

// clientAddr names the client at a: its IPv4 address, or its IPv6 /64, which one holder
// usually has whole.
func clientAddr(a netip.Addr) string {
	if a = a.Unmap(); a.Is6() {
		return "ip:" + netip.PrefixFrom(a, 64).Masked().String()
	}
	return "ip:" + a.String()
}

func (l *limits) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// openStream counts a stream of client in, unless a cap is reached; then refused names the
// cap (resultMaxStreams or resultMaxPerClient) and why says it for the client. release
// counts the stream out.
func (l *limits) openStream(client string) (release func(), refused, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.maxStreams > 0 && l.streams >= l.maxStreams:
		return nil, resultMaxStreams, "too many streams on this gateway"
	case l.perClient > 0 && l.byClient[client] >= l.perClient:
		return nil, resultMaxPerClient, "too many streams from this client"
	}
	l.streams++
	l.byClient[client]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.streams--
		if l.byClient[client]--; l.byClient[client] <= 0 {
			delete(l.byClient, client)
		}
	}, "", ""
}

// allowPublish takes one publish from client's budget, or says how long to wait.
func (l *limits) allowPublish(client string) (wait time.Duration, ok bool) {
	if l.rate <= 0 {
		return 0, true
	}
	l.mu.Lock()
	lim := l.publishers[client]
	if lim == nil {
		if len(l.publishers) >= maxPublishers {
			for k, p := range l.publishers {
				if p.Tokens() >= float64(l.burst) {
					delete(l.publishers, k)
				}
			}
			if len(l.publishers) >= maxPublishers { // all busy: start afresh rather than grow
				clear(l.publishers)
			}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.publishers[client] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, false
	}
	return 0, true
}
