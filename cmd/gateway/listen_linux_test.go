package main

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestListenSetsUserTimeoutOnAcceptedConns(t *testing.T) {
	ln, err := listen("127.0.0.1:0", 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if gerr != nil || got != 7000 {
		t.Fatalf("TCP_USER_TIMEOUT on an accepted connection: %d ms, %v; want 7000", got, gerr)
	}
}
