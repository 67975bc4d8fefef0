package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/natsse/natsse/natsbus"
)

// TestPublishAnswerJSON: the answer written by hand is what encoding/json writes.
func TestPublishAnswerJSON(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{"orders.eu", `a"b`, `a\b`, "a<b>&c", "café.☕", "a\u2028b", "x\x7fy"} {
		res := natsbus.PublishResult{Seq: 1<<64 - 1, Duplicate: topic == "orders.eu"}
		got := appendPublished(nil, 1<<64-1, topic, res)
		want, _ := json.Marshal(publishResponse{ID: position{1<<64 - 1, res.Seq}.String(), Topic: topic, Seq: res.Seq, Duplicate: res.Duplicate})
		if string(got) != string(want) {
			t.Errorf("topic %q: got %s, want %s", topic, got, want)
		}
	}
}

// TestPublishBodyLength: bodies of unannounced length (chunked) are read too, and refused
// when too large.
func TestPublishBodyLength(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(o *Options) { o.MaxEventBytes = 1024 }, nil)
	c := e.subscribe(t, "topic=len", "")
	tests := []struct {
		name   string
		body   io.Reader
		status int
	}{
		{"announced", strings.NewReader("announced"), http.StatusOK},
		{"chunked", io.MultiReader(strings.NewReader("chun"), strings.NewReader("ked")), http.StatusOK},
		{"chunked, too large", io.MultiReader(strings.NewReader(strings.Repeat("x", 2000))), http.StatusRequestEntityTooLarge},
		{"announced, too large", strings.NewReader(strings.Repeat("x", 2000)), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/publish/len", tt.body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("%s: status %d %s, want %d", tt.name, resp.StatusCode, raw, tt.status)
		}
		if tt.status != http.StatusOK {
			continue
		}
		var r publishResponse
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("%s: answer %s of type %q", tt.name, raw, ct)
		}
		if got := c.next(t); got.ID != r.ID || got.Data != tt.name {
			t.Fatalf("%s: received %+v, want id %s", tt.name, got, r.ID)
		}
	}
}
