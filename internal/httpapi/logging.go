package httpapi

import (
	"context"
	"log/slog"
)

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestLogHandler wraps h so that a record logged with a request's context
// (logger.InfoContext(ctx, …) and friends, from any package) carries that
// request's request_id, so every line of a request can be found by it. The
// process's one logger is built on it; records without a request context
// pass through unchanged.
func RequestLogHandler(h slog.Handler) slog.Handler { return requestLogHandler{Handler: h} }

type requestLogHandler struct {
	slog.Handler
	hasID bool // a With already added request_id: never add it twice
}

func (h requestLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" && !h.hasID {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	has := h.hasID
	for _, a := range as {
		has = has || a.Key == "request_id"
	}
	return requestLogHandler{h.Handler.WithAttrs(as), has}
}

func (h requestLogHandler) WithGroup(name string) slog.Handler {
	return requestLogHandler{h.Handler.WithGroup(name), h.hasID}
}
