package gateway

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// TestWriterSendsInBatches writes a long catch-up without flushing: the writer never holds
// more than a batch, sends the rest as it goes, and loses, repeats or reorders nothing; a
// frame larger than a batch goes out whole; a flush sends what is left and counts every
// event as delivered.
func TestWriterSendsInBatches(t *testing.T) {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	m := &metrics{}
	w := newStreamWriter(c.Writer, time.Second, m)
	var want bytes.Buffer
	data := []byte(strings.Repeat("x", 1000))
	const stored = 300
	for i := 1; i <= stored; i++ {
		msg := natsbus.Message{Seq: uint64(i), Topic: "a", Data: data}
		if _, err := w.writeStored(epochOne(), msg, false); err != nil {
			t.Fatal(err)
		}
		frame, _ := appendStored(nil, epochOne(), msg, false)
		want.Write(frame)
		if len(w.gathered) > writeBatch {
			t.Fatalf("after %d events the writer holds %d bytes, more than a batch (%d)", i, len(w.gathered), writeBatch)
		}
		if got := append(bytes.Clone(rec.Body.Bytes()), w.gathered...); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("after %d events, sent and held bytes differ from the frames written", i)
		}
	}
	if rec.Body.Len() < want.Len()-writeBatch {
		t.Fatalf("sent %d of %d bytes without a flush: the writer holds more than a batch", rec.Body.Len(), want.Len())
	}
	big, _ := newEvent(epochOne(), natsbus.Message{Seq: stored + 1, Topic: "a", Data: bytes.Repeat(data, 3*writeBatch/len(data))})
	if err := w.writeEvent(big, false); err != nil {
		t.Fatal(err)
	}
	want.Write(big.frame)
	if !bytes.HasSuffix(rec.Body.Bytes(), big.frame) || len(w.gathered) != 0 {
		t.Fatalf("a frame of %d bytes was gathered (%d held) instead of sent at once", len(big.frame), len(w.gathered))
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want.Bytes()) || !rec.Flushed {
		t.Fatal("after the flush, the response differs from the frames written")
	}
	if got := m.deliveries.Load(); got != stored+1 {
		t.Fatalf("%d deliveries counted, want %d", got, stored+1)
	}
	dec := sseformat.NewDecoder(rec.Body)
	dec.SetMaxEventSize(len(big.frame))
	for i := 1; i <= stored+1; i++ {
		ev, err := dec.Next()
		if err != nil || ev.ID != fmt.Sprintf("1-%d", i) {
			t.Fatalf("event %d: %q, %v", i, ev.ID, err)
		}
	}
}
