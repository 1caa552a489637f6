package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// This file is a small harness that opens an auditor's report, a single self-contained HTML file,
// in a real headless Chromium, so that tests can prove what an auditor's browser does with it: it
// asks for nothing beyond the file itself, it logs no error, and it shows the figures it should.

// browserTimeout bounds a page's whole life, from starting Chromium to the last read: a browser
// that hangs fails its test instead of hanging CI.
const browserTimeout = 60 * time.Second

// chromium returns the path of a Chromium or Chrome binary, or "" when there is none. An explicit
// $SOCKEMBOT_CHROMIUM wins even when it names nothing runnable, so a mistyped path fails loudly
// rather than skipping quietly.
func chromium() string {
	if p := os.Getenv("SOCKEMBOT_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page is one HTML file loaded in its own headless Chromium. The listener records what the page
// asked for and what it logged, on chromedp's reading goroutine; the getters read under mu.
type page struct {
	t   testing.TB
	ctx context.Context // the browser's context, bounded by browserTimeout
	doc string          // the file:// URL of the document itself

	mu      sync.Mutex
	docSeen bool     // the document's own request went by (and is not in reqs)
	reqs    []string // every other URL the page asked for, in order
	errs    []string // console errors, uncaught exceptions, error log entries
}

// deadProxy listens on a loopback port and hangs up on every connection, for Chromium to use as
// its proxy for every scheme and every host, loopback included. A request that would reach the
// network fails at once — the same way on a CI runner with a network as on one without, where
// an unroutable address could instead wait for a TCP timeout — and not a byte leaves the machine.
// The page's requests are still recorded from the DevTools protocol, before they are sent.
func deadProxy(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// openPage opens file://htmlPath in a fresh headless Chromium, waits for its load event and for
// the frame after it, and returns the page. The browser and its profile go away with the test.
// It skips the test when no Chromium is installed.
func openPage(t testing.TB, htmlPath string) *page {
	t.Helper()
	bin := chromium()
	if bin == "" {
		if os.Getenv("SOCKEMBOT_REQUIRE_CHROMIUM") != "" {
			// CI installs Chromium: a browser test that skipped there would pass unseen.
			t.Fatal("no Chromium found, and SOCKEMBOT_REQUIRE_CHROMIUM is set: apt-get install chromium (Debian) or set SOCKEMBOT_CHROMIUM")
		}
		t.Skip("no Chromium found: apt-get install chromium (Debian) or set SOCKEMBOT_CHROMIUM; .ci/run installs it")
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &page{t: t, doc: (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()}

	// A fresh profile, and no background service of Chromium's own (updates, sync, QUIC probes,
	// default apps): otherwise the browser opens connections of its own that have nothing to do
	// with the page. --no-sandbox because CI runs as root, where Chromium refuses its sandbox.
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// Some of these are in chromedp's defaults already; they are listed so that the intent
		// survives a change of defaults.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		// Even with the flags above Chromium 156 still calls Google (network time, an on-demand
		// component update, accounts.google.com); the dead proxy stops those too. A blocklist
		// (Network.setBlockedURLs) would not do: it lets WebSockets through.
		chromedp.ProxyServer(deadProxy(t)),
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	// WithListener, not Listen: it sees the tab's events from its very first message, so
	// nothing the page does is missed (chromedp v0.23 renamed ListenTarget to Listen, which
	// only starts after the tab is attached).
	ctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(p.record))
	p.ctx = ctx
	t.Cleanup(func() {
		cancelBrowser() // waits for Chromium to exit, before TempDir removes its profile
		cancelAlloc()
		cancelTimeout()
	})

	err = chromedp.Do(ctx,
		// chromedp already enables these domains when it attaches the tab; they are enabled
		// again here because every verdict rests on them being on before the page loads.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, cdpruntime.Enable, cdp.Empty{}); err != nil {
				return fmt.Errorf("Runtime.enable: %w", err)
			}
			if _, err := cdp.Call(ctx, t, log.Enable, cdp.Empty{}); err != nil {
				return fmt.Errorf("Log.enable: %w", err)
			}
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return fmt.Errorf("Network.enable: %w", err)
			}
			return nil
		}),
		chromedp.Navigate(p.doc),
	)
	if err != nil {
		t.Fatalf("opening %s in %s: %v", p.doc, bin, err)
	}
	// The load event has fired; let the scripts it triggers run and the first frame paint, so
	// that their errors are in before anyone asks.
	p.eval(`new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))`, nil, chromedp.EvalAwaitPromise)
	return p
}

