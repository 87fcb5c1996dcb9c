package sim

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"github.com/zaf/g711"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fastConfig keeps tests quick: short model latency, audio 50× real time.
func fastConfig(region string) Config {
	return Config{Region: region, APIKey: "sk-test-key-123456", VoiceHz: 700, ResponseDelay: 20 * time.Millisecond, Speedup: 50}
}

func startSim(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := New(cfg)
	url, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, url
}

// client is a raw coder/websocket client: no dependency on package realtime's
// codec, so the simulator is checked against the wire, not against itself.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

const gaPath = "/v1/realtime?model=gpt-realtime"
const previewPath = "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-realtime-preview"

func dial(t *testing.T, url string, hdr http.Header) *client {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{"Authorization": {"Bearer sk-test-key-123456"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: hdr.Clone()}
	//lint:ignore SA1008 the test tables spell the header as it goes on the wire
	if p := hdr["Sec-WebSocket-Protocol"]; len(p) > 0 {
		delete(opts.HTTPHeader, "Sec-WebSocket-Protocol")
		for _, x := range strings.Split(p[0], ",") {
			opts.Subprotocols = append(opts.Subprotocols, strings.TrimSpace(x))
		}
	}
	conn, _, err := websocket.Dial(ctx, url, opts)
	require.NoError(t, err)
	conn.SetReadLimit(-1)
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c
}

// dialReady dials and consumes session.created (+ conversation.created).
func dialReady(t *testing.T, url, path string) (*client, map[string]any) {
	c := dial(t, url+path, nil)
	created := c.expect("session.created")
	if path == previewPath {
		c.expect("conversation.created")
	}
	return c, created
}

func (c *client) send(ev any) {
	c.t.Helper()
	b, err := json.Marshal(ev)
	require.NoError(c.t, err)
	c.sendRaw(string(b))
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(c.t, c.conn.Write(ctx, websocket.MessageText, []byte(s)))
}

// next reads one server event. The generous timeout only bounds a broken
// test; no assertion depends on timing.
func (c *client) next() map[string]any {
	c.t.Helper()
	ev, err := c.read()
	require.NoError(c.t, err)
	return ev
}

func (c *client) read() (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// expect reads the next event and requires its type.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	ev := c.next()
	require.Equal(c.t, typ, ev["type"], "event: %v", ev)
	return ev
}

// until reads events up to and including the first of type typ.
func (c *client) until(typ string) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	for {
		ev := c.next()
		out = append(out, ev)
		if ev["type"] == typ {
			return out
		}
	}
}

// expectError reads the next event and requires an error with this code.
func (c *client) expectError(code string) map[string]any {
	c.t.Helper()
	ev := c.expect("error")
	e := ev["error"].(map[string]any)
	var want any = code
	if code == "" {
		want = nil // the API sends code null for some errors
	}
	require.Equal(c.t, want, e["code"], "error: %v", e)
	return e
}

// probe proves nothing else is queued: clear is always answered with
// cleared, so anything that arrives before it was pending.
func (c *client) probe() {
	c.t.Helper()
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	c.expect("input_audio_buffer.cleared")
}

func (c *client) update(session map[string]any) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"type": "session.update", "event_id": "evt_update", "session": session})
	return c.expect("session.updated")
}

// appendAudio sends pcm in 20 ms frames of the format, as a telephony
// bridge does, but as fast as the socket takes them.
func (c *client) appendAudio(f string, pcm []int16) {
	c.t.Helper()
	frame := 160
	if f == "pcm24" {
		frame = 480
	}
	for i := 0; i < len(pcm); i += frame {
		chunk := pcm[i:min(i+frame, len(pcm))]
		c.send(map[string]any{"type": "input_audio_buffer.append", "audio": base64.StdEncoding.EncodeToString(encodeTest(f, chunk))})
	}
}

