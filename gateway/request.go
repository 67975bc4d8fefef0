package gateway

import (
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
)

// streamRequest is a parsed GET /events.
type streamRequest struct {
	topics   []string
	lastID   string // "" = live from now; "earliest" = the whole history
	resume   position
	envelope bool
	latest   bool // send the newest event of each topic first; ignored with a resume position
}

// lastIDEarliest asks for the whole stored history.
const lastIDEarliest = "earliest"

func (g *Gateway) parseStream(c *gin.Context) (streamRequest, error) {
	var r streamRequest
	q := c.Request.URL.Query()
	if err := checkParams(q, "topic", "last_event_id", "envelope", "latest", accessTokenParam); err != nil {
		return r, err
	}
	r.topics = q["topic"]
	switch {
	case len(r.topics) == 0:
		return r, wrapf(errBadRequest, "at least one topic parameter is required, e.g. /events?topic=orders.eu")
	case len(r.topics) > g.opts.MaxTopics:
		return r, wrapf(errBadRequest, "%d topics: at most %d per stream", len(r.topics), g.opts.MaxTopics)
	}
	for _, t := range r.topics {
		if err := natsbus.ValidateFilter(t); err != nil {
			return r, err
		}
	}
	var err error
	if r.envelope, err = boolParam(q, "envelope"); err != nil {
		return r, err
	}
	if r.latest, err = boolParam(q, "latest"); err != nil {
		return r, err
	}
	// The header wins: a browser sends it when it reconnects, while the URL still carries
	// the position it first connected with.
	r.lastID = c.GetHeader("Last-Event-ID")
	if r.lastID == "" {
		r.lastID = q.Get("last_event_id")
	}
	if r.lastID != "" && r.lastID != lastIDEarliest {
		p, err := parseID(r.lastID)
		if err != nil {
			return r, err
		}
		r.resume = p
	}
	return r, nil
}

// boolParam reads the boolean query parameter name: absent, "0" or "false", or "1" or "true".
func boolParam(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, wrapf(errBadRequest, "%s=%q: want true or false", name, truncate(v, 32))
	}
}