// record is the tab's listener. It runs on chromedp's reading goroutine and must return fast.
func (p *page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		u := ev.Request.URL + ev.Request.URLFragment
		switch {
		case !p.docSeen && u == p.doc && ev.Type == network.ResourceTypeDocument:
			p.docSeen = true
		case strings.HasPrefix(u, "data:"):
			// Inline data is part of the file, not a request.
		default:
			p.reqs = append(p.reqs, u)
		}
	case *network.EventWebSocketCreated:
		// A WebSocket does not go through requestWillBeSent.
		p.reqs = append(p.reqs, ev.URL)
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeAssert {
			p.errs = append(p.errs, fmt.Sprintf("console.%s: %s", ev.Type, consoleArgs(ev.Args)))
		}
	case *cdpruntime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			// The description is the error and its stack; the first line is enough.
			desc, _, _ := strings.Cut(d.Exception.Description, "\n")
			msg += " " + desc
		}
		p.errs = append(p.errs, "exception: "+msg)
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError {
			msg := fmt.Sprintf("log (%s): %s", e.Source, e.Text)
			if e.URL != "" {
				msg += " [" + e.URL + "]"
			}
			p.errs = append(p.errs, msg)
		}
	}
}

// consoleArgs renders a console call's arguments roughly as DevTools shows them.
func consoleArgs(args []*cdpruntime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		var s string
		switch {
		case a.Type == cdpruntime.RemoteObjectTypeString && json.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		case len(a.Value) > 0:
			s = string(a.Value)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// requests returns every URL the page asked for besides itself and its inline data: URIs. A
// self-contained report asks for nothing, so any entry is a failure: an http(s), ws or ftp URL
// reaches the network, and another file:// URL would be missing when the file is mailed.
func (p *page) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

// consoleErrors returns the page's console.error and console.assert messages, its uncaught
// exceptions, and the browser's error log entries about it (such as failed loads).
func (p *page) consoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// eval evaluates a JavaScript expression in the page into out (nil to ignore the result),
// failing the test when it throws.
func (p *page) eval(expr string, out any, opts ...chromedp.EvaluateOption) {
	p.t.Helper()
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](expr, opts...))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("evaluating %s: decoding %s: %v", expr, raw, err)
		}
	}
}

// text returns the rendered text (innerText, or textContent for an SVG element) of the first
// element that the CSS selector matches, or "" when none does. It reads the DOM as it is, so it
// never waits for the element, unlike chromedp.Text.
func (p *page) text(selector string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? (e.innerText ?? e.textContent) : ""; })()`,
		jsString(selector)), &s)
	return s
}

// count returns how many elements the CSS selector matches.
func (p *page) count(selector string) int {
	p.t.Helper()
	var n int
	p.eval(fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(selector)), &n)
	return n
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshot writes a PNG of the page, laid out width CSS pixels wide, to path (the README's
// screenshot): all of it, or its top maxHeight pixels when maxHeight > 0. It lays the page out
// at that width, measures its height, and captures it all at once; the page goes back to its own
// size afterwards.
func (p *page) screenshot(t testing.TB, path string, width, maxHeight int) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		metrics := func(height int64) error {
			_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: int64(width), Height: height, DeviceScaleFactor: 1,
			})
			return err
		}
		if err := metrics(800); err != nil {
			return nil, err
		}
		defer cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		height, err := chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`)(ctx, tg)
		if err != nil {
			return nil, err
		}
		if maxHeight > 0 {
			height = min(height, int64(maxHeight))
		}
		if err := metrics(height); err != nil {
			return nil, err
		}
		return chromedp.CaptureScreenshot()(ctx, tg)
	})
	if err != nil {
		t.Fatalf("screenshot of %s: %v", p.doc, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pdf prints the page as the browser's "Save as PDF" would, honouring the report's @page rules,
// and returns the file's bytes.
func (p *page) pdf(t testing.TB) []byte {
	t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize()))
	if err != nil {
		t.Fatalf("printing %s to PDF: %v", p.doc, err)
	}
	return b
}

