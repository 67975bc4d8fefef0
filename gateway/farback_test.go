package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/natsse/natsse/natsbus"
)

// TestResumeFarBack resumes from 100,000 events back: the replay is neither capped nor
// reordered, and live events follow it.
func TestResumeFarBack(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	e := newTestEnv(t, nil, func(o *natsbus.Options) { o.ClientAddr = "127.0.0.1:0" })
	nc, err := nats.Connect(e.bus.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for i := 0; i < total; i++ {
		if _, err := js.PublishAsync(fmt.Sprintf("sse.far.%d", i%2), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 || i == total-1 { // in batches, so that a busy machine never stalls it
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(2 * time.Minute):
				t.Fatal("publishing did not complete")
			}
		}
	}
	t.Logf("published %d events in %s", total, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	c := e.subscribe(t, "topic=far.0&last_event_id=earliest", "")
	for i := 0; i < total; i += 2 {
		ev := c.next(t)
		if ev.Data != strconv.Itoa(i) || !strings.HasSuffix(ev.ID, "-"+strconv.Itoa(i+1)) {
			t.Fatalf("event %d: id %s data %q", i, ev.ID, ev.Data)
		}
	}
	t.Logf("replayed %d events in %s", total/2, time.Since(began).Round(time.Millisecond))
	live := e.publish(t, "far.0", "", "live")
	if got := c.next(t); got.ID != live {
		t.Fatalf("after the replay: %s, want the live %s", got.ID, live)
	}
}
