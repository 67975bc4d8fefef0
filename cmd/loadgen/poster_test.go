package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestPoster(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Write(body)
		case "/chunked": // flushed in parts, without Content-Length
			w.Write([]byte("first "))
			w.(http.Flusher).Flush()
			w.Write([]byte("second"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			http.Error(w, "no such path", http.StatusNotFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, err := dialPoster(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/echo", "hello", 200, "hello"},
		{"/chunked", "", 200, "first second"},
		{"/missing", "x", 404, "no such path\n"},
		{"/close", "", 200, "bye"},
		{"/echo", "again", 200, "again"}, // on a new connection
		{"/echo", "", 200, ""},
	} {
		req, err := postRequest(srv.URL+tc.path, []byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		status, body, err := p.post(t.Context(), req)
		if err != nil || status != tc.status || string(body) != tc.want {
			t.Errorf("POST %s: %d %q %v; want %d %q", tc.path, status, body, err, tc.status, tc.want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (one more after Connection: close)", n)
	}
}
