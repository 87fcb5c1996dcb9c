package main

import (
	"context"
	"log/slog"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	g711codec "github.com/sipbridge/sipbridge/media/g711"
	"github.com/sipbridge/sipbridge/media/resample"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip"
)

// conversation is a call's failover.Conversation with the audio format it
// was built for, which it declares to the call (sip.Conversation): the media
// stream is built with that format and the conversation as its sink.
type conversation struct {
	*failover.Conversation
	format media.ModelFormat
}

// AudioFormat is the format of the audio the conversation exchanges.
func (c conversation) AudioFormat() media.ModelFormat { return c.format }

// audioFormat is the one codec → model-format decision. With
// assistant.audio_format auto (the default) or g711 a narrowband call's own
// law goes to the model as it came (PCMU → audio/pcmu or g711_ulaw, PCMA →
// audio/pcma or g711_alaw: no transcoding or resampling on the way); with
// pcm24 every call goes as PCM16 at 24 kHz. A G.722 call is always PCM16 at
// 24 kHz: G.711 would throw its wideband away. The format is chosen once,
// at the INVITE: a re-INVITE can only switch PCMU ↔ PCMA (sip answers 488
// to a change of sample rate), and the media stream then converts between
// the call's new law and the session's, which is never reconfigured. It
// returns the same format in the realtime session's terms and in the media
// stream's.
func audioFormat(assistantFormat string, codec media.Codec) (realtime.AudioFormat, media.ModelFormat) {
	if assistantFormat == configs.AudioFormatPCM24 || codec == media.CodecG722 {
		return realtime.FormatPCM24, media.ModelPCM24
	}
	if codec == media.CodecPCMA {
		return realtime.FormatPCMA, media.ModelPCMA
	}
	return realtime.FormatPCMU, media.ModelPCMU
}

// newConversation builds the AI side of one call (sip.ConversationFactory):
// it dials nothing; Run does. It reads the current generation once: the
// route picks the assistant, whose {{caller.…}} variables are filled from
// the call, and the call keeps all of it whatever a reload does later.
func (a *app) newConversation(_ context.Context, call sip.CallInfo, log *slog.Logger) (sip.Conversation, error) {
	g := a.gen.Load()
	cfg := g.cfg
	caller := configs.Caller{
		From: call.From, FromUser: call.FromUser, FromName: call.FromName,
		To: call.To, ToUser: call.ToUser, Trunk: call.Trunk, Headers: call.Headers,
	}
	profile, as := cfg.Route(caller)
	vars := cfg.CallerVars(caller)
	format, modelFormat := audioFormat(as.AudioFormat, call.Codec)
	session := as.SessionConfig(format)
	session.Instructions = configs.RenderCaller(session.Instructions, vars)
	fc := failover.Config{
		Session:  session,
		Greeting: configs.RenderCaller(as.Greeting, vars),
		// A call answered and never ACKed costs no response (sip calls
		// CallConfirmed at the ACK).
		GreetAfterConfirm:   true,
		StallNoResponse:     cfg.Failover.StallNoResponse.D(),
		StallFirstAudio:     cfg.Failover.StallFirstAudio.D(),
		StallMidAudio:       cfg.Failover.StallMidAudio.D(),
		MaxSwapsInRow:       cfg.Failover.MaxSwapsInRow,
		GiveUpAfter:         cfg.Failover.GiveUpAfter.D(),
		RotateMargin:        cfg.Failover.RotateMargin.D(),
		FillerAfter:         cfg.Failover.FillerAfter.D(),
		GiveUpTransfer:      cfg.Failover.GiveUpTransfer,
		AnsweredBeforeReady: !*a.cfg.SIP.AnswerWhenReady, // the SIP server's: not reloaded
		TransferTargets:     as.Tools.TransferTargets,
		Regions:             as.Regions,
		Hedge: failover.HedgeConfig{
			Disabled:  !*cfg.Failover.Hedge.Enabled,
			Multiple:  cfg.Failover.Hedge.Multiple,
			Floor:     cfg.Failover.Hedge.Floor.D(),
			Ceiling:   cfg.Failover.Hedge.Ceiling.D(),
			CallShare: cfg.Failover.Hedge.CallShare,
		},
	}
	fc.DTMFDisabled = !*as.DTMF.Enabled
	fc.DTMFSilent = !*as.DTMF.Respond
	filler, apology := cfg.PromptFiles(as)
	if p := g.prompts[filler]; p != nil {
		fc.FillerAudio = p.render(format)
	}
	if p := g.prompts[apology]; p != nil {
		fc.ApologyAudio = p.render(format)
	}
	var tools failover.ToolRunner
	if w := g.tools[profile]; w != nil {
		tools = w.ForCaller(vars)
	}
	assistant := profile
	if assistant == "" {
		assistant = "assistant"
	}
	log.Info("call routed", "assistant", assistant, "config_generation", g.id, "caller", cfg.LogVars(vars))
	conv := failover.NewConversation(failover.Params{
		CallID: call.CallID,
		Config: fc,
		Pool:   a.pool,
		Dialer: failover.RealtimeDialer{Logger: log},
		// The call's logger already carries call_id; failover adds it itself.
		Logger:   a.log,
		Metrics:  a.fom,
		Tools:    tools,
		Observer: call.Observer,
	})
	return conversation{Conversation: conv, format: modelFormat}, nil
}

// render converts the prompt to the session output format: PCM16LE 24 kHz,
// or G.711 at 8 kHz. Runs once per call (not on the per-frame path).
func (p *prompt) render(f realtime.AudioFormat) []byte {
	s8 := p.samples
	if p.rate == 24000 {
		if f == realtime.FormatPCM24 {
			out := make([]byte, 2*len(p.samples))
			g711codec.Int16ToPCM16LE(out, p.samples)
			return out
		}
		var d resample.Down3
		s8 = make([]int16, d.OutLen(len(p.samples)))
		n, _ := d.Process(s8, p.samples)
		s8 = s8[:n]
	}
	switch f {
	case realtime.FormatPCMU:
		out := make([]byte, len(s8))
		g711codec.EncodeUlaw(out, s8)
		return out
	case realtime.FormatPCMA:
		out := make([]byte, len(s8))
		g711codec.EncodeAlaw(out, s8)
		return out
	}
	var u resample.Up3
	s24 := make([]int16, 3*len(s8))
	n, _ := u.Process(s24, s8)
	out := make([]byte, 2*n)
	g711codec.Int16ToPCM16LE(out, s24[:n])
	return out
}
