package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWriteTimeoutCutsStalledClient opens a stream whose client stops reading while events
// are published. README: "A write that the client does not take within
// GATEWAY_WRITE_TIMEOUT ends its stream". The gateway's end of the connection must close
// about that long after its writes stalled (seen in the kernel's table of TCP
// connections), not before, and the client, reading again, finds the stream ended. (The
// variable sets both the stream's write deadline and the connection's TCP_USER_TIMEOUT:
// whichever comes first ends it.)
func TestWriteTimeoutCutsStalledClient(t *testing.T) {
	t.Parallel()
	const (
		writeTimeout = 2 * time.Second
		size         = 8 << 10
		maxEvents    = 5000
	)
	g := startGateway(t, "GATEWAY_WRITE_TIMEOUT="+writeTimeout.String(), "GATEWAY_BUFFER_SIZE=8")
	stalled := dialStream(t, g, "/events?topic=stall")
	conn := serverSideOf(t, g, stalled.conn)
	if st := conn.state(t); st != tcpEstablished {
		t.Fatalf("the gateway's end of the stream is in TCP state %s, want established", st)
	}

	// Publish until the gateway's writes to the client block and the stream's buffer
	// fills: the stream then leaves the live path, and says so. (On a slow machine the
	// kernel may give up on the connection first: the client's window stayed shut for
	// TCP_USER_TIMEOUT.)
	published := time.Now() // no write to the client can block before this
	fellBehind := func(e logEntry) bool { return strings.Contains(e.msg(), "slow client fell behind") }
	var blocked time.Time // by then, a write had been blocked for a while
	for i := 0; blocked.IsZero(); i++ {
		if i == maxEvents {
			t.Fatalf("%d events of %d bytes published and the stream never fell behind", i, size)
		}
		g.publish(t, "stall", "", fmt.Sprintf("%06d:", i)+strings.Repeat("s", size-7))
		if len(g.log.entries(fellBehind)) > 0 || conn.state(t) != tcpEstablished {
			blocked = time.Now()
		}
	}
	t.Logf("writes to the client blocked %s after publishing began", blocked.Sub(published).Round(time.Millisecond))

	// The gateway closes its end within the write timeout of the stalled write (allowing 3x
	// on a busy machine), and not long before the timeout could have passed.
	var closed time.Time
	pollUntil(t, time.Until(blocked.Add(3*writeTimeout)), "the gateway to close the stalled stream's connection", func() bool {
		if conn.state(t) == tcpEstablished {
			return false
		}
		closed = time.Now()
		return true
	})
	t.Logf("connection closed %s after publishing began, %s after the stream fell behind (write timeout %s)",
		closed.Sub(published).Round(time.Millisecond), closed.Sub(blocked).Round(time.Millisecond), writeTimeout)
	if early := published.Add(writeTimeout / 2); closed.Before(early) {
		t.Errorf("connection closed %s after publishing began: before the %s write timeout could pass",
			closed.Sub(published).Round(time.Millisecond), writeTimeout)
	}

	// Reading again, the client gets what was in flight and then the end of the stream.
	stalled.conn.SetReadDeadline(time.Now().Add(eventTimeout))
	_, err := io.Copy(io.Discard, stalled.resp.Body)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatalf("the stream still open %s after the client read again", eventTimeout)
	}
	t.Logf("the client read to the end of the stream: %v", err)
}

// tcpConn names one TCP connection in the kernel's table (/proc/net/tcp) by its local and
// remote ports on 127.0.0.1.
type tcpConn struct {
	local, remote int
}

// serverSideOf is the gateway's end of conn, a connection to g's HTTP port.
func serverSideOf(tb testing.TB, g *gatewayProc, conn net.Conn) tcpConn {
	tb.Helper()
	_, port, err := net.SplitHostPort(g.httpAddr)
	if err != nil {
		tb.Fatal(err)
	}
	local, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatal(err)
	}
	return tcpConn{local: local, remote: conn.LocalAddr().(*net.TCPAddr).Port}
}

// TCP states as /proc/net/tcp writes them (include/net/tcp_states.h).
const (
	tcpEstablished = "01"
	tcpGone        = "gone" // not in the table any more
)

// state returns the connection's TCP state, or tcpGone.
func (c tcpConn) state(tb testing.TB) string {
	tb.Helper()
	f, err := os.Open("/proc/net/tcp")
	if errors.Is(err, os.ErrNotExist) {
		skipOrFail(tb, "needs Linux's /proc/net/tcp to see the gateway's end of a connection")
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	local, remote := fmt.Sprintf(":%04X", c.local), fmt.Sprintf(":%04X", c.remote)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && strings.HasSuffix(fields[1], local) && strings.HasSuffix(fields[2], remote) {
			return fields[3]
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return tcpGone
}
