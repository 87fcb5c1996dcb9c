package configs

import (
	"fmt"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// Records is the records section: one JSON line per call (sip/records).
// Path empty: no records are written.
type Records struct {
	// Path is the file lines are appended to (records.path).
	Path string `yaml:"path"`
	// Transcripts keeps both sides' transcript in each record.
	Transcripts bool `yaml:"transcripts"`
	// MaxBytes rotates the file before it would exceed this size
	// (records.DefaultMaxBytes when 0; -1: never by size).
	MaxBytes int64 `yaml:"max_bytes"`
	// RotateDaily also rotates when the UTC day changes.
	RotateDaily bool `yaml:"rotate_daily"`
	// Sync is the fsync policy: batch (default) or none.
	Sync string `yaml:"sync"`
	// RedactKeepDigits, when > 0, masks caller and callee numbers (From,
	// To, transfer targets, transcript text) but their last N digits
	// (records.MaskDigits, the writer's redaction hook).
	RedactKeepDigits int `yaml:"redact_keep_digits"`
}

// WriterConfig is the records writer's configuration (zero Path: off).
func (r Records) WriterConfig() records.Config {
	c := records.Config{Path: r.Path, Transcripts: r.Transcripts, MaxBytes: r.MaxBytes, Daily: r.RotateDaily,
		Sync: records.SyncPolicy(r.Sync)}
	if r.RedactKeepDigits > 0 {
		c.Redact = records.MaskDigits(r.RedactKeepDigits)
	}
	return c
}

func (c *Config) validateRecords(bad badFunc) {
	r := c.Records
	if r.Path == "" {
		if r.Transcripts {
			bad("records.transcripts", "set, but records.path is empty: no records are written")
		}
		return
	}
	if err := r.WriterConfig().Validate(); err != nil {
		bad("records", "%v", err)
	}
	if r.RedactKeepDigits < 0 {
		bad("records.redact_keep_digits", "%d is negative", r.RedactKeepDigits)
	}
}

// RegionPrices are regions[].prices: currency units per million tokens of
// each kind (any currency; records and the report carry it as is).
type RegionPrices struct {
	InputText   float64 `yaml:"input_text"`
	InputAudio  float64 `yaml:"input_audio"`
	InputImage  float64 `yaml:"input_image"`
	CachedText  float64 `yaml:"cached_text"`
	CachedAudio float64 `yaml:"cached_audio"`
	CachedImage float64 `yaml:"cached_image"`
	OutputText  float64 `yaml:"output_text"`
	OutputAudio float64 `yaml:"output_audio"`
	PerMinute   float64 `yaml:"per_minute"`
}

// Prices converts to the realtime package's prices.
func (p *RegionPrices) Prices() realtime.Prices {
	if p == nil {
		return realtime.Prices{}
	}
	return realtime.Prices(*p)
}

func (p *RegionPrices) validate(key string, bad badFunc) {
	if p == nil {
		return
	}
	for name, v := range map[string]float64{"input_text": p.InputText, "input_audio": p.InputAudio, "input_image": p.InputImage,
		"cached_text": p.CachedText, "cached_audio": p.CachedAudio, "cached_image": p.CachedImage,
		"output_text": p.OutputText, "output_audio": p.OutputAudio, "per_minute": p.PerMinute} {
		if v < 0 {
			bad(fmt.Sprintf("%s.prices.%s", key, name), "%v is negative", v)
		}
	}
}
