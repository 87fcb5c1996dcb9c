package realtime

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DialectForURL says which wire dialect a realtime URL speaks (protocol doc
// §0, §1.2 and §9):
//   - …/openai/realtime?api-version=…-preview is the Azure preview (beta)
//     shape;
//   - …/v1/realtime (OpenAI) and …/openai/v1/realtime (Azure GA) are GA;
//   - anything else is treated as GA, the only interface OpenAI still serves.
//
// The path is matched by suffix so that a gateway prefix (for example an API
// management route in front of Azure) keeps its dialect. It fails for URLs
// that do not parse, have no host, or are not ws:// or wss://, and for the
// legacy /openai/realtime path without a …-preview api-version: a dated
// non-preview version there speaks an unverified shape (§9), and no
// version at all is refused by Azure.
func DialectForURL(raw string) (Dialect, error) {
	u, err := parseWSURL(raw)
	if err != nil {
		return DialectGA, err
	}
	p := strings.TrimRight(u.Path, "/")
	if strings.HasSuffix(p, "/openai/realtime") {
		v := u.Query().Get("api-version")
		if !strings.HasSuffix(v, "-preview") {
			return DialectGA, fmt.Errorf("realtime: url %q: the legacy path /openai/realtime takes only a …-preview api-version (got %q); "+
				"use /openai/v1/realtime?model=DEPLOYMENT for GA", redactURL(raw), v)
		}
		return DialectPreview, nil
	}
	return DialectGA, nil
}

// ResolveAuth turns AuthAuto into a concrete style: the "api-key" header for
// Azure hosts and "Authorization: Bearer" for everything else (protocol doc
// §1.1, §1.2). Explicit styles are returned unchanged. An unparsable URL
// resolves to Bearer; Dial rejects such URLs before using the result.
func ResolveAuth(raw string, a AuthStyle) AuthStyle {
	if a != AuthAuto {
		return a
	}
	u, err := url.Parse(raw)
	if err != nil {
		return AuthBearer
	}
	if IsAzureHost(u.Hostname()) {
		return AuthAPIKey
	}
	return AuthBearer
}

func parseWSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may carry an api-key query value.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("realtime: parse url %q: %w", redactURL(raw), err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("realtime: url %q: scheme %q is not ws or wss", redactURL(raw), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("realtime: url %q: no host", redactURL(raw))
	}
	return u, nil
}

// dialHeaders builds the upgrade request headers. No subprotocols are used:
// they exist only for browsers that cannot set headers (protocol doc §1.1).
// OpenAI-Beta goes only to a preview endpoint that is not Azure: GA rejects it
// with beta_api_shape_disabled, and Azure selects the shape by api-version.
func dialHeaders(dc DialConfig, d Dialect) (http.Header, error) {
	u, err := parseWSURL(dc.URL)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if dc.APIKey != "" {
		switch ResolveAuth(dc.URL, dc.Auth) {
		case AuthAPIKey:
			h.Set("api-key", dc.APIKey)
		default:
			h.Set("Authorization", "Bearer "+dc.APIKey)
		}
	}
	if d == DialectPreview && !IsAzureHost(u.Hostname()) {
		h.Set("OpenAI-Beta", "realtime=v1")
	}
	return h, nil
}

// secretQueryKeys are query parameters that may carry a credential (Azure
// accepts ?api-key=, §1.2). Their values never reach logs or errors.
var secretQueryKeys = []string{"api-key", "api_key", "key", "token", "access_token", "sig"}

// redactURL returns raw with credential query values and any userinfo
// replaced, for logs and error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Keep only what cannot be a query value.
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i] + "?REDACTED"
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			for _, s := range secretQueryKeys {
				if strings.EqualFold(k, s) {
					q[k] = []string{"REDACTED"}
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
