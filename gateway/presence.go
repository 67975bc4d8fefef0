package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
)

// presenceResponse is the answer to GET /presence.
type presenceResponse struct {
	Topics   map[string]topicPresence `json:"topics"`
	Gateways int                      `json:"gateways"` // how many gateways answered, this one included
}

// topicPresence is what GET /presence says of one topic.
type topicPresence struct {
	// Streams is the number of open streams, on every gateway that answered, that an event
	// on the topic would reach.
	Streams uint64 `json:"streams"`
}

// handlePresence serves GET /presence: for each topic, how many streams of all the
// gateways sharing the stream an event on it would reach. The caller needs the right to
// subscribe to each topic, as for a stream, with a token from the same places (the cookie
// too: the answer tells less than a stream of the same topics would, and a GET changes
// nothing that a cross-site request could abuse).
func (g *Gateway) handlePresence(c *gin.Context) {
	topics, err := g.parsePresence(c)
	if err == nil {
		err = g.authorizePresence(c, topics)
	}
	if err != nil {
		g.writeError(c, err)
		return
	}
	end, ok := g.limits.beginSurvey()
	if !ok {
		c.Header("Retry-After", "1")
		g.writeError(c, wrapf(errRateLimited, "%d presence requests in progress on this gateway: retry in a second", maxSurveys))
		return
	}
	defer end()
	res, err := g.presence.Survey(c.Request.Context(), topics, g.opts.PresenceWait)
	if err != nil {
		if c.Request.Context().Err() == nil { // else the client left
			g.writeError(c, err)
		}
		return
	}
	body := presenceResponse{Topics: make(map[string]topicPresence, len(topics)), Gateways: res.Gateways}
	for i, t := range topics {
		body.Topics[t] = topicPresence{Streams: res.Streams[i]}
	}
	c.JSON(http.StatusOK, body)
}

// parsePresence returns the distinct topics of GET /presence: literal topics, no more
// than a stream may have.
func (g *Gateway) parsePresence(c *gin.Context) ([]string, error) {
	q := c.Request.URL.Query()
	if err := checkParams(q, "topic", accessTokenParam); err != nil {
		return nil, err
	}
	raw, limit := q["topic"], min(g.opts.MaxTopics, natsbus.MaxSurveyTopics)
	switch {
	case len(raw) == 0:
		return nil, wrapf(errBadRequest, "at least one topic parameter is required, e.g. /presence?topic=orders.eu")
	case len(raw) > limit:
		return nil, wrapf(errBadRequest, "%d topics: at most %d per request", len(raw), limit)
	}
	topics := make([]string, 0, len(raw))
	for _, t := range raw {
		if err := natsbus.ValidateTopic(t); err != nil {
			return nil, err
		}
		if !contains(topics, t) {
			topics = append(topics, t)
		}
	}
	return topics, nil
}

// authorizePresence checks that the request may subscribe to every topic.
func (g *Gateway) authorizePresence(c *gin.Context, topics []string) error {
	gr, err := g.grants(c, streamTokens)
	if err != nil {
		return err
	}
	return g.authorizeStream(gr, topics)
}
