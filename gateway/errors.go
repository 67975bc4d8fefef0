package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/natsbus"
	"github.com/natsse/natsse/sseformat"
)

// Errors the handlers return, mapped to HTTP statuses in one place, writeError.
var (
	errBadRequest      = errors.New("bad request")
	errTooLarge        = errors.New("too large")
	errHeadersTooLarge = errors.New("headers too large")
	errNotFound        = errors.New("not found")
	errMethod          = errors.New("method not allowed")
	errRateLimited     = errors.New("rate limited")
)

// retryAfterSecs is the Retry-After of a 503.
const retryAfterSecs = 1

// errorBody is the one JSON shape of every error answer.
type errorBody struct {
	Error string `json:"error"` // what was wrong, for a person
	Code  string `json:"code"`  // the kind of error, for a program
}

func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, natsbus.ErrInvalidTopic):
		return http.StatusBadRequest, "invalid_topic"
	case errors.Is(err, errNoToken), errors.Is(err, auth.ErrInvalidToken):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, errBadID):
		return http.StatusBadRequest, "invalid_last_event_id"
	case errors.Is(err, sseformat.ErrInvalidType):
		return http.StatusBadRequest, "invalid_event_type"
	case errors.Is(err, sseformat.ErrInvalidData):
		return http.StatusBadRequest, "invalid_data"
	case errors.Is(err, errHeadersTooLarge):
		return http.StatusRequestHeaderFieldsTooLarge, "headers_too_large"
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, natsbus.ErrUnavailable), errors.Is(err, natsbus.ErrClosed),
		errors.Is(err, errHubClosed),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "unavailable"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

// writeError answers err as JSON with its status, and returns the error's code. Server-side
// failures are logged here; client mistakes are not (the client is told). Refused
// credentials are counted here.
func (g *Gateway) writeError(c *gin.Context, err error) (code string) {
	status, code := statusOf(err)
	if reason := authFailure(err); reason != "" {
		g.metrics.authFailures.WithLabelValues(reason).Inc()
	}
	if status >= 500 {
		g.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
	}
	switch {
	case status == http.StatusServiceUnavailable:
		c.Header("Retry-After", strconv.Itoa(retryAfterSecs))
	case errors.Is(err, auth.ErrInvalidToken):
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
	case status == http.StatusUnauthorized:
		c.Header("WWW-Authenticate", "Bearer")
	}
	c.AbortWithStatusJSON(status, errorBody{Error: clientMessage(err), Code: code})
	return code
}

// authFailure is the reason err refuses credentials, or "".
func authFailure(err error) string {
	switch {
	case errors.Is(err, auth.ErrInvalidToken):
		return authInvalidToken
	case errors.Is(err, errNoToken):
		return authNoToken
	case errors.Is(err, errForbidden):
		return authForbidden
	}
	return ""
}

// clientError is an error told to the client as is: msg, of the kind sentinel.
type clientError struct {
	kind error
	msg  string
}

func (e *clientError) Error() string { return e.msg }
func (e *clientError) Unwrap() error { return e.kind }

// wrapf returns an error of the kind sentinel whose message is the formatted text alone.
func wrapf(sentinel error, format string, args ...any) error {
	return &clientError{kind: sentinel, msg: fmt.Sprintf(format, args...)}
}

// clientMessage is err's text without the package prefixes of the layers below.
func clientMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"natsbus: ", "sseformat: ", "gateway: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}
