package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/compliance"
	"sockembot/integrations/github"
	"sockembot/integrations/store"
)

// maxWebhookBody is GitHub's own cap on a delivery: payloads above 25 MB are never sent, so a
// bigger body is not GitHub and is refused before it is buffered.
const maxWebhookBody = 25 << 20

// deliveryLease is how long a worker owns a claimed delivery. A replica that dies mid-way loses
// the claim when it runs out and another worker (or the restarted process) processes it again.
const deliveryLease = 5 * time.Minute

// handledActions are the webhook events and actions the bot acts on; "" means every action.
// Anything else is acknowledged with 202 and dropped before it reaches the queue.
var handledActions = map[string]map[string]bool{
	"pull_request": {
		"opened": true, "reopened": true, "synchronize": true, "edited": true,
		"ready_for_review": true, "closed": true,
	},
	"pull_request_review": {"submitted": true, "dismissed": true},
	"push":                {"": true},
	"deployment_status":   {"": true},
	// GitHub App mode: Re-check and re-run of sockembot's check run, merge queues, and GitHub
	// Actions deployments waiting on sockembot's protection rule.
	"check_run":                  {"rerequested": true, "requested_action": true},
	"check_suite":                {"rerequested": true},
	"merge_group":                {"checks_requested": true, "destroyed": true},
	"deployment_protection_rule": {"requested": true},
}

