package configs

import (
	"net/netip"
	"time"

	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip"
)

// RTP is the media side (rtp).
type RTP struct {
	// IP to bind RTP sockets on (default: the first SIP listen host).
	IP string `yaml:"ip"`
	// PortMin/PortMax bound the RTP port range (even ports used).
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`
	// Symmetric sends RTP to where the caller's RTP comes from.
	Symmetric *bool `yaml:"symmetric"`
	// LatchBeforeSend (with symmetric) sends RTP only once the caller's RTP
	// has been heard, and only to its source, never to the SDP address.
	LatchBeforeSend bool `yaml:"latch_before_send"`
	// MediaTimeout ends a call after this long without caller RTP.
	MediaTimeout Duration `yaml:"media_timeout"`
	// ComfortNoiseDBov is the level of the noise sent while the AI is silent.
	ComfortNoiseDBov float64 `yaml:"comfort_noise_dbov"`
	// UplinkChunk is how much caller audio goes to the model at once.
	UplinkChunk Duration `yaml:"uplink_chunk"`
}

// Defaults of the rtp keys the media package leaves to its caller.
const (
	DefaultRTPPortMin = 10000
	DefaultRTPPortMax = 20000
	DefaultSymmetric  = true
)

func (c *Config) applyRTPDefaults() {
	r := &c.RTP
	if r.PortMin == 0 && r.PortMax == 0 {
		r.PortMin, r.PortMax = DefaultRTPPortMin, DefaultRTPPortMax
	}
	if r.Symmetric == nil {
		t := DefaultSymmetric
		r.Symmetric = &t
	}
	if r.MediaTimeout == 0 {
		r.MediaTimeout = Duration(sip.DefaultMediaTimeout)
	}
	if r.ComfortNoiseDBov == 0 {
		r.ComfortNoiseDBov = media.DefaultComfortNoiseDBov
	}
	if r.UplinkChunk == 0 {
		r.UplinkChunk = Duration(media.DefaultUplinkChunk)
	}
}

func (c *Config) validateRTP(bad badFunc) {
	if c.RTP.IP != "" {
		if _, err := netip.ParseAddr(c.RTP.IP); err != nil {
			bad("rtp.ip", "%q is not an IP address", c.RTP.IP)
		}
	}
	if c.RTP.PortMin < 1024 || c.RTP.PortMax > 65534 || c.RTP.PortMin > c.RTP.PortMax || c.RTP.PortMax-c.RTP.PortMin < 2 {
		bad("rtp.port_min", "port range %d-%d must lie within 1024-65534 and hold at least two even ports", c.RTP.PortMin, c.RTP.PortMax)
	}
	if d := c.RTP.MediaTimeout.D(); d < time.Second {
		bad("rtp.media_timeout", "%v is below 1s (callers' RTP is not that regular)", d)
	}
	if c.RTP.ComfortNoiseDBov > -20 || c.RTP.ComfortNoiseDBov < -96 {
		bad("rtp.comfort_noise_dbov", "%v is outside -96..-20", c.RTP.ComfortNoiseDBov)
	}
	if err := media.CheckUplinkChunk(c.RTP.UplinkChunk.D()); err != nil {
		bad("rtp.uplink_chunk", "%v", err)
	}
}
