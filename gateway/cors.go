package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// corsPolicy decides which other origins may use the gateway from a browser.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

func newCORSPolicy(origins []string) (corsPolicy, error) {
	p := corsPolicy{origins: make(map[string]bool)}
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
		case o == "*":
			p.any = true
		default:
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return p, fmt.Errorf("gateway: CORS origin %q: want scheme://host[:port], or *", o)
			}
			p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	return p, nil
}

// allowed reports whether a request from origin may be served.
func (p corsPolicy) allowed(origin string, r *http.Request) bool {
	if p.any || p.origins[strings.ToLower(origin)] {
		return true
	}
	// Same origin: browsers send Origin on same-origin POSTs too.
	o, err := url.Parse(origin)
	return err == nil && strings.EqualFold(o.Host, r.Host)
}

var corsAllowHeaders = "Last-Event-ID, Authorization, Content-Type, Idempotency-Key, Cache-Control"

// middleware answers preflights and adds CORS headers for allowed origins. Requests from
// other origins are refused with 403.
func (p corsPolicy) middleware(c *gin.Context) {
	if !p.apply(c.Writer, c.Request) {
		c.Abort()
		return
	}
	c.Next()
}

// apply adds CORS headers to w for r's origin, if it is allowed. It reports false when it
// answered r itself: a preflight (204), or an origin that is not allowed (403).
func (p corsPolicy) apply(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	h := w.Header()
	if !p.allowed(origin, r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(errorBody{
			Error: fmt.Sprintf("origin %q is not allowed: list it in GATEWAY_CORS_ORIGINS", truncate(origin, 100)),
			Code:  "origin_not_allowed",
		})
		return false
	}
	h.Add("Vary", "Origin")
	if p.any && !p.origins[strings.ToLower(origin)] {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}
