package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/natsse/natsse/auth"
)

// BenchmarkHTTPPublish measures durable HTTP publishes from parallel clients, with auth off
// and on (the same token on every publish, as a service sends it).
func BenchmarkHTTPPublish(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, withAuth := range []bool{false, true} {
		name := "auth=off"
		if withAuth {
			name = "auth=on"
		}
		b.Run(name, func(b *testing.B) {
			var header string
			e := newTestEnv(b, func(o *Options) {
				o.PublishRate = 0
				if withAuth {
					v, err := auth.New(auth.Options{Secret: secret})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { v.Close() })
					o.Auth = v
				}
			}, nil)
			if withAuth {
				tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "svc", "exp": time.Now().Add(time.Hour).Unix(),
					"natsse": map[string]any{"publish": []string{"bench.>"}}}).SignedString(secret)
				header = "Bearer " + tok
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/publish/bench.x", strings.NewReader("payload"))
					if header != "" {
						req.Header.Set("Authorization", header)
					}
					resp, err := client.Do(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Errorf("publish: %v %v", resp, err)
						return
					}
					resp.Body.Close()
				}
			})
		})
	}
}
