package realtime_test

import (
	"fmt"

	"github.com/sipbridge/sipbridge/realtime"
)

func ExampleDecodeServerEvent() {
	// A preview (beta) audio delta arrives with its GA name and decoded audio.
	ev, err := realtime.DecodeServerEvent([]byte(`{"type":"response.audio.delta","item_id":"msg_1","delta":"/38A"}`), realtime.DialectPreview)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Type, ev.WireType, ev.ItemID, ev.Audio)
	// Output: response.output_audio.delta response.audio.delta msg_1 [255 127 0]
}

func ExampleEncodeSessionUpdate() {
	sc := realtime.SessionConfig{Instructions: "Be brief.", Voice: "marin", InputFormat: realtime.FormatPCMU, OutputFormat: realtime.FormatPCMU}
	b, err := realtime.EncodeSessionUpdate(sc, realtime.DialectGA, "evt_1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output: {"type":"session.update","event_id":"evt_1","session":{"type":"realtime","instructions":"Be brief.","output_modalities":["audio"],"audio":{"input":{"format":{"type":"audio/pcmu"},"transcription":null,"noise_reduction":null,"turn_detection":null},"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}},"tools":[],"max_output_tokens":"inf"}}
}

func ExampleAppendInputAudioEvent() {
	buf := make([]byte, 0, realtime.InputAudioEventLen(3))
	buf = realtime.AppendInputAudioEvent(buf[:0], []byte{0xff, 0x7f, 0x00})
	fmt.Println(string(buf))
	// Output: {"type":"input_audio_buffer.append","audio":"/38A"}
}
