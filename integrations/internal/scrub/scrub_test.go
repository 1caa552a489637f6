package scrub_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"sockembot/integrations/internal/scrub"
)

func TestTransportScrubsErrorBodiesOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
		io.WriteString(w, "echo: "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &scrub.Transport{Secrets: []string{"", "tok3n"}}}
	get := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok3n")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("/fail"); got != "echo: Bearer [REDACTED]" {
		t.Errorf("error body %q", got)
	}
	// Data is passed on as is: only error bodies end up in errors.
	if got := get("/ok"); got != "echo: Bearer tok3n" {
		t.Errorf("success body %q", got)
	}
	if got := scrub.String("a tok3n b", []string{"", "tok3n"}); strings.Contains(got, "tok3n") {
		t.Errorf("String: %q", got)
	}
}
