package realtime

import (
	"net/url"
	"strings"
	"time"
)

// The wire vocabulary other packages act on: error codes and types of
// `error` events and failed responses (protocol doc §3.7, §6.1), which hosts
// are Azure, and the providers' session limits. Defined here once; failover
// classifies with them, the simulator speaks them, configs defaults with them.

// Error codes (ErrorDetail.Code).
const (
	CodeRateLimitExceeded          = "rate_limit_exceeded"
	CodeInferenceRateLimitExceeded = "inference_rate_limit_exceeded"
	CodeInsufficientQuota          = "insufficient_quota"
	CodeInvalidAPIKey              = "invalid_api_key"
	CodeSessionExpired             = "session_expired"
	CodeActiveResponse             = "conversation_already_has_active_response"
	CodeCancelNotActive            = "response_cancel_not_active"
	CodeCommitEmpty                = "input_audio_buffer_commit_empty"
	CodeBetaShapeDisabled          = "beta_api_shape_disabled"
)

// Error types (ErrorDetail.Type).
const (
	TypeServerError         = "server_error"
	TypeInvalidRequestError = "invalid_request_error"
	TypeAuthenticationError = "authentication_error"
	TypePermissionError     = "permission_error"
	TypeInsufficientQuota   = "insufficient_quota"
)

// IsAuthError reports whether d is a credentials or quota error: retrying
// the same region cannot succeed until an operator acts.
func IsAuthError(d *ErrorDetail) bool {
	if d == nil {
		return false
	}
	switch d.Code {
	case CodeInsufficientQuota, CodeInvalidAPIKey:
		return true
	}
	switch d.Type {
	case TypeAuthenticationError, TypePermissionError, TypeInsufficientQuota:
		return true
	}
	return false
}

// azureHostSuffixes are the Azure OpenAI / AI Foundry endpoints. They take
// the key in an "api-key" header instead of a Bearer token, and never get the
// OpenAI-Beta header (protocol doc §1.2: no subprotocol or beta marker on Azure).
var azureHostSuffixes = []string{
	".openai.azure.com",
	".cognitiveservices.azure.com",
	".services.ai.azure.com",
}

// IsAzureHost reports whether host (no port) is an Azure OpenAI endpoint.
func IsAzureHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, s := range azureHostSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// Session limits: the hard duration after which the provider ends a
// session with session_expired (protocol doc §4).
const (
	SessionLimitAzure  = 30 * time.Minute
	SessionLimitOpenAI = 60 * time.Minute
)

// DefaultSessionLimit is the provider's session limit for a realtime URL:
// SessionLimitAzure for Azure hosts, SessionLimitOpenAI otherwise.
func DefaultSessionLimit(rawURL string) time.Duration {
	if u, err := url.Parse(rawURL); err == nil && IsAzureHost(u.Hostname()) {
		return SessionLimitAzure
	}
	return SessionLimitOpenAI
}

// DefaultDialTimeout bounds connect + handshake when DialConfig.DialTimeout
// is 0 (configs: regions[].dial_timeout).
const DefaultDialTimeout = 5 * time.Second
