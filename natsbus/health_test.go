package natsbus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// streamLeader waits until the stream has a leader, and returns its node among buses.
func streamLeader(t *testing.T, buses []*Bus) (leader *Bus, others []*Bus) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		info, err := buses[0].info(ctx)
		cancel()
		if err == nil {
			for _, b := range buses {
				if b.opts.ServerName == info.Cluster.Leader {
					leader = b
				} else {
					others = append(others, b)
				}
			}
			if leader != nil {
				return leader, others
			}
			others = nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream leader after a minute: %v", err)
		}
		<-time.After(100 * time.Millisecond) // polling interval
	}
}

// waitReady polls until every bus is ready.
func waitReady(t *testing.T, buses ...*Bus) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, b := range buses {
		for {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			err := b.Ready(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready after a minute: %v", b.opts.ServerName, err)
			}
			<-time.After(100 * time.Millisecond) // polling interval
		}
	}
}

// TestCutOffLeader silences the stream leader's two peers (their servers shut down without
// handing anything over, as a partition would look to it). The leader must stop calling
// itself ready, and a publish through it must fail with ErrCutOff once it knows, instead
// of waiting out its whole timeout.
func TestCutOffLeader(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
	leader, others := streamLeader(t, buses)
	waitReady(t, buses...)
	if err := leader.CutOff(); err != nil {
		t.Fatalf("leader with both peers up: %v", err)
	}
	publish(t, leader, "x", "", "before")
	for _, b := range others {
		b.Close()
	}
	const timeout = 30 * time.Second
	began := time.Now()
	_, err := leader.PublishWithin(t.Context(), Publication{Topic: "x", Data: []byte("cut off")}, timeout)
	took := time.Since(began)
	t.Logf("publish on the cut-off leader: %v after %s", err, took.Round(time.Millisecond))
	if !errors.Is(err, ErrCutOff) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish on the cut-off leader: %v, want ErrCutOff", err)
	}
	// It knows after peerSilentAfter, and an unanswered attempt lasts attemptTimeout:
	// 3x their sum is generous, and far below the publish's own timeout.
	if limit := 3 * (peerSilentAfter + attemptTimeout); took > limit {
		t.Errorf("the cut-off leader answered after %s, want within %s", took.Round(time.Millisecond), limit)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := leader.Ready(ctx); !errors.Is(err, ErrCutOff) {
		t.Errorf("Ready on the cut-off leader: %v, want ErrCutOff", err)
	}
}

// TestCutOffFollower leaves one follower alone: once it calls an election nobody answers,
// it is cut off.
func TestCutOffFollower(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
	leader, others := streamLeader(t, buses)
	waitReady(t, buses...)
	alone := others[0]
	leader.Close()
	others[1].Close()
	began := time.Now()
	// NATS's election timeout is 4 to 9 s, then peerSilentAfter: 3x is generous.
	limit := 3 * (9*time.Second + peerSilentAfter)
	for alone.CutOff() == nil {
		if time.Since(began) > limit {
			t.Fatalf("a follower alone still not cut off after %s", limit)
		}
		<-time.After(100 * time.Millisecond) // polling interval
	}
	t.Logf("the follower alone knew it was cut off after %s", time.Since(began).Round(time.Millisecond))
}

// TestElectionKeepsReady kills nothing but the stream leader: the two others keep a quorum
// and must stay ready while they elect a new leader, but for a moment at most.
func TestElectionKeepsReady(t *testing.T) {
	t.Parallel()
	buses := newTestCluster(t)
	leader, others := streamLeader(t, buses)
	waitReady(t, buses...)
	leader.Close()
	began := time.Now()
	var unready [2]time.Duration
	var lastErr [2]error
	elected := time.Time{}
	for elected.IsZero() || time.Since(elected) < 2*time.Second {
		if time.Since(began) > time.Minute {
			t.Fatal("no new leader a minute after the old one left")
		}
		for i, b := range others {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			t0 := time.Now()
			err := b.Ready(ctx)
			cancel()
			if err != nil {
				unready[i] += time.Since(t0) + 50*time.Millisecond
				lastErr[i] = err
			}
		}
		if elected.IsZero() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			if _, err := others[0].info(ctx); err == nil {
				elected = time.Now()
				t.Logf("new leader after %s", elected.Sub(began).Round(time.Millisecond))
			}
			cancel()
		}
		<-time.After(50 * time.Millisecond) // polling interval
	}
	for i, b := range others {
		t.Logf("%s unready for about %s (%v)", b.opts.ServerName, unready[i].Round(time.Millisecond), lastErr[i])
		if unready[i] > time.Second {
			t.Errorf("%s, one of a quorum, was unready for about %s during the election: %v", b.opts.ServerName, unready[i].Round(time.Millisecond), lastErr[i])
		}
	}
}
