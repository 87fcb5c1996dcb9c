#!/bin/sh
# Regenerates the bundled prompts: espeak-ng speaks the text, sox converts it
# to what sipbridge's prompt loader takes (mono 16-bit PCM WAV at 8000 Hz).
# Needs espeak-ng and sox (`make deps` installs both). Run from anywhere:
#   sh prompts/generate.sh
set -eu
cd "$(dirname "$0")"
say() { # FILE TEXT
	tmp=$(mktemp --suffix=.wav)
	espeak-ng -v en-us -s 160 -w "$tmp" "$2"
	# -D: no dither, so the output is byte-for-byte reproducible; norm -3 peaks at -3 dBFS.
	sox -D "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$1" norm -3
	rm -f "$tmp"
}
say one-moment.wav "One moment, please."
say sorry-transferring.wav "I'm sorry, I'm having trouble right now. Let me transfer you to a colleague."
say question.wav "Hello. What are your opening hours today?"
# The binary embeds the question for `sipbridge call` (Go embeds only files
# under the package's directory; a test keeps the copy identical).
cp question.wav ../cmd/sipbridge/question.wav
