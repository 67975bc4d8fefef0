package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/natsse/natsse/sseformat"
)

// maxEventBytes bounds a publish's body, as the gateway's default does.
const maxEventBytes = 64 << 10

// server answers the HTTP API loadgen drives, the gateway's as far as loadgen uses it.
type server struct {
	b            *broker
	writeTimeout time.Duration // bounds every write to a stream
	keepAlive    time.Duration // between keep-alive comments
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/events", s.events)
	mux.HandleFunc("/publish/", s.publish)
	mux.HandleFunc("/stats", s.stats)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such path: GET /events, POST /publish/<topic>, GET /stats")
	})
	return mux
}

// Frames every stream may be sent: they are shared, never modified.
var (
	retryFrame = sseformat.AppendRetry(nil, 3*time.Second)
	pingFrame  = sseformat.AppendComment(nil, "ping")
	gapFrame   = sseformat.AppendEvent(nil, sseformat.Event{Type: "gap", Data: `{"reason":"history"}`})
)

// events streams a topic's events: GET /events?topic=t, resuming after the event named in
// Last-Event-ID if any. It writes what is queued, then flushes once.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET /events?topic=<topic>")
		return
	}
	topic := r.URL.Query().Get("topic")
	if err := validateTopic(topic); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_topic", err.Error())
		return
	}
	sd, err := s.b.subscribe(topic, r.Header.Get("Last-Event-ID"))
	switch {
	case errors.Is(err, errBadID):
		writeError(w, http.StatusBadRequest, "invalid_last_event_id", "Last-Event-ID: not an id this server sent")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	defer s.b.unsubscribe(topic, sd.sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := batchWriter{w: w, rc: http.NewResponseController(w), timeout: s.writeTimeout}
	first := [][]byte{retryFrame}
	if sd.gap {
		first = append(first, gapFrame)
	}
	if out.send(first) != nil || out.send(sd.backlog) != nil {
		return
	}
	ping := time.NewTicker(s.keepAlive)
	defer ping.Stop()
	var spare [][]byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.b.closed:
			return
		case <-ping.C:
			if out.send([][]byte{pingFrame}) != nil {
				return
			}
		case <-sd.sub.ready:
			frames, cut := sd.sub.take(spare)
			if out.send(frames) != nil || cut {
				return
			}
			spare = frames
		}
	}
}

// publish stores and sends an event: POST /publish/<topic>[?event=type], the body its
// data. It answers {"id","topic","seq"}.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST /publish/<topic>")
		return
	}
	topic := strings.TrimPrefix(r.URL.Path, "/publish/")
	if err := validateTopic(topic); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_topic", err.Error())
		return
	}
	typ := r.URL.Query().Get("event")
	if err := sseformat.ValidateType(typ); err != nil || typ == "gap" {
		writeError(w, http.StatusBadRequest, "invalid_event_type", "event: one line of UTF-8, not gap")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "body over "+strconv.Itoa(maxEventBytes)+" bytes")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", "reading body: "+err.Error())
		return
	case !utf8.Valid(body):
		writeError(w, http.StatusBadRequest, "invalid_data", "body is not valid UTF-8 text")
		return
	}
	id, seq := s.b.publish(topic, typ, body)
	writeJSON(w, http.StatusOK, struct {
		ID    string `json:"id"`
		Topic string `json:"topic"`
		Seq   uint64 `json:"seq"`
	}{id, topic, seq})
}

// stats answers the counters loadgen reads: GET /stats.
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET /stats")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Connections int64  `json:"connections"` // open streams
		SlowCut     uint64 `json:"slow_cut"`    // streams cut for a full queue
	}{s.b.open.Load(), s.b.cut.Load()})
}

// validateTopic accepts dot-separated tokens of printable ASCII without wildcards, as a
// NATS subject without them: 1 to 256 bytes.
func validateTopic(t string) error {
	if t == "" || len(t) > 256 {
		return errors.New("topic: 1 to 256 bytes")
	}
	for _, tok := range strings.Split(t, ".") {
		if tok == "" {
			return errors.New("topic: an empty token")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return errors.New("topic: printable ASCII without spaces or wildcards")
			}
		}
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
