package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"
)

// ErrBadSignature means a webhook's X-Hub-Signature-256 does not match its body.
var ErrBadSignature = errors.New("github: webhook signature does not match")

// VerifySignature checks a webhook delivery's X-Hub-Signature-256 header ("sha256=<hex>")
// against the HMAC-SHA256 of the raw body. Unlike go-github's ValidatePayload, it never accepts
// the SHA-1 header and never skips the check for an empty secret: an unsigned delivery could
// otherwise forge a merge event.
func VerifySignature(secret, body []byte, header string) error {
	if len(secret) == 0 {
		return errors.New("github: webhook secret is not configured")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return errors.New("github: webhook has no sha256 signature")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return errors.New("github: webhook signature is malformed")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// ParseEvent decodes a webhook body for its X-GitHub-Event type into go-github's event type
// (*gh.PullRequestEvent, *gh.PushEvent, ...).
func ParseEvent(eventType string, body []byte) (any, error) {
	ev, err := gh.ParseWebHook(eventType, body)
	if err != nil {
		return nil, fmt.Errorf("github: %s event: %w", eventType, err)
	}
	return ev, nil
}
