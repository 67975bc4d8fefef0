package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the tests' view of a cluster's stream, over JetStream.

// clusterStreamInfo asks JetStream about the gateways' stream.
func clusterStreamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// clusterWaitHealthy waits until the stream has a leader and replicas replicas, all
// current: a node that came back has caught up.
func clusterWaitHealthy(tb testing.TB, js jetstream.JetStream, replicas int, timeout time.Duration) {
	tb.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := clusterStreamInfo(tb.Context(), js)
		switch {
		case err != nil:
			last = err.Error()
		case info.Cluster == nil || info.Cluster.Leader == "":
			last = "no leader"
		case len(info.Cluster.Replicas) != replicas-1:
			last = fmt.Sprintf("leader %s with %d other replicas", info.Cluster.Leader, len(info.Cluster.Replicas))
		default:
			healthy := true
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					healthy = false
					last = fmt.Sprintf("replica %s current=%v offline=%v lag=%d", p.Name, p.Current, p.Offline, p.Lag)
				}
			}
			if healthy {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stream not healthy after %s: %s", timeout, last)
		}
		<-tick.C
	}
}

// clusterLeader returns the node that leads the stream.
func clusterLeader(tb testing.TB, js jetstream.JetStream, nodes []*clusterNode) *clusterNode {
	tb.Helper()
	var leader *clusterNode
	pollUntil(tb, 30*time.Second, "a stream leader", func() bool {
		info, err := clusterStreamInfo(tb.Context(), js)
		if err != nil || info.Cluster == nil {
			return false
		}
		for _, n := range nodes {
			if n.name == info.Cluster.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}
