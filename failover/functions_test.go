package failover

import (
	"testing"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

func TestEndCallWaitsForGoodbye(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "bye", "Goodbye, have a nice day.", 1200)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_end", Name: "end_call", Arguments: `{}`}})
	require.Len(t, s1.items(), 1)
	require.Equal(t, realtime.Item{ID: s1.items()[0].ID, Type: "function_call_output", CallID: "call_end", Output: `{"ok":true}`}, s1.items()[0])
	h.finishSpeech(s1, "r1", "bye", "Goodbye, have a nice day.")
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	require.Empty(t, s1.responses(), "no response after end_call")
	h.player.setPlayed("bye", 600)
	h.conv.PlayoutDone("bye", 600) // the queue drained early: not the end yet
	h.waitActor(func(*Conversation) bool { return true }, "sync")
	require.Empty(t, h.controlsOf(ControlEndCall), "the goodbye is still playing")
	h.player.setPlayed("bye", 1200)
	h.conv.PlayoutDone("bye", 1200)
	ctl := h.waitControl(ControlEndCall)
	require.Equal(t, ControlEndCall, ctl.Kind)
	require.Len(t, h.controlsOf(ControlEndCall), 1)
}

func TestTransferCall(t *testing.T) {
	tests := []struct {
		name       string
		args       string
		targets    []string
		wantTarget string
		wantRefuse string
	}{
		{name: "default target", args: `{}`, targets: []string{"sip:desk@pbx", "sip:nurse@pbx"}, wantTarget: "sip:desk@pbx"},
		{name: "named target", args: `{"target":"sip:nurse@pbx"}`, targets: []string{"sip:desk@pbx", "sip:nurse@pbx"}, wantTarget: "sip:nurse@pbx"},
		{name: "target not allowed", args: `{"target":"sip:ceo@pbx"}`, targets: []string{"sip:desk@pbx"}, wantRefuse: `target \"sip:ceo@pbx\" is not allowed`},
		{name: "no targets", args: `{}`, wantRefuse: "transfers are not available on this line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{TransferTargets: tc.targets}, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"), realtime.ServerEvent{Type: realtime.EvFunctionCallArgumentsDone, ResponseID: "r1",
				ItemID: "fc1", CallID: "call_t", Name: "transfer_call", Arguments: tc.args})
			h.push(s1, done("r1", realtime.StatusCompleted, nil))
			if tc.wantRefuse != "" {
				require.Len(t, s1.items(), 1)
				require.Contains(t, s1.items()[0].Output, tc.wantRefuse)
				require.Len(t, s1.responses(), 1)
				require.Empty(t, h.controlsOf(ControlTransfer))
				return
			}
			ctl := h.waitControl(ControlTransfer)
			require.Equal(t, Control{Kind: ControlTransfer, Target: tc.wantTarget, CallID: "call_t"}, ctl)
			require.Empty(t, s1.items(), "the output waits for the transfer's result")
			h.conv.TransferResult("call_t", false, "486 Busy Here")
			h.pump()
			require.True(t, len(s1.responses()) == 1)
			require.Len(t, s1.items(), 1)
			require.Equal(t, "call_t", s1.items()[0].CallID)
			require.JSONEq(t, `{"ok":false,"error":"486 Busy Here"}`, s1.items()[0].Output)
		})
	}
}

func TestTransferSurvivesSwap(t *testing.T) {
	h, s1 := startActive(t, Config{TransferTargets: []string{"sip:desk@pbx"}}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_t", Name: "transfer_call", Arguments: `{}`}})
	h.waitControl(ControlTransfer)
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	s1.end(&realtime.CloseError{Code: 1011})
	s2 := h.session(2)
	h.waitActive(s2)
	for _, it := range s2.items() {
		require.NotEqual(t, "function_call", it.Type, "the call without output is not replayed")
	}
	h.conv.TransferResult("call_t", true, "transferred")
	h.pump()
	require.True(t, len(s2.responses()) == 1)
	items := s2.items()
	require.Equal(t, realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_t", Name: "transfer_call", Arguments: `{}`}, items[len(items)-2])
	require.Equal(t, "function_call_output", items[len(items)-1].Type)
	require.JSONEq(t, `{"ok":true,"detail":"transferred"}`, items[len(items)-1].Output)
}

// TestTransferTarget: the model may only transfer to a configured target;
// no target asked for means the first one.
func TestTransferTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []string
		asked   string
		want    string
		wantErr string
	}{
		{"no transfers on this line", nil, "", "", "not available"},
		{"default target", []string{"sip:desk@pbx", "sip:sales@pbx"}, "", "sip:desk@pbx", ""},
		{"allowed target", []string{"sip:desk@pbx", "sip:sales@pbx"}, "sip:sales@pbx", "sip:sales@pbx", ""},
		{"not allowed", []string{"sip:desk@pbx"}, "sip:evil@elsewhere", "", `"sip:evil@elsewhere" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConversation(Params{Config: Config{TransferTargets: tc.targets}})
			got, err := c.transferTarget(tc.asked)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