func encodeTest(f string, pcm []int16) []byte {
	switch f {
	case "pcmu":
		out := make([]byte, len(pcm))
		for i, s := range pcm {
			out[i] = g711.EncodeUlawFrame(s)
		}
		return out
	case "pcma":
		out := make([]byte, len(pcm))
		for i, s := range pcm {
			out[i] = g711.EncodeAlawFrame(s)
		}
		return out
	}
	out := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
	}
	return out
}

func decodeTest(f string, b []byte) []int16 {
	out := make([]int16, 0, len(b))
	switch f {
	case "pcmu":
		for _, c := range b {
			out = append(out, g711.DecodeUlawFrame(c))
		}
	case "pcma":
		for _, c := range b {
			out = append(out, g711.DecodeAlawFrame(c))
		}
	default:
		for i := 0; i+1 < len(b); i += 2 {
			out = append(out, int16(binary.LittleEndian.Uint16(b[i:])))
		}
	}
	return out
}

// tone is a sine at hz whose RMS is dbov (0 dBov = RMS of full scale).
func tone(rate int, hz, dbov float64, ms int) []int16 {
	amp := 32768 * math.Pow(10, dbov/20) * math.Sqrt2
	n := rate * ms / 1000
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return out
}

// noise is uniform white noise at dbov RMS.
func noise(rate int, dbov float64, ms int) []int16 {
	rng := rand.New(rand.NewPCG(1, 2))
	amp := 32768 * math.Pow(10, dbov/20) * math.Sqrt(3) // uniform RMS = amp/√3
	out := make([]int16, rate*ms/1000)
	for i := range out {
		out[i] = int16(amp * (2*rng.Float64() - 1))
	}
	return out
}

func silence(rate, ms int) []int16 { return make([]int16, rate*ms/1000) }

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func goertzelPower(pcm []int16, rate int, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/float64(rate))
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

// types lists event types with runs of the same delta type folded into one.
func types(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		t := ev["type"].(string)
		if len(out) > 0 && out[len(out)-1] == t {
			continue
		}
		out = append(out, t)
	}
	return out
}

// audioOf concatenates the decoded audio deltas of evs.
func audioOf(t *testing.T, evs []map[string]any, deltaType string) []byte {
	var out []byte
	for _, ev := range evs {
		if ev["type"] == deltaType {
			b, err := base64.StdEncoding.DecodeString(ev["delta"].(string))
			require.NoError(t, err)
			out = append(out, b...)
		}
	}
	return out
}

func ofType(evs []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, ev := range evs {
		if ev["type"] == typ {
			out = append(out, ev)
		}
	}
	return out
}

// vadSession configures a GA μ-law session with server VAD.
func vadSession(extraTD map[string]any) map[string]any {
	td := map[string]any{"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
	for k, v := range extraTD {
		td[k] = v
	}
	return map[string]any{
		"type": "realtime",
		"audio": map[string]any{
			"input":  map[string]any{"format": map[string]any{"type": "audio/pcmu"}, "turn_detection": td},
			"output": map[string]any{"format": map[string]any{"type": "audio/pcmu"}, "voice": "marin"},
		},
	}
}

// noVADSession configures a GA μ-law session with VAD off.
func noVADSession() map[string]any {
	return map[string]any{
		"type": "realtime",
		"audio": map[string]any{
			"input":  map[string]any{"format": map[string]any{"type": "audio/pcmu"}, "turn_detection": nil},
			"output": map[string]any{"format": map[string]any{"type": "audio/pcmu"}},
		},
	}
}

// speak sends a −20 dBov tone turn framed by silence.
func (c *client) speak(speechMs int) {
	c.appendAudio("pcmu", concat(silence(8000, 200), tone(8000, 300, -20, speechMs), silence(8000, 700)))
}

func sessionByID(t *testing.T, s *Server, id string) SessionRecord {
	t.Helper()
	for _, r := range s.Sessions() {
		if r.ID == id {
			return r
		}
	}
	require.FailNow(t, "no session "+id)
	return SessionRecord{}
}

func sessID(created map[string]any) string {
	return created["session"].(map[string]any)["id"].(string)
}
