package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// orderResponder is the scripted model: after the caller's first turn it
// calls lookup_order; once the tool's output is in the conversation it
// answers by reading it out (spoken: the region's voice tone).
func orderResponder(tc sim.TurnContext) sim.Reply {
	for _, it := range tc.Items {
		if it.Type == "function_call_output" {
			return sim.Reply{Text: "Here is what I found: " + it.Output}
		}
	}
	if tc.Turn >= 1 {
		return sim.Reply{FunctionCall: &sim.FunctionCall{Name: "lookup_order", Arguments: `{"order_id":"A-17"}`}}
	}
	return sim.DefaultResponder(tc)
}

type webhookHit struct {
	body map[string]any
	auth string
}

// TestWebhookToolThroughTheBinary: the model calls a webhook tool; the
// bridge POSTs the call to the HTTP endpoint, hands the answer (or, on
// timeout, an error object) to the model as the function_call_output
// followed by response.create, and the caller hears the model's answer.
func TestWebhookToolThroughTheBinary(t *testing.T) {
	t.Parallel()
	const authEnv = "SIPBRIDGE_TEST_WEBHOOK_AUTH"
	cases := []struct {
		name       string
		timeout    string
		slow       bool
		wantOutput func(t *testing.T, out string)
	}{
		{name: "answer", timeout: "3s", wantOutput: func(t *testing.T, out string) {
			require.JSONEq(t, `{"order_id":"A-17","status":"shipped","eta":"Tuesday"}`, out)
		}},
		{name: "timeout", timeout: "300ms", slow: true, wantOutput: func(t *testing.T, out string) {
			require.JSONEq(t, `{"ok":false,"error":"the lookup_order service did not answer in time"}`, out)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hits := make(chan webhookHit, 4)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				var body map[string]any
				_ = json.Unmarshal(raw, &body)
				hits <- webhookHit{body: body, auth: r.Header.Get("Authorization")}
				if tc.slow {
					<-r.Context().Done() // the bridge gives up first
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"order_id":"A-17","status":"shipped","eta":"Tuesday"}`)
			}))
			defer srv.Close()

			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Responder: orderResponder})
			extra := fmt.Sprintf(`assistant:
  tools:
    webhooks:
      - name: lookup_order
        description: Look up the status of an order by its number.
        url: %s/orders/lookup
        timeout: %s
        parameters:
          type: object
          properties:
            order_id: {type: string, description: "The order number, e.g. A-17"}
          required: [order_id]
        headers_env:
          Authorization: %s
`, srv.URL, tc.timeout, authEnv)
			br := startBridgeEnv(t, extra, []string{authEnv + "=Bearer test-token-9"}, east)
			ph := newPhone(t, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
			require.NoError(t, err)

			call.Speak(callerHz, 1200*time.Millisecond, -20)
			var hit webhookHit
			select {
			case hit = <-hits:
			case <-time.After(30 * time.Second):
				t.Fatalf("the webhook was not called\n%s", br.Logs())
			}
			require.Equal(t, "lookup_order", hit.body["name"])
			require.Equal(t, call.CallID(), hit.body["sip_call_id"])
			require.Equal(t, map[string]any{"order_id": "A-17"}, hit.body["arguments"])
			require.NotEmpty(t, hit.body["call_id"])
			require.Equal(t, "Bearer test-token-9", hit.auth)
			caller, _ := hit.body["caller"].(map[string]any)
			require.Equal(t, "bot", caller["to_user"], "the webhook gets the caller context")

			// The caller hears the answer the model gave after the tool.
			_, err = call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 30*time.Second)
			require.NoError(t, err, "the caller must hear the answer given after the tool call")

			rec, ok := lastSession(east)
			require.True(t, ok)
			require.Contains(t, string(rec.SessionUpdates[0]), `"name":"lookup_order"`, "the tool is declared in session.update")
			var output, fnCallID string
			for _, it := range rec.Items {
				if it.Type == "function_call" {
					fnCallID = it.CallID
				}
				if it.Type == "function_call_output" {
					output = it.Output
					require.Equal(t, fnCallID, it.CallID)
				}
			}
			require.Equal(t, fnCallID, hit.body["call_id"], "the webhook gets the model's function call id")
			tc.wantOutput(t, output)

			// function_call_output, then response.create; that response
			// read the output out.
			outputAt, createAt := -1, -1
			for i, ev := range rec.Events {
				if ev.Type == "conversation.item.create" && strings.Contains(string(ev.Raw), `"function_call_output"`) {
					outputAt = i
				}
				if ev.Type == "response.create" && outputAt >= 0 && createAt < 0 {
					createAt = i
				}
			}
			require.GreaterOrEqual(t, outputAt, 0, "function_call_output sent")
			require.Greater(t, createAt, outputAt, "response.create follows the output")
			var answered bool
			for _, r := range rec.Responses {
				if r.Trigger == sim.TriggerClient && strings.HasPrefix(r.Text, "Here is what I found: ") {
					answered = r.Status == "completed" || r.Status == "in_progress" // still speaking
				}
			}
			require.True(t, answered, "the model answered from the tool's output: %+v", rec.Responses)
			require.NotContains(t, br.Logs(), "test-token-9", "header values are never logged")
			require.NoError(t, call.Hangup(ctx))
		})
	}
}
