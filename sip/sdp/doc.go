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
// The bridge speaks G.711 only (PCMU/PCMA, RFC 3551 static payload types 0
// and 8) plus RFC 4733 telephone-event. Negotiate picks the first G.711 codec
// in the caller's order (RFC 3264 §6.1: the answerer SHOULD use the offerer's
// preference order) and echoes the caller's telephone-event payload type.
// BuildAnswer writes an answer with the same number and order of m-lines as
// the offer, unsupported streams rejected with port 0 (RFC 3264 §6).
package sdp
