package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

func (g *Gateway) routes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		g.log.Error("handler panic", "path", c.Request.URL.Path, "panic", err)
		c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{Error: "internal error", Code: "internal"})
	}))
	r.Use(g.limitHeaders)
	r.Use(g.cors.middleware)
	r.GET("/events", g.handleEvents)
	r.POST("/publish/*topic", g.handlePublish)
	r.GET("/presence", g.handlePresence)
	r.GET("/healthz", g.handleHealth)
	r.GET("/readyz", g.handleReady)
	r.GET("/stats", g.handleStats)
	if g.opts.ServeMetrics {
		r.GET("/metrics", gin.WrapH(g.metrics.handler()))
	}
	g.routeUI(r)
	r.NoRoute(g.notFound)
	r.NoMethod(func(c *gin.Context) {
		g.writeError(c, wrapf(errMethod, "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	return r
}

func (g *Gateway) handleHealth(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (g *Gateway) handleStats(c *gin.Context) {
	c.JSON(http.StatusOK, g.Stats())
}

// limitHeaders refuses requests whose headers exceed Options.MaxHeaderBytes.
func (g *Gateway) limitHeaders(c *gin.Context) {
	n := len(c.Request.Method) + len(c.Request.RequestURI) + len(c.Request.Proto) + 4
	for k, vs := range c.Request.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n > g.opts.MaxHeaderBytes {
		g.writeError(c, wrapf(errHeadersTooLarge, "request line and headers are %d bytes, over the limit of %d", n, g.opts.MaxHeaderBytes))
		return
	}
	c.Next()
}

// notFound answers a path the gateway does not serve.
func (g *Gateway) notFound(c *gin.Context) {
	g.writeError(c, wrapf(errNotFound, "no such endpoint: %s %s", c.Request.Method, c.Request.URL.Path))
}
