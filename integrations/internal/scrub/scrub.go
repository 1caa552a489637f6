// Package scrub keeps credentials out of what the adapters pass on. A server that echoes the
// request (a proxy's error page quoting the Authorization header, a WAF, a misconfigured
// gateway) would otherwise put a token into an error, and from there into logs, Slack failure
// reports and evidence. The adapters scrub error responses before their client library reads
// them, so no error built from a response, however deeply wrapped, holds a secret.
package scrub

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// Redacted replaces a secret.
const Redacted = "[REDACTED]"

// maxBody bounds how much of an error response is read (and kept) to be scrubbed.
const maxBody = 1 << 20

// String returns s with every non-empty secret replaced.
func String(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// Transport scrubs Secrets from the body of every response with a status of 300 or more.
type Transport struct {
	Base    http.RoundTripper // nil: http.DefaultTransport
	Secrets []string
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || len(t.Secrets) == 0 {
		return resp, err
	}
	// A body cut short by a broken connection is passed on as far as it was read, scrubbed.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	for _, secret := range t.Secrets {
		if secret != "" {
			body = bytes.ReplaceAll(body, []byte(secret), []byte(Redacted))
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}
