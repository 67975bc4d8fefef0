package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// storedMsg is one message of the gateway's stream, read directly over NATS.
type storedMsg struct {
	seq   uint64
	topic string
	typ   string
	data  string
}

// readStream reads every message of the stream capturing "sse.>" over JetStream, without
// going through the gateway: the reference the events delivered over SSE are compared with.
func readStream(tb testing.TB, js jetstream.JetStream) []storedMsg {
	tb.Helper()
	name, err := js.StreamNameBySubject(tb.Context(), "sse.>")
	if err != nil {
		tb.Fatalf("stream of sse.>: %v", err)
	}
	return readStreamNamed(tb, js, name)
}

// readStreamNamed reads every message of the stream name with a short-lived consumer,
// deleted afterwards.
func readStreamNamed(tb testing.TB, js jetstream.JetStream, name string) []storedMsg {
	tb.Helper()
	ctx := tb.Context()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		tb.Fatalf("stream %s: %v", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s info: %v", name, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var out []storedMsg
	noResponders := 0
	for len(out) == 0 || out[len(out)-1].seq < last {
		// Ask for no more than is left: a fetch waits for its batch to fill.
		n := min(500, max(int(info.State.Msgs)-len(out), 1))
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if errors.Is(err, nats.ErrNoResponders) && noResponders < 50 {
			noResponders++
			<-time.After(100 * time.Millisecond) // until the consumer's interest has spread
			continue
		}
		if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				tb.Fatalf("metadata: %v", err)
			}
			out = append(out, storedMsg{
				seq:   md.Sequence.Stream,
				topic: strings.TrimPrefix(m.Subject(), "sse."),
				typ:   m.Headers().Get("Sse-Event"),
				data:  string(m.Data()),
			})
		}
		if err := batch.Error(); errors.Is(err, nats.ErrNoResponders) && noResponders < 50 && got == 0 {
			noResponders++
			<-time.After(100 * time.Millisecond)
			continue
		} else if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		if got == 0 {
			tb.Fatalf("stream read stalled at %d of %d messages", len(out), info.State.Msgs)
		}
	}
	return out
}

// streamName is the gateways' stream (GATEWAY_STREAM's default).
const streamName = "NATSSE"

// expectedSeqs returns the sequences of the stream's messages after after that match
// filters: what a client of filters that resumed after after receives.
func expectedSeqs(stream []storedMsg, filters []string, after uint64) []uint64 {
	var out []uint64
	for _, m := range stream {
		if m.seq > after && matchAny(filters, m.topic) {
			out = append(out, m.seq)
		}
	}
	return out
}

// lastMatching returns the sequence of the stream's last message that matches filters, 0
// if none does.
func lastMatching(stream []storedMsg, filters []string) uint64 {
	for i := len(stream) - 1; i >= 0; i-- {
		if matchAny(filters, stream[i].topic) {
			return stream[i].seq
		}
	}
	return 0
}

// storedAt returns the stream's message seq, or a zero storedMsg.
func storedAt(stream []storedMsg, seq uint64) storedMsg {
	i, ok := slices.BinarySearchFunc(stream, seq, func(m storedMsg, s uint64) int {
		return cmp.Compare(m.seq, s)
	})
	if !ok {
		return storedMsg{}
	}
	return stream[i]
}

// seqDiff describes the first difference between the sequences received and wanted, ""
// when they are equal.
func seqDiff(got, want []uint64) string {
	if slices.Equal(got, want) {
		return ""
	}
	j := firstDifference(got, want)
	return fmt.Sprintf("received %d events, want %d; first difference at %d: got %v, want %v",
		len(got), len(want), j, window(got, j), window(want, j))
}

func firstDifference(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func window(s []uint64, i int) []uint64 {
	return s[max(i-3, 0):min(i+3, len(s))]
}
