// Package sdp parses SDP offers from SIP trunks and builds the answers the
// bridge sends back (RFC 4566 syntax, RFC 3264 offer/answer model).
//
// Parsing uses github.com/pion/sdp/v3 first. pion follows the RFC 4566 line
// order strictly and rejects bodies that real trunks send (a c= line after
// t=, a missing s= line, ...), so when it fails a lenient line-oriented
// parser reads the same body; both feed one conversion, so the Offer is the
// same whichever parser succeeded. Codecs are read per m-line (pion's
// GetCodecMap merges rtpmap lines across m-lines, which is wrong for an
// offer with audio and video).
//
// The bridge speaks G.711 (PCMU/PCMA) and G.722 (RFC 3551 static payload
// types 0, 8, 9; G.722's RTP clock is 8000 although it samples at 16 kHz)
// plus RFC 4733 telephone-event. Negotiate takes a Prefs (the codecs a trunk
// allows, in its order; the encryption policy none/optional/required) and
// picks the first allowed codec in the caller's order (RFC 3264 §6.1: the
// answerer SHOULD use the offerer's preference order) unless the trunk asks
// for its own order, and echoes the caller's telephone-event payload type
// at the codec's clock (or /16000 for a G.722 caller that offers only that).
//
// SRTP is keyed by SDES (RFC 4568): RTP/SAVP[F] m-lines carry a=crypto
// lines, parsed by ParseCrypto. Negotiate accepts the caller's first line we
// can use (a suite pion/srtp implements, one key, no MKI, no session
// parameter but WSH), draws our own key from crypto/rand and returns both
// keys in Answer.SRTP; BuildAnswer writes our a=crypto line with the same
// tag. Keys print as "redacted" in %v and slog. DTLS-SRTP
// (UDP/TLS/RTP/SAVP) is not answered. An offer that cannot be answered
// gets a *NegotiationError whose Reason says why (all are 488).
// BuildAnswer writes an answer with the same number and order of m-lines as
// the offer, unsupported streams rejected with port 0 (RFC 3264 §6).
package sdp
