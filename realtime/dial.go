package realtime

// PLACEHOLDER: the realtime owner replaces this file with the real client.

import (
	"context"
	"errors"
	"log/slog"
)

// Dial opens a session: WebSocket upgrade with auth, waits for
// session.created, sends session.update built from sc, waits for
// session.updated. The returned Session is ready for audio.
func Dial(ctx context.Context, dc DialConfig, sc SessionConfig, log *slog.Logger) (Session, error) {
	return nil, errors.New("realtime: not built yet")
}
