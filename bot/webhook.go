package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

	// Bodies are read before the signature can be checked, so how many are held at once is
	// bounded: up to 64 small ones (≤1 MB, nearly every delivery) and 8 large or unannounced
	// ones, in separate pools, so slow or huge unauthenticated requests can neither use up
	// memory (at most 64 MB + 200 MB) nor hold up the small deliveries. A request that finds
	// its pool full for 5 s gets a 503.
	a.state.init()
	limit, pool := int64(smallWebhookBody), a.state.readingSmall
	if r.ContentLength < 0 || r.ContentLength > smallWebhookBody {
		limit, pool = maxWebhookBody, a.state.reading
	}
	select {
	case pool <- struct{}{}:
		defer func() { <-pool }()
	case <-time.After(5 * time.Second):
		reply(http.StatusServiceUnavailable, "busy", "too many deliveries being read at once; try again")
		return
	case <-r.Context().Done():
		return // the sender gave up waiting
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(http.StatusRequestEntityTooLarge, "too_large", "payload over 25 MB")
			return
		}
		reply(http.StatusBadRequest, "malformed", "could not read the body")
		return
	}
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
		reply(http.StatusBadRequest, "malformed", "payload does not decode as "+event)
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
	}
	return nil
}
