package gateway

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangups tells parked streams that their client hung up, without a goroutine per
// connection: one goroutine waits on an epoll set of the streams' connections for the
// peer's end of the connection (EPOLLRDHUP), an error or a hang-up.
type hangups struct {
	epfd    int
	stopfd  int // an eventfd in the set: written to end the goroutine
	done    chan struct{}
	mu      sync.Mutex
	next    uint64
	watched map[uint64]func()
}

// stopToken is the stop eventfd's token; connections get tokens from 1 on.
const stopToken = 0

func newHangups() (*hangups, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, stopToken)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, err
	}
	h := &hangups{epfd: epfd, stopfd: stopfd, done: make(chan struct{}), watched: make(map[uint64]func())}
	go h.run()
	return h, nil
}

// watch calls onHangup, once, when conn's peer hangs up, unless unwatch is called first.
// It reports false when conn cannot be watched: the caller then reads it itself. unwatch
// also reads, and discards, what the client sent and nobody read: closing a socket with
// unread bytes resets the connection, which drops what is still to be sent. Call it just
// before closing conn.
func (h *hangups) watch(conn net.Conn, onHangup func()) (unwatch func(), ok bool) {
	if h == nil {
		return nil, false
	}
	if tc, isTLS := conn.(*tls.Conn); isTLS {
		conn = tc.NetConn()
	}
	sc, isSyscall := conn.(syscall.Conn)
	if !isSyscall {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	h.mu.Lock()
	h.next++
	token := h.next
	h.watched[token] = onHangup
	h.mu.Unlock()
	unwatch = func() {
		h.mu.Lock()
		delete(h.watched, token)
		h.mu.Unlock()
		discardUnread(raw)
	}
	// Reported once (EPOLLONESHOT); the registration goes with the descriptor when the
	// connection is closed.
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setToken(&ev, token)
	var ctlErr error
	if err := raw.Control(func(fd uintptr) {
		ctlErr = unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil || ctlErr != nil {
		unwatch()
		return nil, false
	}
	return unwatch, true
}

func (h *hangups) run() {
	defer close(h.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(h.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			token := tokenOf(&ev)
			if token == stopToken {
				return
			}
			h.mu.Lock()
			onHangup := h.watched[token]
			delete(h.watched, token)
			h.mu.Unlock()
			if onHangup != nil {
				onHangup()
			}
		}
	}
}

// close ends the goroutine, and blocks until it is gone.
func (h *hangups) close() {
	if h == nil {
		return
	}
	var one [8]byte
	one[0] = 1 // an eventfd takes a native-endian uint64; any nonzero value will do
	unix.Write(h.stopfd, one[:])
	<-h.done
	unix.Close(h.epfd)
	unix.Close(h.stopfd)
}

func setToken(ev *unix.EpollEvent, token uint64) {
	ev.Fd, ev.Pad = int32(uint32(token)), int32(uint32(token>>32))
}

func tokenOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// discardUnread reads, without waiting, whatever the connection has received.
func discardUnread(raw syscall.RawConn) {
	var buf [512]byte
	raw.Read(func(fd uintptr) bool {
		for {
			if n, err := unix.Read(int(fd), buf[:]); n <= 0 || err != nil {
				return true // nothing more now (EAGAIN), the end, or an error: done either way
			}
		}
	})
}
