// Package natsbus runs the NATS side of the gateway: an embedded nats-server with
// JetStream (or a connection to an existing deployment), the stream that stores every
// event, publishing into it, one live feed that follows it, replays of its history,
// the newest event of each subject, and presence surveys among the gateways that share it.
// It knows nothing of HTTP.
//
// Topics are the gateway's names for subjects: topic "orders.eu" is subject
// "<prefix>.orders.eu", and the stream captures "<prefix>.>".
//
// # Concurrency
//
// A Bus is safe for concurrent use. Publish, Replay, Latest, State and Ready block for a NATS
// round trip (bounded by their context), except State on a standalone embedded server, which
// reads the stream's store in place, and Ready on a node of an embedded cluster, which reads
// its raft state (see CutOff: it looks twice, half a second apart, at a node that seems cut
// off); Replay and Latest also wait for one of Options.MaxReplays slots. Concurrent Publishes are pipelined on the connection, each
// answered by its own acknowledgement; a Publish whose stream is without a leader for a
// moment sends its publication again until it is stored or its context ends, and Close
// ends the waiting ones at once. The Bus starts no goroutine of its own: the embedded
// server and the NATS connection run theirs, and Close stops them, blocking until the
// connection has drained and the server has shut down.
//
// A Feed owns exactly one goroutine, started by Follow. It pulls from the Feed's consumer
// and calls the callback, one message at a time in stream order, each sequence once; the
// callback must not block for long, as the Feed waits for it. The same goroutine watches
// the consumer and replaces it when it stalls (a consumer error, two missed heartbeats, or
// about six quiet seconds while the stream holds messages the Feed has not delivered),
// resuming after the last sequence it delivered. Nothing else touches the consumer. Close
// stops the goroutine, blocks until it has returned (the callback is not running and will
// not be called again) and then deletes the consumer. Done is closed when the goroutine
// has ended, by Close or because the Bus's connection closed under it.
//
// A Presence owns one goroutine, started by ServePresence, which answers the other
// gateways' surveys one at a time, calling the PresenceCounter for each; requests that
// pile up beyond a small queue are dropped. Close stops it and blocks until it has
// returned; it also returns when the Bus closes. Survey runs on its caller's goroutine: it
// blocks until every gateway known to listen has answered, or for its wait at most.
//
// Close every Feed and Presence before their Bus.
package natsbus
