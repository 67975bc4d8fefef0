// Package natsbus runs the NATS side of the gateway: an embedded nats-server with
// JetStream (or, later, a connection to an existing deployment), the stream that stores
// every event, publishing into it, one live feed that follows it, and replays of its
// history.
//
// Topics are the gateway's names for subjects: topic "orders.eu" is subject
// "<prefix>.orders.eu", and the stream captures "<prefix>.>".
//
// Concurrency: a Bus is safe for concurrent use. A Feed delivers messages to its callback
// one at a time, in stream order, on a goroutine the Bus owns; Close on a Feed or a Bus
// blocks until its goroutines are gone. The package knows nothing of HTTP.
package natsbus
