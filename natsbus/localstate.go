package natsbus

import "github.com/nats-io/nats-server/v2/server"

// readsLocalState reports whether State may read the stream's state from the embedded
// server's own store: the server runs JetStream standalone, so it holds the stream's only
// copy, the one that answers every request for the stream's info. A clustered stream's
// local replica may lag its leader, and a leaf node or an external deployment holds no copy.
func (o *Options) readsLocalState() bool { return o.embedsJetStream() && !o.Cluster.enabled() }

// localState reads the stream's first and last sequence from the embedded server's store,
// as its answer to a request for the stream's info would give them, but without the round
// trip: in a storm of resuming clients, each request waits for thousands of busy goroutines
// at every hop from the client to the server's JetStream API and back. ok is false when the
// store cannot be read so (a server without JetStream standalone, one shutting down, or a
// stream that is not the one the Bus created); the caller then asks the stream.
func (b *Bus) localState() (s streamState, ok bool) {
	if !b.opts.readsLocalState() {
		return s, false
	}
	return b.replicaState(false)
}

// StoredLast returns the last sequence in this process's own copy of the stream, read in
// place: the stream's, on a standalone server; its replica's, on a node of an embedded
// cluster, which may lag the stream's leader. ok is false when this process holds no copy.
func (b *Bus) StoredLast() (last uint64, ok bool) {
	s, ok := b.replicaState(true)
	return s.last, ok
}

// replicaState reads the state of the embedded server's copy of the stream, if it holds
// one, of the stream the Bus created; a replica of a clustered stream only if replicas.
func (b *Bus) replicaState(replicas bool) (s streamState, ok bool) {
	if b.ns == nil || !b.opts.embedsJetStream() {
		return s, false
	}
	acc := b.ns.GlobalAccount() // the gateway's account, where the stream is (see clientAccounts)
	if acc == nil {
		return s, false
	}
	d, err := b.ns.JszAccount(&server.JSzOptions{Account: acc.GetName(), Streams: true})
	if err != nil {
		return s, false
	}
	for _, sd := range d.Streams {
		if sd.Name != b.opts.Stream {
			continue
		}
		if uint64(sd.Created.UnixNano()) != b.epoch || (!replicas && sd.Cluster != nil && len(sd.Cluster.Replicas) > 0) {
			return s, false // recreated since the Bus started, or replicated: ask the stream
		}
		s.first, s.last = sd.State.FirstSeq, sd.State.LastSeq
		if s.first == 0 {
			s.first = s.last + 1
		}
		return s, true
	}
	return s, false
}

// Standalone reports whether the stream's only copy is in this process's embedded server,
// so that State is the stream's own state, read in place.
func (b *Bus) Standalone() bool { return b.opts.readsLocalState() }
