// Package e2e holds black-box end-to-end tests of the gateway: TestMain builds the
// cmd/gateway binary once, and each test runs it as a separate process on random ports
// with its own data directory, talking to it over HTTP (SSE streams, publishes, health)
// and NATS only.
//
// Run them with
//
//	go test -race ./e2e/
package e2e