// serveWebhook authenticates a delivery, persists it and answers. Nothing is processed here:
// GitHub gives up after 10 s, so the work happens on the queue after the 2xx.
func (a *App) serveWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	id := r.Header.Get("X-GitHub-Delivery")
	log := a.log().WithFields(logrus.Fields{"event": event, "delivery_id": id})
	reply := func(code int, result, msg string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, msg+"\n")
		a.metrics.delivery(metricEvent(event), result, time.Since(start))
		if code >= 400 {
			log.WithField("status", code).Warn("webhook: " + msg)
		}
	}

	// Bodies are read before the signature can be checked, so reading them is bounded three ways
	// (see readWebhookBody for the memory each holds):
	//   - per address: at most maxReadsPerAddr requests from one remote address (an IPv6 /64)
	//     are being read, or waiting for a slot, at once; one more waits up to addrWait for one
	//     of them to end, then gets a 429, never having taken or queued for a slot. The address
	//     is the TCP peer's: X-Forwarded-For is not trusted, since anyone can send it.
	//   - in total: 64 small bodies (announced ≤1 MB, nearly every delivery) and 8 large or
	//     unannounced ones, in separate pools, so huge requests cannot hold up the small
	//     deliveries. A request that finds its pool full for webhookSlotWait gets a 503.
	//   - in time: each body must arrive within webhookReadTime, or the request gets a 408 and
	//     its slots are freed.
	a.state.init()
	rc := http.NewResponseController(w)
	// refuse answers without reading the body, then closes the connection, having drained at
	// most what of the body arrives within refusedDrainTime (an honest sender then reads the
	// answer rather than a connection reset; a slow one is cut off).
	refuse := func(code int, result, msg string) {
		w.Header().Set("Connection", "close")
		rc.SetReadDeadline(time.Now().Add(refusedDrainTime))
		reply(code, result, msg)
	}
	if r.ContentLength > maxWebhookBody {
		refuse(http.StatusRequestEntityTooLarge, "too_large", "payload over 25 MB")
		return
	}
	addr := remoteKey(r.RemoteAddr)
	if !a.state.startRead(r.Context(), addr, a.addrWait()) {
		refuse(http.StatusTooManyRequests, "address_busy", "too many requests being read from this address at once; try again")
		return
	}
	reading := true
	endRead := func() {
		if reading {
			reading = false
			a.state.endRead(addr)
		}
	}
	defer endRead()
	limit, pool := int64(smallWebhookBody), a.state.readingSmall
	if r.ContentLength < 0 || r.ContentLength > smallWebhookBody {
		limit, pool = maxWebhookBody, a.state.reading
	}
	select {
	case pool <- struct{}{}:
		defer func() { <-pool }()
	case <-time.After(webhookSlotWait):
		refuse(http.StatusServiceUnavailable, "busy", "too many deliveries being read at once; try again")
		return
	case <-r.Context().Done():
		return // the sender gave up waiting
	}
	// ErrNotSupported (a ResponseWriter that is not the server's) leaves the server's ReadTimeout.
	rc.SetReadDeadline(time.Now().Add(a.webhookReadTime(r.ContentLength)))
	body, err := readWebhookBody(r.Body, r.ContentLength, limit)
	endRead()
	if err != nil {
		// The deadline stays: whatever is left of the body is not waited for either.
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			reply(http.StatusRequestEntityTooLarge, "too_large", "payload over 25 MB")
		case errors.Is(err, os.ErrDeadlineExceeded):
			reply(http.StatusRequestTimeout, "timeout", "the body did not arrive in time")
		default:
			reply(http.StatusBadRequest, "malformed", "could not read the body")
		}
		return
	}
	// The rest of the request (persisting it) must not be cut short by the body's deadline.
	rc.SetReadDeadline(time.Time{})
	// Authenticate before looking at anything the sender controls. Only the SHA-256 header
	// counts: the SHA-1 fallback go-github accepts is not good enough to authorise a merge gate.
	if err := github.VerifySignature(a.WebhookSecret, body, r.Header.Get("X-Hub-Signature-256")); err != nil {
		reply(http.StatusUnauthorized, "bad_signature", "signature missing or wrong")
		return
	}
	if event == "" || id == "" {
		reply(http.StatusBadRequest, "malformed", "X-GitHub-Event and X-GitHub-Delivery are required")
		return
	}
	payload, err := webhookJSON(r.Header.Get("Content-Type"), body)
	if err != nil {
		reply(http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if event == "ping" {
		reply(http.StatusOK, "pong", "pong")
		return
	}
	actions, known := handledActions[event]
	if !known {
		reply(http.StatusAccepted, "ignored", "event not handled: ignored")
		return
	}
	var head struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		reply(http.StatusBadRequest, "malformed", "payload is not a JSON object")
		return
	}
	if !actions[""] && !actions[head.Action] {
		reply(http.StatusAccepted, "ignored", "action not handled: ignored")
		return
	}
	// Decode now so a payload the workers could never read is refused to the sender instead of
	// failing forever on the queue.
	if _, err := github.ParseEvent(event, payload); err != nil {
		msg := "payload does not decode as " + event
		if errors.Is(err, github.ErrIncompleteEvent) {
			msg = err.Error() // names what is missing; the sender is authenticated by now
		}
		reply(http.StatusBadRequest, "malformed", msg)
		return
	}
	fresh, err := a.Store.EnqueueDelivery(r.Context(), store.Delivery{ID: id, Event: event, Payload: payload})
	if err != nil {
		// Not acknowledged, so GitHub shows the delivery as failed and it can be redelivered.
		log.WithError(err).Error("webhook: persist delivery")
		reply(http.StatusServiceUnavailable, "error", "could not persist the delivery")
		return
	}
	if !fresh {
		reply(http.StatusOK, "duplicate", "duplicate delivery: already queued")
		return
	}
	a.kickWorkers()
	reply(http.StatusAccepted, "accepted", "queued")
}

// A webhook body must arrive within webhookReadBase plus one second for every
// webhookReadRate bytes announced, and never more than webhookReadMax (nor may a body of
// unannounced length take longer): 5 s for an empty body, 5.5 s for 1 MB, 10 s from 10 MB up.
// GitHub itself gives up on a delivery after 10 s, so a body still arriving then is not one
// GitHub is waiting on; a slower sender would only hold a read slot longer.
const (
	webhookReadBase = 5 * time.Second
	webhookReadRate = 2 << 20 // bytes per second
	webhookReadMax  = 10 * time.Second
)

