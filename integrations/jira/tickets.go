package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	gojira "github.com/andygrunwald/go-jira"

	"sockembot/compliance"
)

// searchFields is all a verdict needs; asking for less keeps Cloud pages full.
var searchFields = []string{"summary", "status"}

// cloudPageMax is the most issues Cloud's /search/jql returns per page with fields.
const cloudPageMax = 100

var (
	validKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[0-9]+$`)
	// keyRejected matches the message Jira writes per key of a `key in (...)` it does not have:
	//
	//	An issue with key 'PAY-999' does not exist for field 'key'.
	//	The issue key 'XYZ-1' for field 'key' is invalid.          (no such project)
	//	The value 'PAY-999' does not exist for the field 'key'.
	//
	// Only these name a missing key. A key merely quoted, as in "Error in the JQL Query: ...
	// key in (PAY-1, PAY-2) ...", says nothing about that key.
	keyRejected = regexp.MustCompile(`(?i)\b(?:an issue with key|the issue key|the value) ['"]?([a-z][a-z0-9_]*-[0-9]+)['"]? (?:does not exist for (?:the )?field|for field) ['"]?(?:key|issuekey)\b`)
)

// Tickets looks keys up in batches of `key in (...)`. Every key asked for is in the map;
// Found is false for a key Jira does not have. Any failure other than Jira naming keys it does
// not know (5xx, 401, network) is an error: a ticket that could not be checked never passes.
func (c *Client) Tickets(ctx context.Context, keys []string) (map[string]compliance.Ticket, error) {
	var uniq []string
	seen := map[string]bool{}
	for _, k := range keys {
		up := strings.ToUpper(strings.TrimSpace(k))
		// A string that cannot be a key would make the whole JQL invalid; it is simply absent.
		if validKey.MatchString(up) && !seen[up] {
			seen[up] = true
			uniq = append(uniq, up)
		}
	}
	found := map[string]gojira.Issue{}
	if len(uniq) > 0 {
		cloud, err := c.isCloud(ctx)
		if err != nil {
			return nil, err
		}
		if found, err = c.lookup(ctx, cloud, uniq); err != nil {
			return nil, err
		}
	}
	out := make(map[string]compliance.Ticket, len(keys))
	for _, k := range keys {
		t := compliance.Ticket{Key: k, URL: c.base + "browse/" + strings.TrimSpace(k)}
		if is, ok := found[strings.ToUpper(strings.TrimSpace(k))]; ok {
			if is.Fields == nil || is.Fields.Status == nil {
				// Without a status nothing can be said about the ticket: fail closed.
				return nil, fmt.Errorf("jira: %s came back without a status", is.Key)
			}
			t.Found = true
			t.Summary = is.Fields.Summary
			t.Status = is.Fields.Status.Name
			t.StatusCategory = is.Fields.Status.StatusCategory.Key
		}
		out[k] = t
	}
	return out, nil
}

// lookup runs the batches, at most c.concurrency at a time, and stops at the first error.
func (c *Client) lookup(parent context.Context, cloud bool, keys []string) (map[string]gojira.Issue, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		found    = map[string]gojira.Issue{}
		sem      = make(chan struct{}, c.concurrency)
	)
	for start := 0; start < len(keys); start += c.batch {
		batch := keys[start:min(start+c.batch, len(keys))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var issues []gojira.Issue
			var err error
			if ctx.Err() != nil {
				err = fmt.Errorf("jira: search %s: %w", describe(batch), ctx.Err())
			} else {
				issues, err = c.resolve(ctx, cloud, batch, false)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			for _, is := range issues {
				found[strings.ToUpper(is.Key)] = is
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return found, nil
}

// resolve searches one batch. Jira fails a whole `key in (...)` with 400 when one key does not
// exist, with a message per key (see keyRejected); those keys are set aside (they end up
// Found=false) and the rest asked again. A 400 with no such message (worded vaguely, in another
// language, or not about keys at all) is bisected to find the keys it is about; if Jira accepts
// none of them, the 400 is returned as an error.
func (c *Client) resolve(ctx context.Context, cloud bool, keys []string, nested bool) ([]gojira.Issue, error) {
	for len(keys) > 0 {
		issues, err := c.search(ctx, cloud, keys)
		if err == nil {
			return issues, nil
		}
		named, rejected := rejectedKeys(err, keys)
		switch {
		case !rejected:
			return nil, err
		case len(named) > 0:
			keys = without(keys, named)
			continue
		case len(keys) == 1 && nested:
			// Bisected down to this key and Jira still refuses it alone: not found. The
			// top level fails the batch instead if Jira accepted no key at all.
			return nil, nil
		case len(keys) == 1:
			// Nothing to compare with: missing key or broken query, we cannot tell.
			return nil, err
		}
		half := len(keys) / 2
		var all []gojira.Issue
		for _, part := range [][]string{keys[:half], keys[half:]} {
			got, perr := c.resolve(ctx, cloud, part, true)
			if perr != nil {
				return nil, perr
			}
			all = append(all, got...)
		}
		if !nested && len(all) == 0 {
			// Jira accepted none of the keys, even alone: the 400 is not about keys.
			return nil, err
		}
		return all, nil
	}
	return nil, nil
}

// rejectedKeys says whether err is Jira rejecting the query (400) and which of keys its
// messages say do not exist. A message that merely quotes keys (an echo of the JQL) names none.
func rejectedKeys(err error, keys []string) (named []string, rejected bool) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
		return nil, false
	}
	inMsg := map[string]bool{}
	for _, m := range ae.messages {
		for _, sub := range keyRejected.FindAllStringSubmatch(m, -1) {
			inMsg[strings.ToUpper(sub[1])] = true
		}
	}
	for _, k := range keys {
		if inMsg[k] {
			named = append(named, k)
		}
	}
	return named, true
}

func without(keys, drop []string) []string {
	d := map[string]bool{}
	for _, k := range drop {
		d[k] = true
	}
	var out []string
	for _, k := range keys {
		if !d[k] {
			out = append(out, k)
		}
	}
	return out
}

func keysJQL(keys []string) string {
	return `key in ("` + strings.Join(keys, `", "`) + `")`
}

func describe(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return fmt.Sprintf("%s and %d more keys", keys[0], len(keys)-1)
}

func (c *Client) search(ctx context.Context, cloud bool, keys []string) ([]gojira.Issue, error) {
	if cloud {
		return c.searchCloud(ctx, keys)
	}
	return c.searchDataCenter(ctx, keys)
}

// searchCloud uses the enhanced search, the only one Cloud still has (CHANGE-2046): pages
// chained by nextPageToken, no total. POST keeps a long key list out of the URL.
func (c *Client) searchCloud(ctx context.Context, keys []string) ([]gojira.Issue, error) {
	body := struct {
		JQL           string   `json:"jql"`
		Fields        []string `json:"fields"`
		MaxResults    int      `json:"maxResults"`
		NextPageToken string   `json:"nextPageToken,omitempty"`
	}{JQL: keysJQL(keys), Fields: searchFields, MaxResults: min(len(keys), cloudPageMax)}
	var all []gojira.Issue
	for pages := 0; ; pages++ {
		// Each page holds at least one issue, so more pages than keys means a token loop.
		if pages > len(keys) {
			return nil, fmt.Errorf("jira: search %s: more pages than keys", describe(keys))
		}
		req, err := c.api.NewRequestWithContext(ctx, http.MethodPost, "rest/api/3/search/jql", body)
		if err != nil {
			return nil, c.wrap("search "+describe(keys), nil, err)
		}
		var page struct {
			Issues        []gojira.Issue `json:"issues"`
			NextPageToken string         `json:"nextPageToken"`
			IsLast        bool           `json:"isLast"`
		}
		resp, err := c.do(req, &page)
		if err != nil {
			return nil, c.wrap("search "+describe(keys), resp, err)
		}
		all = append(all, page.Issues...)
		if page.IsLast || page.NextPageToken == "" {
			return all, nil
		}
		body.NextPageToken = page.NextPageToken
	}
}

// searchDataCenter uses go-jira's own /rest/api/2/search: startAt pages with a total.
func (c *Client) searchDataCenter(ctx context.Context, keys []string) ([]gojira.Issue, error) {
	jql := keysJQL(keys)
	var all []gojira.Issue
	for {
		issues, resp, err := c.api.Issue.SearchWithContext(ctx, jql, &gojira.SearchOptions{
			StartAt: len(all), MaxResults: len(keys), Fields: searchFields,
		})
		if err != nil {
			return nil, c.wrap("search "+describe(keys), resp, err)
		}
		all = append(all, issues...)
		if len(issues) == 0 || len(all) >= resp.Total {
			return all, nil
		}
	}
}
