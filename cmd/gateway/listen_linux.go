package main

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens the HTTP listener. Every accepted connection gets TCP_USER_TIMEOUT: data
// the client has not acknowledged within userTimeout closes the connection. A client that
// vanished without a FIN is thus found by the next keep-alive write, within the keep-alive
// interval plus userTimeout, instead of after the kernel's retransmissions (15 minutes).
func listen(addr string, userTimeout time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
