package gateway

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"
)

// The page to try the gateway from a browser (Options.UI): GET / serves ui/index.html,
// which loads its script, style and icon from /ui/. Everything is in the binary.

//go:embed ui
var uiFS embed.FS

// uiCSP is the Content-Security-Policy of the page's files: scripts, styles, images and
// connections from the gateway's origin only, no inline code, no plugins, no framing.
const uiCSP = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiTypes are the content types of the page's files, by extension.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// uiFile is one file of the page, with the ETag of its content.
type uiFile struct {
	contentType string
	etag        string
	body        []byte
}

// loadUI reads the page's files from the binary.
func loadUI() map[string]uiFile {
	entries, _ := uiFS.ReadDir("ui") // embedded: it exists
	files := make(map[string]uiFile, len(entries))
	for _, e := range entries {
		body, _ := uiFS.ReadFile("ui/" + e.Name())
		sum := sha256.Sum256(body)
		files[e.Name()] = uiFile{
			contentType: uiTypes[path.Ext(e.Name())],
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			body:        body,
		}
	}
	return files
}

// routeUI serves the page at / and its files at /ui/<name>, for GET and HEAD, when
// Options.UI is on.
func (g *Gateway) routeUI(r *gin.Engine) {
	if !g.opts.UI {
		return
	}
	files := loadUI()
	serve := func(c *gin.Context, name string) {
		f, ok := files[name]
		if !ok || f.contentType == "" {
			g.notFound(c)
			return
		}
		h := c.Writer.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change only with the binary: revalidate each time, cheaply by ETag.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(f.body))
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(method, "/", func(c *gin.Context) { serve(c, "index.html") })
		r.Handle(method, "/ui/:file", func(c *gin.Context) {
			name := c.Param("file")
			if name == "index.html" { // served at / only: its links are relative to it
				name = ""
			}
			serve(c, name)
		})
	}
}
