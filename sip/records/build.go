package records

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// maxMessageBytes caps an error message kept in a record: provider
// messages are a sentence or two; anything longer is cut.
const maxMessageBytes = 512

// ResponseFromDone is the Response entry for one response.done event: id,
// status, reason and error from ev.Response, with the usage decoded by
// realtime.DecodeUsage. The caller adds the timings (Created, FirstAudioMs,
// AudioMs, PlayedMs, LostRace) and then calls Account with the region's
// prices. A response.done without a response object gives status
// "failed" with error type "no_response".
func ResponseFromDone(region, sessionID string, purpose realtime.Purpose, ev realtime.ServerEvent, usage realtime.Usage, done time.Time) Response {
	r := Response{Region: region, SessionID: sessionID, Purpose: purpose, Done: done, Usage: usage}
	info := ev.Response
	if info == nil {
		r.Status, r.ErrorType = realtime.StatusFailed, "no_response"
		return r
	}
	r.ResponseID, r.Status = info.ID, info.Status
	if d := info.StatusDetails; d != nil {
		r.Reason = d.Reason
		if e := d.Error; e != nil {
			r.ErrorType, r.ErrorCode, r.ErrorMessage = e.Type, e.Code, truncateUTF8(e.Message, maxMessageBytes)
		}
	}
	if r.Status == "" {
		r.Status = realtime.StatusFailed
		r.ErrorType = "no_status"
	}
	return r
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a multi-byte rune
		n--
	}
	return s[:n] + "…"
}
