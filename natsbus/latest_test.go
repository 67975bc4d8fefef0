package natsbus

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestBusLatest(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	// history[seq-1] is the topic of seq.
	var history []string
	pub := func(topic string) {
		seq := publish(t, b, topic, "", fmt.Sprintf("%s #%d", topic, len(history)+1))
		history = append(history, topic)
		if seq != uint64(len(history)) {
			t.Fatalf("published %s at %d, want %d", topic, seq, len(history))
		}
	}
	topics := []string{"a.x", "b.y", "a.z", "c", "a.x.deep"}
	for i := 0; i < 300; i++ { // the last of each at 296 to 300
		pub(topics[i%len(topics)])
	}
	for i := 0; i < 300; i++ { // more subjects than one fetch holds
		pub(fmt.Sprintf("many.%d", i))
	}
	pub("many.7") // at 601: a subject's newest is far from its first
	pub("b.y")    // at 602

	// latest is what Latest should deliver: the newest of each matching topic, if it is
	// at most upTo.
	latest := func(filters []string, upTo uint64) []uint64 {
		newest := map[string]uint64{}
		for i, topic := range history {
			newest[topic] = uint64(i + 1)
		}
		var want []uint64
		for topic, seq := range newest {
			if seq > upTo {
				continue
			}
			for _, f := range filters {
				if Covers(f, topic) {
					want = append(want, seq)
					break
				}
			}
		}
		slices.Sort(want)
		return want
	}
	tests := []struct {
		name    string
		filters []string
		upTo    uint64
		count   int // of the messages wanted, to check the test itself
	}{
		{"one subject", []string{"a.x"}, 602, 1},
		{"wildcard", []string{"a.*"}, 602, 2},
		{"tail wildcard", []string{"a.>"}, 602, 3},
		{"several filters", []string{"c", "*.y", "a.x.*"}, 602, 3},
		{"overlapping filters", []string{"a.*", "a.x", "*.x"}, 602, 2},
		{"more than a fetch", []string{"many.>"}, 602, 300},
		{"everything", []string{">"}, 602, 305},
		{"bounded", []string{">"}, 298, 2},                // b.y and many.7 moved past 298
		{"bounded in many", []string{"many.*"}, 600, 299}, // many.7 is at 601
		{"bound on the newest", []string{"b.y", "a.z"}, 601, 1},
		{"never published", []string{"never.published"}, 602, 0},
		{"never published and one", []string{"never.*", "c"}, 602, 1},
		{"nothing up to", []string{">"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := latest(tt.filters, tt.upTo)
			if len(want) != tt.count {
				t.Fatalf("the test wants %d messages, expected %d", len(want), tt.count)
			}
			var got []uint64
			err := b.Latest(t.Context(), tt.filters, tt.upTo, func(m Message) error {
				if topic := history[m.Seq-1]; m.Topic != topic || string(m.Data) != fmt.Sprintf("%s #%d", topic, m.Seq) {
					t.Errorf("seq %d: topic %q data %q, want topic %q", m.Seq, m.Topic, m.Data, topic)
				}
				got = append(got, m.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		})
	}
	if n := consumers(t, b); n != 0 {
		t.Fatalf("%d consumers left after Latest", n)
	}
}

func TestBusLatestStopsOnError(t *testing.T) {
	t.Parallel()
	b := newTestBus(t)
	for i := 0; i < 10; i++ {
		publish(t, b, fmt.Sprint("t.", i), "", "x")
	}
	stop := errors.New("stop")
	calls := 0
	err := b.Latest(t.Context(), []string{"t.*"}, 10, func(Message) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("err %v after %d calls; want stop after 3", err, calls)
	}
	if n := consumers(t, b); n != 0 {
		t.Fatalf("%d consumers left after Latest", n)
	}
}

// consumers counts the stream's consumers.
func consumers(t testing.TB, b *Bus) int {
	t.Helper()
	n, err := b.Consumers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
