package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/natsbus"
)

// forAuthOffAndOn runs bench twice, with auth off and on, on an env without limits. With
// auth on, token grants grants; without, it is "".
func forAuthOffAndOn(b *testing.B, grants map[string]any, bench func(b *testing.B, e *testEnv, token string)) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, withAuth := range []bool{false, true} {
		name := "auth=off"
		if withAuth {
			name = "auth=on"
		}
		b.Run(name, func(b *testing.B) {
			var token string
			e := newTestEnv(b, func(o *Options) {
				o.PublishRate, o.MaxStreamsPerClient = 0, 0
				if !withAuth {
					return
				}
				v, err := auth.New(auth.Options{Secret: secret})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { v.Close() })
				o.Auth = v
				token, _ = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"sub": "bench", "exp": time.Now().Add(time.Hour).Unix(), "natsse": grants,
				}).SignedString(secret)
			}, nil)
			bench(b, e, token)
		})
	}
}

// BenchmarkHTTPPublish measures durable HTTP publishes from parallel clients, with auth off
// and on (the same token on every publish, as a service sends it).
func BenchmarkHTTPPublish(b *testing.B) {
	forAuthOffAndOn(b, map[string]any{"publish": []string{"bench.>"}}, func(b *testing.B, e *testEnv, token string) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/publish/bench.x", strings.NewReader("payload"))
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("publish: %v %v", resp, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body) // to the end, so that the connection is reused
				resp.Body.Close()
			}
		})
	})
}

// BenchmarkStreamFanOut measures events fanned out to 100 open streams, with auth off and
// on (each stream opened with a token in the URL). It reports deliveries per second, and the
// CPU time the process spent per delivery (publishing, fanning out, and reading, on both
// sides; less sensitive than the rate to what else runs on the machine).
func BenchmarkStreamFanOut(b *testing.B) {
	forAuthOffAndOn(b, map[string]any{"subscribe": []string{"fan"}}, func(b *testing.B, e *testEnv, token string) {
		query := "topic=fan"
		if token != "" {
			query += "&access_token=" + token
		}
		const streams = 100
		clients := make([]*sseClient, streams)
		for i := range clients {
			clients[i] = e.subscribe(b, query, "")
		}
		data := []byte(strings.Repeat("x", 256))
		b.ResetTimer()
		cpu := cpuTime(b)
		go func() {
			for i := 0; i < b.N; i++ {
				if _, err := e.bus.Publish(b.Context(), natsbus.Publication{Topic: "fan", Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				for i := 0; i < b.N; i++ {
					if _, ok := <-c.events; !ok {
						b.Errorf("a stream ended after %d events", i)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(streams)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		b.ReportMetric(float64(cpuTime(b)-cpu)/float64(streams*b.N), "cpu-ns/delivery")
	})
}