// webhookSlotWait is how long a request waits for a free read slot. It is longer than any small
// body's read time (at most 5.5 s), so when slow senders from many addresses hold every small slot
// a delivery waiting behind them gets the first one they free (waiters are served in order), and
// short enough that reading and persisting it still fit in GitHub's 10 s.
const webhookSlotWait = 6 * time.Second

// refusedDrainTime is how long the rest of a refused request's body may take to arrive before its
// connection is closed anyway.
const refusedDrainTime = time.Second

// webhookReadTime is how long a body of announced length n (-1: unannounced) may take to arrive.
// App.webhookReadBase, when set, is the time for every body, whatever its length (tests shorten
// it).
func (a *App) webhookReadTime(n int64) time.Duration {
	if d := a.webhookReadBase.Load(); d > 0 {
		return time.Duration(d)
	}
	if n < 0 {
		return webhookReadMax
	}
	return min(webhookReadBase+time.Duration(n)*time.Second/webhookReadRate, webhookReadMax)
}

// addrWait is how long a request over its address's cap waits for room: the constant, or
// App.webhookAddrWait when a test set it.
func (a *App) addrWait() time.Duration {
	if d := a.webhookAddrWait.Load(); d > 0 {
		return time.Duration(d)
	}
	return addrWait
}

// readWebhookBody reads a body of announced length n (-1: unannounced) of at most limit bytes.
// Memory: a body of announced length gets one buffer of exactly that size (so at most 1 MB in
// the small pool, 25 MB in the large one); an unannounced one grows a buffer as bytes arrive,
// doubling it, so while it grows the old and the new buffer are both held: at most twice the
// 25 MB limit (and a byte). With the pools' sizes that is at most 64 × 1 MB + 8 × 25 MB = 264 MB
// of bodies being read at once when every body announces its length, and about
// 64 MB + 8 × 50 MB = 464 MB when the large ones do not.
func readWebhookBody(body io.Reader, n, limit int64) ([]byte, error) {
	if n >= 0 {
		if n > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf := make([]byte, 0, min(64<<10, limit+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &http.MaxBytesError{Limit: limit}
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > limit {
				return nil, &http.MaxBytesError{Limit: limit}
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// remoteKey is the address a request is counted against: the TCP peer's IP, or for IPv6 its /64
// (one host is usually given a whole /64, so counting single addresses would let it use
// billions). Headers such as X-Forwarded-For are ignored: any client can send them. Behind a
// proxy every request has the proxy's address and shares its count.
func remoteKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// webhookJSON is the JSON payload of a delivery, whether the hook sends application/json or the
// legacy form encoding (payload=...). The signature covers the raw body in both cases.
func webhookJSON(contentType string, body []byte) ([]byte, error) {
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		body = []byte(form.Get("payload"))
	}
	if !json.Valid(body) {
		return nil, errors.New("payload is not valid JSON")
	}
	return body, nil
}

// metricEvent keeps the metric's label set bounded: an attacker without the secret must not be
// able to mint a new time series per request.
func metricEvent(event string) string {
	if _, ok := handledActions[event]; ok || event == "ping" {
		return event
	}
	return "other"
}

// kickWorkers wakes an idle worker when this replica accepted a delivery, so it is processed at
// once rather than at the next poll. Deliveries accepted by other replicas are found by polling.
func (a *App) kickWorkers() {
	a.state.init()
	select {
	case a.state.kick <- struct{}{}:
	default:
	}
}

// deliveryWorkers is how many deliveries one replica processes at once.
const deliveryWorkers = 4

// deliveryPoll is how often an idle worker looks for deliveries another replica accepted or
// whose lease ran out.
const deliveryPoll = 2 * time.Second

// runDeliveryWorkers processes the delivery queue until ctx is done.
func (a *App) runDeliveryWorkers(ctx context.Context) error {
	a.state.init()
	var wg sync.WaitGroup
	for i := 0; i < deliveryWorkers; i++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			a.deliveryWorker(ctx, worker)
		}(fmt.Sprintf("%s/%d", a.replica(), i))
	}
	wg.Wait()
	return ctx.Err()
}

func (a *App) replica() string {
	if a.ReplicaID != "" {
		return a.ReplicaID
	}
	return "sockembot"
}

func (a *App) deliveryWorker(ctx context.Context, worker string) {
	tick := time.NewTicker(deliveryPoll)
	defer tick.Stop()
	for ctx.Err() == nil {
		worked, err := a.ProcessNextDelivery(ctx, worker)
		if err != nil && ctx.Err() == nil {
			a.log().WithError(err).WithField("worker", worker).Error("deliveries: queue")
		}
		if worked && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-a.state.kick:
		case <-tick.C:
		}
	}
}

// ProcessNextDelivery claims one queued delivery, processes it and marks it done. It reports
// whether there was one. Exported so tests and the demo can drain the queue without timing.
func (a *App) ProcessNextDelivery(ctx context.Context, worker string) (bool, error) {
	a.wire()
	d, err := a.Store.ClaimDelivery(ctx, worker, deliveryLease)
	if err != nil {
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	if d == nil {
		return false, nil
	}
	log := a.log().WithFields(logrus.Fields{"delivery_id": d.ID, "event": d.Event, "worker": worker})
	// Done well within the lease, so no other worker claims it while this one still works.
	pctx, pcancel := context.WithTimeout(ctx, deliveryLease-time.Minute)
	perr := check.Safely(func() error { return a.processDelivery(pctx, d) })
	pcancel()
	result := "ok"
	if perr != nil {
		result = "error"
		log.WithError(perr).Error("deliveries: processing failed")
	}
	a.metrics.processedDelivery(result)
	// Record the outcome even when shutdown interrupted the work, so the retry is scheduled
	// now rather than when the lease runs out.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.Store.CompleteDelivery(cctx, d.ID, d.Attempts, perr); errors.Is(err, store.ErrStaleClaim) {
		log.Warn("deliveries: lease ran out before processing ended; another claim owns the outcome")
	} else if err != nil {
		return true, fmt.Errorf("complete delivery %s: %w", d.ID, err)
	}
	return true, nil
}

// DrainDeliveries processes queued deliveries until none is left.
func (a *App) DrainDeliveries(ctx context.Context) error {
	for {
		worked, err := a.ProcessNextDelivery(ctx, a.replica()+"/drain")
		if err != nil || !worked {
			return err
		}
	}
}

// processDelivery routes one delivery to what handles it.
func (a *App) processDelivery(ctx context.Context, d *store.Delivery) error {
	ev, err := github.ParseEvent(d.Event, d.Payload)
	if err != nil {
		return fmt.Errorf("decode %s delivery: %w", d.Event, err)
	}
	a.wire()
	switch ev := ev.(type) {
	case compliance.PullRequestEvent:
		return a.merges.OnPullRequest(ctx, ev)
	case compliance.ReviewEvent:
		// An approval after an emergency deploy is the retroactive review of that change.
		if err := a.emergencies.OnReview(ctx, ev); err != nil {
			return err
		}
		return a.merges.OnReview(ctx, ev)
	case compliance.PushEvent:
		return a.merges.OnPush(ctx, ev)
	case compliance.DeploymentStatusEvent:
		return a.rollouts.OnDeploymentStatus(ctx, ev)
	case compliance.CheckRunEvent:
		return a.merges.OnCheckRun(ctx, ev)
	case compliance.CheckSuiteEvent:
		return a.merges.OnCheckSuite(ctx, ev)
	case compliance.MergeGroupEvent:
		return a.merges.OnMergeGroup(ctx, ev)
	case compliance.DeploymentProtectionRuleEvent:
		return a.deploys.OnProtectionRule(ctx, ev)
	}
	return nil
}

// WebhookEvents are the GitHub webhook events the bot acts on, sorted: what its GitHub App
// manifest (github-app-manifest.json) must subscribe to.
func WebhookEvents() []string {
	out := make([]string, 0, len(handledActions))
	for e := range handledActions {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}
