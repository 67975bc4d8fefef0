// Package auth checks the gateway's tokens: JWTs signed with an HMAC secret, a public key,
// or a key from a JWKS endpoint, whose "natsse" claim grants topic filters to subscribe to
// and to publish on. One token model serves HTTP clients and NATS clients alike.
//
// A token looks like this (claims):
//
//	{"sub": "42", "exp": 1767225600,
//	 "natsse": {"subscribe": ["orders.*", "users.{sub}.>"], "publish": ["orders.created"]}}
//
// Filters are topics (subjects without the gateway's prefix). "{sub}" stands for the
// token's subject, which must then be a single valid topic token. The algorithms accepted
// follow from the key, never from the token: "none" and an HMAC token checked against a
// public key are refused.
//
// # Concurrency
//
// A Verifier is safe for concurrent use. With a JWKS URL it owns one goroutine (started by
// the JWKS client) that refreshes the keys every hour, and fetches them again, at most once
// every 30 s, when a token names a key it does not know; Close ends that goroutine (it
// returns without waiting for a refresh under way to finish). Verify blocks only while such
// a fetch runs. Grants are immutable.
package auth
