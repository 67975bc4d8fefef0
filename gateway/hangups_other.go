//go:build !linux

package gateway

import "net"

// hangups is Linux's epoll set of parked streams' connections (hangups_linux.go). Elsewhere
// there is none: each parked stream reads its connection on a goroutine of its own to see
// its client hang up.
type hangups struct{}

func newHangups() (*hangups, error) { return nil, nil }

func (h *hangups) watch(net.Conn, func()) (unwatch func(), ok bool) { return nil, false }

func (h *hangups) close() {}