// TestBrowserHarness proves that the harness sees what it is meant to catch: a clean page passes,
// and a page that reaches the network or logs errors is caught.
func TestBrowserHarness(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("<!doctype html>\n<html><head><meta charset=utf-8><title>t</title>"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("clean", func(t *testing.T) {
		p := openPage(t, write("clean.html", `<style>body { font: 14px sans-serif } .n { font-weight: bold }</style></head>
<body><h1>Deploys</h1><p>Deploys this month: <span id="deploys" class="n">42</span></p>
<svg width="120" height="40" viewBox="0 0 120 40"><rect width="84" height="40" fill="#2a7"/><text x="4" y="25">42</text></svg>
<img alt="dot" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</body></html>`))
		if r := p.requests(); len(r) != 0 {
			t.Errorf("requests = %q, want none", r)
		}
		if e := p.consoleErrors(); len(e) != 0 {
			t.Errorf("console errors = %q, want none", e)
		}
		if got := p.text("#deploys"); got != "42" {
			t.Errorf(`text("#deploys") = %q, want "42"`, got)
		}
		if got := p.text("#absent"); got != "" {
			t.Errorf(`text("#absent") = %q, want ""`, got)
		}
		if got := p.text("svg text"); got != "42" {
			t.Errorf(`text("svg text") = %q, want "42"`, got)
		}
		if got := p.count("svg"); got != 1 {
			t.Errorf(`count("svg") = %d, want 1`, got)
		}
		if pdf := p.pdf(t); !strings.HasPrefix(string(pdf), "%PDF") {
			t.Errorf("pdf starts %q, want %%PDF", pdf[:min(len(pdf), 8)])
		}
		png := filepath.Join(t.TempDir(), "clean.png")
		p.screenshot(t, png, 1200, 0)
		if b, err := os.ReadFile(png); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
			t.Errorf("screenshot: %v, starts %q", err, b[:min(len(b), 8)])
		}
		if got := p.count("body"); got != 1 { // still usable after the screenshot
			t.Errorf(`count("body") = %d after the screenshot, want 1`, got)
		}
	})

	t.Run("network", func(t *testing.T) {
		p := openPage(t, write("network.html", `<link rel="stylesheet" href="https://example.invalid/a.css"></head>
<body><img src="http://203.0.113.1/x.png"><img src="sibling.png">
<script>new WebSocket("ws://203.0.113.1/live")</script></body></html>`))
		r := p.requests()
		sibling := (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "sibling.png"))}).String()
		for _, want := range []string{"http://203.0.113.1/x.png", "https://example.invalid/a.css", "ws://203.0.113.1/live", sibling} {
			if !slices.Contains(r, want) {
				t.Errorf("requests = %q, want %s among them", r, want)
			}
		}
		// A failed load is a console error too.
		if e := p.consoleErrors(); !slices.ContainsFunc(e, func(s string) bool { return strings.Contains(s, "x.png") }) {
			t.Errorf("console errors = %q, want the failed load of x.png among them", e)
		}
	})

	t.Run("errors", func(t *testing.T) {
		p := openPage(t, write("errors.html", `</head>
<body><script>console.error("boom")</script><script>undefined_fn()</script></body></html>`))
		e := p.consoleErrors()
		if !slices.ContainsFunc(e, func(s string) bool { return strings.Contains(s, "console.error") && strings.Contains(s, "boom") }) {
			t.Errorf("console errors = %q, want console.error boom", e)
		}
		if !slices.ContainsFunc(e, func(s string) bool { return strings.Contains(s, "undefined_fn is not defined") }) {
			t.Errorf("console errors = %q, want the uncaught ReferenceError", e)
		}
		if r := p.requests(); len(r) != 0 {
			t.Errorf("requests = %q, want none", r)
		}
	})
}
