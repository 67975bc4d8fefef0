package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// peerSilentAfter is how long a node of the embedded cluster may go unheard before this
// node stops counting it as reachable: a raft group's leader sends a heartbeat every
// second, and each follower answers it.
const peerSilentAfter = 3 * time.Second

// metaGroup is the raft group of NATS's JetStream meta layer, which places streams and
// consumers: a replay's consumer cannot be created without it.
const metaGroup = "_meta_"

// ErrCutOff is the reason a node of an embedded cluster cannot store or deliver: it is
// cut off from a quorum of its peers (see Bus.CutOff). It wraps ErrUnavailable.
var ErrCutOff = fmt.Errorf("%w: this node is cut off from a quorum of the cluster", ErrUnavailable)

// Ready reports whether the server, the connection and the stream can serve. A node of an
// embedded cluster that holds a replica of the stream is ready while it is in touch with a
// quorum (see CutOff), even while the stream elects a new leader; others ask the stream,
// which must have a leader.
func (b *Bus) Ready(ctx context.Context) error {
	select {
	case <-b.closed:
		return ErrClosed
	default:
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("%w: not connected", ErrUnavailable)
	}
	if err := b.CutOff(); err != nil {
		return err
	}
	if b.clusterNode() && b.streamGroup() != "" {
		return nil
	}
	_, err := b.info(ctx)
	return err
}

// CutOff returns ErrCutOff, saying why, when this node of an embedded cluster has not
// heard from a quorum of the stream's raft group, or of JetStream's meta group, within
// peerSilentAfter: it leads a group but hears from too few of its followers, or it has no
// leader and too few nodes answer its call for an election. A follower whose leader has
// gone quiet counts as reachable until it calls an election (NATS waits 4 to 9 seconds):
// until then it cannot tell its leader's death from its own isolation. While an election
// runs with a quorum in touch, CutOff returns nil: a leader is seconds away. A node that
// looks cut off is looked at again after suspectFor, and CutOff returns the second verdict.
//
// It reads the embedded server's own raft state, without a request. Outside an embedded
// cluster it returns nil: a standalone server holds the only copy, and a deployment
// elsewhere is judged by its answers (see Ready).
func (b *Bus) CutOff() error {
	if !b.clusterNode() {
		return nil
	}
	if b.cutOff() == nil {
		return nil
	}
	again := time.NewTimer(suspectFor)
	defer again.Stop()
	select {
	case <-again.C:
	case <-b.closed:
		return ErrClosed
	}
	return b.cutOff()
}

// suspectFor is how long a verdict of CutOff must hold before it says so: a node that has
// just called an election has not heard its first answer yet.
const suspectFor = 500 * time.Millisecond

// cutOff is CutOff's verdict at one moment.
func (b *Bus) cutOff() error {
	if group := b.streamGroup(); group != "" {
		acc := b.ns.GlobalAccount().GetName()
		if err := reach(b.ns.Raftz(&server.RaftzOptions{AccountFilter: acc, GroupFilter: group}), acc, group); err != nil {
			return fmt.Errorf("%w: the stream's group: %w", ErrCutOff, err)
		}
	}
	if sys := b.ns.SystemAccount(); sys != nil {
		if err := reach(b.ns.Raftz(&server.RaftzOptions{GroupFilter: metaGroup}), sys.GetName(), metaGroup); err != nil {
			return fmt.Errorf("%w: JetStream's meta group: %w", ErrCutOff, err)
		}
	}
	return nil
}

// clusterNode reports whether the Bus runs a node of an embedded cluster, with JetStream.
func (b *Bus) clusterNode() bool {
	return b.ns != nil && b.opts.embedsJetStream() && b.opts.Cluster.enabled()
}

// streamGroup returns the name of the raft group of this node's replica of the stream, or
// "" if it holds none.
func (b *Bus) streamGroup() string {
	acc := b.ns.GlobalAccount()
	if acc == nil {
		return ""
	}
	d, err := b.ns.JszAccount(&server.JSzOptions{Account: acc.GetName(), Streams: true, RaftGroups: true})
	if err != nil {
		return ""
	}
	for _, sd := range d.Streams {
		if sd.Name == b.opts.Stream {
			return sd.RaftGroup
		}
	}
	return ""
}

// reach judges group of account from this node's raft state in status (see CutOff).
func reach(status *server.RaftzStatus, account, group string) error {
	if status == nil {
		return nil // not (or no longer) a member: nothing to judge
	}
	g, ok := (*status)[account][group]
	if !ok {
		return nil
	}
	heard := 0
	for _, p := range g.Peers {
		if p.LastSeen == "" {
			continue
		}
		if d, err := time.ParseDuration(p.LastSeen); err == nil && d < peerSilentAfter {
			heard++
		}
	}
	need := g.QuorumNeeded - 1 // this node is one of the quorum
	switch {
	case g.State == "CLOSED":
		return errors.New("its raft node is closed")
	case g.State == "LEADER" && heard < need:
		return fmt.Errorf("it leads, but heard from %d of the %d other nodes a quorum needs in the last %s", heard, need, peerSilentAfter)
	case g.State == "CANDIDATE" && heard < need:
		return fmt.Errorf("it calls an election, and heard from %d of the %d other nodes it needs in the last %s", heard, need, peerSilentAfter)
	}
	return nil // a follower, perhaps voting in another node's election
}
