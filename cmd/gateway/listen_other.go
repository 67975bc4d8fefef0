//go:build !linux

package main

import (
	"net"
	"time"
)

// listen opens the HTTP listener. Dead clients are found by the write timeout alone.
func listen(addr string, _ time.Duration) (net.Listener, error) {
	return net.Listen("tcp", addr)
}
