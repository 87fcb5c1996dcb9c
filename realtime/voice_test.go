package realtime

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateVoice(t *testing.T) {
	tests := []struct {
		d     Dialect
		voice string
		ok    bool
	}{
		{DialectGA, "", true},
		{DialectGA, "marin", true},
		{DialectGA, "cedar", true},
		{DialectGA, "alloy", true},
		{DialectGA, "bob", false},
		{DialectGA, "Marin", false}, // the API's enum is case-sensitive
		{DialectPreview, "", true},
		{DialectPreview, "verse", true},
		{DialectPreview, "marin", false},
		{DialectPreview, "cedar", false},
	}
	for _, tc := range tests {
		t.Run(tc.d.String()+"/"+tc.voice, func(t *testing.T) {
			err := ValidateVoice(tc.d, tc.voice)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var ve *VoiceError
			require.True(t, errors.As(err, &ve))
			require.Equal(t, tc.voice, ve.Voice)
			require.Equal(t, Voices(tc.d), ve.Supported)
			require.Contains(t, err.Error(), `voice "`+tc.voice+`" is not accepted by the `+tc.d.String()+` dialect`)
		})
	}
	require.NotContains(t, Voices(DialectPreview), "marin")
	require.Len(t, Voices(DialectGA), len(Voices(DialectPreview))+2)
}

func TestResolveVoice(t *testing.T) {
	tests := []struct {
		name          string
		d             Dialect
		session, over string
		want          string
		wantErr       bool
	}{
		{"GA keeps marin", DialectGA, "marin", "", "marin", false},
		{"preview maps marin", DialectPreview, "marin", "", "coral", false},
		{"preview maps cedar", DialectPreview, "cedar", "", "ash", false},
		{"preview keeps shared voice", DialectPreview, "sage", "", "sage", false},
		{"unset stays server default", DialectPreview, "", "", "", false},
		{"override wins", DialectPreview, "marin", "verse", "verse", false},
		{"override on GA", DialectGA, "marin", "cedar", "cedar", false},
		{"override is not mapped", DialectPreview, "alloy", "marin", "marin", true},
		{"unknown session voice", DialectGA, "bob", "", "bob", true},
		{"unknown override", DialectGA, "marin", "bob", "bob", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveVoice(tc.d, tc.session, tc.over)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantErr, err != nil, "err %v", err)
		})
	}
}
