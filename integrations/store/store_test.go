package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sockembot/compliance"
)

// postgresEnv names the PostgreSQL server the suite also runs against. Tests are the only code
// in this package that read the environment.
const postgresEnv = "SOCKEMBOT_TEST_POSTGRES_URL"

// testKey is the evidence key every store in these tests is opened with: random, never printed.
var testKey = NewKey()

func TestSQLite(t *testing.T) {
	runConformance(t, func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "sockembot.db")
	})
}

func TestPostgres(t *testing.T) {
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skip(postgresEnv + " is not set")
	}
	runConformance(t, func(t *testing.T) string { return postgresSchemaURL(t, base) })
}

// postgresSchemaURL creates a fresh schema, dropped when the test ends, and returns base with its
// search_path pointing there (pgx sends unknown URL parameters as run-time settings).
func postgresSchemaURL(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sockembot_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	// Registered before any store is opened on it, so it runs after they are closed.
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openStore(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, WithKey(testKey))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable time source, so lease expiry and retry backoff are tested without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s ...*Store) *clock {
	c := &clock{t: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	for _, st := range s {
		st.now = c.now
	}
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// wantHash is the unkeyed chain formula (records written before the chain was keyed, and what
// someone without the key can compute), written out independently of the code under test.
func wantHash(prev string, seq int64, at time.Time, kind, repo, subject string, body []byte) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%d\n%s\n%s\n%s\n%s\n%s",
		prev, seq, at.UTC().Format(time.RFC3339Nano), kind, repo, subject, body))
	return hex.EncodeToString(sum[:])
}

// wantMAC is the keyed chain formula, written out independently of the code under test.
func wantMAC(key []byte, keyedFrom int64, prev string, seq int64, at time.Time, kind, repo, subject string, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "sockembot evidence hmac-sha256 v1\n%d\n%s\n%d\n%s\n%s\n%s\n%s\n%s",
		keyedFrom, prev, seq, at.UTC().Format(time.RFC3339Nano), kind, repo, subject, body)
	return hex.EncodeToString(m.Sum(nil))
}

// runConformance is the one suite both databases must pass. newURL returns the URL of a fresh,
// empty database each time it is called; opening it twice gives two handles, as two replicas
// would have.
func runConformance(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	fresh := func(t *testing.T) *Store { return openStore(t, newURL(t)) }

	t.Run("AppendLinksRecords", func(t *testing.T) {
		s := fresh(t)
		zone := time.FixedZone("CET", 3600)
		type verdict struct {
			Compliant bool     `json:"compliant"`
			Tickets   []string `json:"tickets"`
		}
		in := []compliance.Evidence{
			{At: time.Date(2024, 3, 1, 10, 0, 0, 0, zone), Kind: compliance.EvidenceCheckRun, Repo: "acme/pay", Subject: "abc123", Body: verdict{true, []string{"PAY-1"}}},
			{At: time.Date(2024, 3, 1, 10, 0, 0, 123456789, time.UTC), Kind: compliance.EvidenceDeployRequested, Repo: "acme/pay", Subject: "deploy-17", Body: map[string]any{"by": "U1", "env": "prod"}},
			{At: time.Date(2024, 3, 1, 10, 5, 0, 0, time.UTC), Kind: compliance.EvidenceCheckRun, Repo: "acme/web", Subject: "def456", Body: verdict{false, nil}},
		}
		var recs []compliance.Record
		prev := GenesisHash
		for i, e := range in {
			rec, err := s.Append(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(e.Body)
			if rec.Seq != int64(i+1) || rec.PrevHash != prev || !rec.At.Equal(e.At) || rec.At.Location() != time.UTC {
				t.Fatalf("record %d: seq %d prev %s at %v", i, rec.Seq, rec.PrevHash, rec.At)
			}
			if want := wantMAC(testKey, 1, prev, rec.Seq, e.At, e.Kind, e.Repo, e.Subject, body); rec.Hash != want {
				t.Fatalf("record %d: MAC %s, want %s", rec.Seq, rec.Hash, want)
			}
			// The body is kept byte for byte as it was hashed (text, not jsonb).
			var stored string
			if err := s.db.QueryRow("SELECT body FROM evidence WHERE seq = $1", rec.Seq).Scan(&stored); err != nil || stored != string(body) {
				t.Fatalf("record %d: stored body %q (%v), want %q", rec.Seq, stored, err, body)
			}
			prev = rec.Hash
			recs = append(recs, rec)
		}

		var got []int64
		collect := func(r compliance.Record) error { got = append(got, r.Seq); return nil }
		for _, c := range []struct {
			kind, subject string
			want          []int64
		}{
			{"", "", []int64{1, 2, 3}},
			{compliance.EvidenceCheckRun, "", []int64{1, 3}},
			{"", "deploy-17", []int64{2}},
			{compliance.EvidenceCheckRun, "def456", []int64{3}},
			{compliance.EvidenceOverride, "", nil},
		} {
			got = nil
			if err := s.Records(ctx, c.kind, c.subject, collect); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("Records(%q, %q) = %v, want %v", c.kind, c.subject, got, c.want)
			}
		}
		var v verdict
		if err := s.Records(ctx, compliance.EvidenceCheckRun, "abc123", func(r compliance.Record) error {
			if r.Hash != recs[0].Hash || r.Repo != "acme/pay" || !r.At.Equal(in[0].At) {
				t.Errorf("read back %+v, want %+v", r, recs[0])
			}
			return json.Unmarshal(r.Body, &v)
		}); err != nil || !v.Compliant || v.Tickets[0] != "PAY-1" {
			t.Errorf("body read back as %+v (%v)", v, err)
		}
		stop := errors.New("stop")
		if err := s.Records(ctx, "", "", func(compliance.Record) error { return stop }); err != stop {
			t.Errorf("Records returned %v, want the callback's error", err)
		}

		last, found, err := s.LastRecord(ctx, compliance.EvidenceCheckRun, "")
		if err != nil || !found || last.Seq != 3 {
			t.Errorf("LastRecord(check_run) = %d, %v, %v", last.Seq, found, err)
		}
		if _, found, err := s.LastRecord(ctx, compliance.EvidenceOverride, ""); err != nil || found {
			t.Errorf("LastRecord(override) found %v, %v", found, err)
		}
	})

	t.Run("AppendRejectsAmbiguousFields", func(t *testing.T) {
		s := fresh(t)
		for _, e := range []compliance.Evidence{
			{Kind: "", Subject: "x"},
			{Kind: compliance.EvidenceCheckRun, Subject: "a\nb"},
			{Kind: compliance.EvidenceCheckRun, Repo: "acme/pay\n"},
			{Kind: compliance.EvidenceCheckRun, Body: func() {}},
		} {
			if _, err := s.Append(ctx, e); err == nil {
				t.Errorf("Append(%+v) succeeded", e)
			}
		}
		if res, err := s.Verify(ctx); err != nil || !res.OK || res.Checked != 0 {
			t.Errorf("Verify after refused appends = %+v, %v", res, err)
		}
	})

	t.Run("EvidenceIsAppendOnly", func(t *testing.T) {
		s := fresh(t)
		appendN(t, s, 2)
		for _, q := range []string{"UPDATE evidence SET body = '{}' WHERE seq = 1", "DELETE FROM evidence WHERE seq = 2"} {
			if _, err := s.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v, want refused as append-only", q, err)
			}
		}
		if res, err := s.Verify(ctx); err != nil || !res.OK || res.Checked != 2 {
			t.Errorf("Verify = %+v, %v", res, err)
		}
	})

	t.Run("VerifyIntact", func(t *testing.T) {
		s := fresh(t)
		if res, err := s.Verify(ctx); err != nil || !res.OK || res.Checked != 0 {
			t.Fatalf("empty chain: %+v, %v", res, err)
		}
		appendN(t, s, 7)
		res, err := s.Verify(ctx)
		if err != nil || !res.OK || res.Checked != 7 || res.FirstBad != 0 {
			t.Fatalf("7 records: %+v, %v", res, err)
		}
		last, found, err := s.LastRecord(ctx, "", "")
		if err != nil || !found || res.HeadSeq != 7 || res.HeadHash != last.Hash {
			t.Errorf("head %d %s, want the newest record %d %s", res.HeadSeq, res.HeadHash, last.Seq, last.Hash)
		}
	})

	t.Run("Tamper", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			tamper   func(t *testing.T, s *Store, recs []compliance.Record)
			firstBad int64
			problem  string
		}{
			{"body edited", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"compliant":true}' WHERE seq = 3`)
			}, 3, "content was edited"},
			{"body reformatted, same JSON value", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"n": 3}' WHERE seq = 3`)
			}, 3, "content was edited"},
			{"subject edited", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET subject = 'other' WHERE seq = 2`)
			}, 2, "content was edited"},
			{"time edited", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET at = '2024-01-01T00:00:00Z' WHERE seq = 4`)
			}, 4, "content was edited"},
			{"indexed time edited behind the hashed one", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET at_ns = at_ns + 1 WHERE seq = 4`)
			}, 4, "at_ns"},
			{"first row deleted", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `DELETE FROM evidence WHERE seq = 1`)
			}, 1, "missing"},
			{"middle row deleted", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `DELETE FROM evidence WHERE seq = 3`)
			}, 3, "missing"},
			{"last row deleted", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `DELETE FROM evidence WHERE seq = 5`)
			}, 5, "chain head"},
			{"last two rows deleted", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `DELETE FROM evidence WHERE seq >= 4`)
			}, 4, "chain head"},
			{"forged row appended behind the head's back", func(t *testing.T, s *Store, recs []compliance.Record) {
				forge(t, s, 6, recs[4].Hash)
			}, 6, "beyond the chain head"},
			{"forged row inserted mid-chain with a made-up hash", func(t *testing.T, s *Store, recs []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET seq = -seq WHERE seq >= 3`)
				sqlExec(t, s, `UPDATE evidence SET seq = 1 - seq WHERE seq < 0`)
				sqlExec(t, s, `INSERT INTO evidence (seq, at, at_ns, kind, repo, subject, body, prev_hash, hash)
					VALUES (3, '2024-03-01T09:00:00Z', 1709283600000000000, 'override', 'acme/pay', 'x', '{}', $1, $2)`,
					recs[1].Hash, strings.Repeat("ab", 32))
			}, 3, "content was edited"},
			// A forger holding the key recomputes the inserted row's MAC and makes it link
			// correctly, so the break shows at the next record: the first place the chain stops
			// checking out.
			{"forged row inserted mid-chain with a correct MAC", func(t *testing.T, s *Store, recs []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET seq = -seq WHERE seq >= 3`)
				sqlExec(t, s, `UPDATE evidence SET seq = 1 - seq WHERE seq < 0`)
				forge(t, s, 3, recs[1].Hash)
			}, 4, "does not link"},
			{"two rows swapped", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET seq = -2 WHERE seq = 2`)
				sqlExec(t, s, `UPDATE evidence SET seq = 2 WHERE seq = 4`)
				sqlExec(t, s, `UPDATE evidence SET seq = 4 WHERE seq = -2`)
			}, 2, "does not link"},
			{"chain head deleted", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `DELETE FROM chain_head`)
			}, 1, "head row is missing"},
			{"chain head rewritten", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE chain_head SET hash = $1`, strings.Repeat("cd", 32))
			}, 5, "head's hash"},
			// Someone with database access but not the key edits a record and recomputes every
			// hash after it, and the head, the only way they can: plain SHA-256, or a key of their
			// own. Each link checks out; the MACs do not.
			{"record edited, the rest re-hashed with plain SHA-256", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"n":30}' WHERE seq = 3`)
				rehash(t, s, 3, wantHash)
			}, 3, "does not match its MAC"},
			{"record edited, the rest re-hashed with another key", func(t *testing.T, s *Store, _ []compliance.Record) {
				other := NewKey()
				sqlExec(t, s, `UPDATE evidence SET body = '{"n":30}' WHERE seq = 3`)
				rehash(t, s, 3, func(prev string, seq int64, at time.Time, kind, repo, subject string, body []byte) string {
					return wantMAC(other, 1, prev, seq, at, kind, repo, subject, body)
				})
			}, 3, "does not match its MAC"},
			// Moving the boundary up to pass edited records off as unkeyed breaks the first
			// keyed record left: its MAC covers where the keyed part starts.
			{"records re-hashed with plain SHA-256 and the boundary moved over them", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"n":30}' WHERE seq = 3`)
				rehash(t, s, 1, wantHash)
				sqlExec(t, s, `UPDATE chain_head SET keyed_from = 5`)
			}, 5, "does not match its MAC"},
			{"boundary moved past the head", func(t *testing.T, s *Store, _ []compliance.Record) {
				sqlExec(t, s, `UPDATE chain_head SET keyed_from = 7`)
			}, 6, "boundary was moved"},
		} {
			t.Run(c.name, func(t *testing.T) {
				s := fresh(t)
				recs := appendN(t, s, 5)
				dropGuard(t, s)
				c.tamper(t, s, recs)
				res, err := s.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.OK || res.FirstBad != c.firstBad || !strings.Contains(res.Problem, c.problem) {
					t.Errorf("Verify = %+v, want first bad %d with %q", res, c.firstBad, c.problem)
				}
			})
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := fresh(t)
		const goroutines, each = 20, 50
		seqs := make(chan int64, goroutines*each)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					rec, err := s.Append(ctx, compliance.Evidence{Kind: compliance.EvidenceCheckRun, Subject: fmt.Sprintf("g%d-%d", g, i), Body: i})
					if err != nil {
						t.Error(err)
						return
					}
					seqs <- rec.Seq
				}
			})
		}
		wg.Wait()
		close(seqs)
		seen := map[int64]bool{}
		for seq := range seqs {
			if seen[seq] {
				t.Fatalf("seq %d handed out twice", seq)
			}
			seen[seq] = true
		}
		if len(seen) != goroutines*each {
			t.Fatalf("%d records acknowledged", len(seen))
		}
		res, err := s.Verify(ctx)
		if err != nil || !res.OK || res.Checked != goroutines*each {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		// Two handles on one database behave like two sockembot processes.
		u := newURL(t)
		replicas := []*Store{openStore(t, u), openStore(t, u)}
		const racers = 8
		race := func(fn func(s *Store, i int)) {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					fn(replicas[i%2], i)
				})
			}
			close(start)
			wg.Wait()
		}
		countTrue := func(t *testing.T, n *int, mu *sync.Mutex, ok bool, err error) {
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				*n++
				mu.Unlock()
			}
		}

		t.Run("appends", func(t *testing.T) {
			race(func(s *Store, i int) {
				for j := range 25 {
					if _, err := s.Append(ctx, compliance.Evidence{Kind: compliance.EvidenceMergeVerdict, Subject: fmt.Sprintf("r%d-%d", i, j)}); err != nil {
						t.Error(err)
					}
				}
			})
			res, err := replicas[0].Verify(ctx)
			if err != nil || !res.OK || res.Checked != racers*25 {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
		})
		t.Run("deploy confirmed twice", func(t *testing.T) {
			for round := range 10 {
				id, err := replicas[0].CreateDeploy(ctx, DeployRow{Service: "pay", Environment: "prod", Repo: "acme/pay", Ref: "v1", State: stateReady})
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				wins := 0
				race(func(s *Store, _ int) {
					ok, err := s.TransitionDeploy(ctx, id, stateReady, stateConfirming)
					countTrue(t, &wins, &mu, ok, err)
				})
				if wins != 1 {
					t.Fatalf("round %d: %d replicas won the confirmation, want exactly 1", round, wins)
				}
			}
		})
		t.Run("two digests of one environment confirmed at once", func(t *testing.T) {
			for round := range 10 {
				env := fmt.Sprintf("prod-%d", round)
				ids := make([]int64, racers)
				for i := range ids {
					id, err := replicas[0].CreateDeploy(ctx, DeployRow{Service: "pay", Environment: env, Repo: "acme/pay", Ref: "v1", State: stateReady})
					if err != nil {
						t.Fatal(err)
					}
					ids[i] = id
				}
				var mu sync.Mutex
				wins := 0
				race(func(s *Store, i int) {
					ok, busy, err := s.ClaimConfirm(ctx, ids[i])
					if ok && busy != 0 {
						t.Errorf("claimed and busy at once")
					}
					countTrue(t, &wins, &mu, ok, err)
				})
				if wins != 1 {
					t.Fatalf("round %d: %d deploys of one environment confirming at once, want exactly 1", round, wins)
				}
			}
			// Another environment is not held up.
			other, err := replicas[0].CreateDeploy(ctx, DeployRow{Service: "pay", Environment: "staging", Repo: "acme/pay", Ref: "v1", State: stateReady})
			if err != nil {
				t.Fatal(err)
			}
			if ok, busy, err := replicas[1].ClaimConfirm(ctx, other); err != nil || !ok || busy != 0 {
				t.Fatalf("claim in another environment: %v %d %v", ok, busy, err)
			}
		})
		t.Run("delivery received twice", func(t *testing.T) {
			for round := range 10 {
				var mu sync.Mutex
				fresh := 0
				race(func(s *Store, _ int) {
					ok, err := s.EnqueueDelivery(ctx, Delivery{ID: fmt.Sprintf("dup-%d", round), Event: "push", Payload: []byte("{}")})
					countTrue(t, &fresh, &mu, ok, err)
				})
				if fresh != 1 {
					t.Fatalf("round %d: %d replicas queued the delivery, want exactly 1", round, fresh)
				}
			}
		})
		t.Run("claims", func(t *testing.T) {
			u := newURL(t)
			a, b := openStore(t, u), openStore(t, u)
			const n = 40
			for i := range n {
				if _, err := a.EnqueueDelivery(ctx, Delivery{ID: fmt.Sprintf("d%02d", i), Event: "push"}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			claimedBy := map[string]string{}
			var wg sync.WaitGroup
			for w := range 4 {
				s := []*Store{a, b}[w%2]
				wg.Go(func() {
					worker := fmt.Sprintf("worker-%d", w)
					for {
						d, err := s.ClaimDelivery(ctx, worker, time.Hour)
						if err != nil {
							t.Error(err)
							return
						}
						if d == nil {
							return
						}
						mu.Lock()
						if prev, dup := claimedBy[d.ID]; dup {
							t.Errorf("delivery %s claimed by %s and %s", d.ID, prev, worker)
						}
						claimedBy[d.ID] = worker
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(claimedBy) != n {
				t.Fatalf("%d of %d deliveries claimed", len(claimedBy), n)
			}
		})
		t.Run("lease", func(t *testing.T) {
			for round := range 10 {
				var mu sync.Mutex
				holders := 0
				race(func(s *Store, i int) {
					ok, err := s.AcquireLease(ctx, fmt.Sprintf("daily-%d", round), fmt.Sprintf("replica-%d", i), time.Hour)
					countTrue(t, &holders, &mu, ok, err)
				})
				if holders != 1 {
					t.Fatalf("round %d: %d holders, want exactly 1", round, holders)
				}
			}
		})
		t.Run("environment lock", func(t *testing.T) {
			var mu sync.Mutex
			winners := 0
			var winner string
			var others []*EnvLock
			race(func(s *Store, i int) {
				by := fmt.Sprintf("U%d", i)
				ok, existing, err := s.Lock(ctx, "pay", "prod", by, "freeze")
				countTrue(t, &winners, &mu, ok, err)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					winner = by
				} else {
					others = append(others, existing)
				}
			})
			if winners != 1 {
				t.Fatalf("%d lock holders, want exactly 1", winners)
			}
			for _, l := range others {
				if l == nil || l.By != winner {
					t.Errorf("loser saw lock %+v, want held by %s", l, winner)
				}
			}
		})
		t.Run("once", func(t *testing.T) {
			var mu sync.Mutex
			firsts := 0
			race(func(s *Store, _ int) {
				ok, err := s.Once(ctx, "slack-envelope", "env-123")
				countTrue(t, &firsts, &mu, ok, err)
			})
			if firsts != 1 {
				t.Fatalf("%d replicas saw the envelope first, want exactly 1", firsts)
			}
		})
		t.Run("append once", func(t *testing.T) {
			var mu sync.Mutex
			firsts := 0
			race(func(s *Store, i int) {
				_, ok, err := s.AppendOnce(ctx, "retro-close", "deploy 7 #12", compliance.Evidence{Kind: "retro_review", Subject: "deploy 7", Body: map[string]int{"racer": i}})
				countTrue(t, &firsts, &mu, ok, err)
			})
			if firsts != 1 {
				t.Fatalf("%d replicas recorded the one-time event, want exactly 1", firsts)
			}
			n := 0
			if err := replicas[0].Records(ctx, "retro_review", "deploy 7", func(compliance.Record) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("%d records of the one-time event, want 1", n)
			}
		})
	})

	t.Run("AppendOnce", func(t *testing.T) {
		s := fresh(t)
		rec, first, err := s.AppendOnce(ctx, "retro-close", "k1", compliance.Evidence{Kind: "retro_review", Subject: "deploy 1", Body: "closed"})
		if err != nil || !first || rec.Seq != 1 {
			t.Fatalf("first AppendOnce = %+v, %v, %v; want record 1, true", rec, first, err)
		}
		if _, first, err := s.AppendOnce(ctx, "retro-close", "k1", compliance.Evidence{Kind: "retro_review", Subject: "deploy 1", Body: "again"}); err != nil || first {
			t.Fatalf("second AppendOnce = %v, %v; want false, nil", first, err)
		}
		if ok, err := s.Once(ctx, "retro-close", "k1"); err != nil || ok {
			t.Fatalf("Once after AppendOnce = %v, %v; want the key taken", ok, err)
		}
		// A record that cannot be written leaves the key free, so the event can be recorded later.
		if _, _, err := s.AppendOnce(ctx, "retro-close", "k2", compliance.Evidence{Kind: "retro_review", Subject: "bad\nsubject"}); err == nil {
			t.Fatal("AppendOnce with a newline in the subject succeeded")
		}
		if _, _, err := s.AppendOnce(ctx, "retro-close", "k3", compliance.Evidence{Kind: "retro_review", Body: func() {}}); err == nil {
			t.Fatal("AppendOnce with an unencodable body succeeded")
		}
		for _, k := range []string{"k2", "k3"} {
			if ok, err := s.Once(ctx, "retro-close", k); err != nil || !ok {
				t.Errorf("key %s after a failed AppendOnce: Once = %v, %v; want it still free", k, ok, err)
			}
		}
		if res, err := s.Verify(ctx); err != nil || !res.OK || res.Checked != 1 {
			t.Fatalf("Verify = %+v, %v; want 1 intact record", res, err)
		}
		// A write that fails inside the transaction takes the claim back with it.
		broken := fresh(t)
		if _, err := broken.db.Exec("DELETE FROM chain_head"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := broken.AppendOnce(ctx, "retro-close", "k4", compliance.Evidence{Kind: "retro_review", Subject: "deploy 4"}); err == nil || !strings.Contains(err.Error(), "chain head is missing") {
			t.Fatalf("AppendOnce without a chain head: err = %v, want the missing head named", err)
		}
		if ok, err := broken.Once(ctx, "retro-close", "k4"); err != nil || !ok {
			t.Errorf("key k4 after a rolled-back AppendOnce: Once = %v, %v; want it still free", ok, err)
		}
	})

	t.Run("Once", func(t *testing.T) {
		s := fresh(t)
		for _, c := range []struct {
			scope, key string
			want       bool
		}{
			{"slack", "e1", true}, {"slack", "e1", false}, {"slack", "e2", true}, {"github", "e1", true}, {"github", "e1", false},
		} {
			if got, err := s.Once(ctx, c.scope, c.key); err != nil || got != c.want {
				t.Errorf("Once(%s, %s) = %v, %v; want %v", c.scope, c.key, got, err, c.want)
			}
		}
	})

	t.Run("Deliveries", func(t *testing.T) {
		s := fresh(t)
		clk := newClock(s)
		claim := func(worker string) *Delivery {
			t.Helper()
			d, err := s.ClaimDelivery(ctx, worker, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		pending := func() int64 {
			t.Helper()
			n, err := s.PendingDeliveries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		payload := []byte("{\"ref\":\"refs/heads/main\"}\x00\xff")
		if fresh, err := s.EnqueueDelivery(ctx, Delivery{ID: "a", Event: "push", Payload: payload}); err != nil || !fresh {
			t.Fatalf("enqueue a: %v, %v", fresh, err)
		}
		clk.add(time.Second)
		if fresh, err := s.EnqueueDelivery(ctx, Delivery{ID: "a", Event: "push", Payload: []byte("redelivered")}); err != nil || fresh {
			t.Fatalf("redelivery of a: fresh=%v, %v", fresh, err)
		}
		if _, err := s.EnqueueDelivery(ctx, Delivery{ID: "b", Event: "pull_request"}); err != nil {
			t.Fatal(err)
		}
		if n := pending(); n != 2 {
			t.Fatalf("pending = %d, want 2", n)
		}

		d := claim("w1")
		if d == nil || d.ID != "a" || d.Event != "push" || string(d.Payload) != string(payload) || d.Attempts != 1 {
			t.Fatalf("first claim = %+v, want a (oldest) with its payload intact", d)
		}
		if d := claim("w2"); d == nil || d.ID != "b" || len(d.Payload) != 0 {
			t.Fatalf("second claim = %+v, want b", d)
		}
		if d := claim("w3"); d != nil {
			t.Fatalf("claimed %s while every delivery is leased", d.ID)
		}
		// w1 dies without completing a: once its lease runs out, a is handed out again.
		if err := s.CompleteDelivery(ctx, "b", 1, nil); err != nil {
			t.Fatal(err)
		}
		if st, err := s.DeliveryState(ctx, "b"); err != nil || st != "done" {
			t.Fatalf("state of b = %q, %v, want done", st, err)
		}
		if st, err := s.DeliveryState(ctx, "a"); err != nil || st != "pending" {
			t.Fatalf("state of a = %q, %v, want pending", st, err)
		}
		if _, err := s.DeliveryState(ctx, "never"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("state of a delivery never queued: %v, want ErrNotFound", err)
		}
		clk.add(61 * time.Second)
		d = claim("w3")
		if d == nil || d.ID != "a" || d.Attempts != 2 {
			t.Fatalf("claim after the lease expired = %+v, want a on attempt 2", d)
		}
		// A failure waits out the backoff before the next attempt.
		if err := s.CompleteDelivery(ctx, "a", 2, errors.New("github: 502 Bad Gateway")); err != nil {
			t.Fatal(err)
		}
		if d := claim("w3"); d != nil {
			t.Fatalf("claimed %s during its backoff", d.ID)
		}
		clk.add(deliveryBackoff(2))
		d = claim("w3")
		if d == nil || d.ID != "a" || d.Attempts != 3 || d.LastError != "github: 502 Bad Gateway" {
			t.Fatalf("claim after backoff = %+v", d)
		}
		// w1, whose lease ran out long ago, finishes late: its outcome no longer counts.
		if err := s.CompleteDelivery(ctx, "a", 1, errors.New("late failure")); !errors.Is(err, ErrStaleClaim) {
			t.Fatalf("a stale claim's outcome: %v, want ErrStaleClaim", err)
		}
		if err := s.CompleteDelivery(ctx, "a", 3, nil); err != nil {
			t.Fatal(err)
		}
		// Nor can a late failure of a finished delivery put it back in the queue.
		if err := s.CompleteDelivery(ctx, "a", 3, errors.New("late failure")); !errors.Is(err, ErrStaleClaim) {
			t.Fatalf("completing a finished delivery again: %v, want ErrStaleClaim", err)
		}
		clk.add(time.Hour)
		if d := claim("w3"); d != nil {
			t.Fatalf("claimed completed delivery %s", d.ID)
		}
		if n := pending(); n != 0 {
			t.Fatalf("pending = %d after both completed", n)
		}
		if err := s.CompleteDelivery(ctx, "nope", 1, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("completing an unknown delivery: %v", err)
		}

		// One that always fails, and one that always kills its worker, both end up dead.
		for _, id := range []string{"failing", "crashing"} {
			if _, err := s.EnqueueDelivery(ctx, Delivery{ID: id, Event: "push"}); err != nil {
				t.Fatal(err)
			}
			for attempt := 1; attempt <= MaxDeliveryAttempts; attempt++ {
				d := claim("w")
				if d == nil || d.ID != id || d.Attempts != attempt {
					t.Fatalf("%s attempt %d: claimed %+v", id, attempt, d)
				}
				if id == "failing" {
					if err := s.CompleteDelivery(ctx, id, attempt, errors.New("bad payload")); err != nil {
						t.Fatal(err)
					}
				}
				clk.add(MaxDeliveryBackoff + time.Minute)
			}
			if d := claim("w"); d != nil {
				t.Fatalf("%s claimed again after %d attempts", d.ID, MaxDeliveryAttempts)
			}
			var state string
			if err := s.db.QueryRow("SELECT state FROM deliveries WHERE id = $1", id).Scan(&state); err != nil || state != "dead" {
				t.Fatalf("%s is %q (%v), want dead", id, state, err)
			}
		}
		if n := pending(); n != 0 {
			t.Fatalf("pending = %d, want dead deliveries not counted", n)
		}
	})

	t.Run("Deploys", func(t *testing.T) {
		s := fresh(t)
		clk := newClock(s)
		in := DeployRow{Service: "pay", Environment: "prod", Repo: "acme/pay", Ref: "v1.2.0", HeadSHA: "abc", BaseSHA: "def",
			Requester: "U1", Channel: "C1", Emergency: true, Reason: "prod down"}
		id, err := s.CreateDeploy(ctx, in)
		if err != nil || id <= 0 {
			t.Fatalf("CreateDeploy = %d, %v", id, err)
		}
		got, err := s.GetDeploy(ctx, id)
		want := in
		want.ID, want.State, want.CreatedAt, want.UpdatedAt = id, stateRequested, clk.now(), clk.now()
		if err != nil || !equalDeploy(got, want) {
			t.Fatalf("GetDeploy = %+v, %v\nwant %+v", got, err, want)
		}
		if _, err := s.GetDeploy(ctx, id+100); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetDeploy(unknown) error %v, want ErrNotFound", err)
		}

		clk.add(time.Minute)
		if ok, err := s.TransitionDeploy(ctx, id, stateRequested, stateReady); err != nil || !ok {
			t.Fatalf("requested -> ready: %v, %v", ok, err)
		}
		if ok, err := s.TransitionDeploy(ctx, id, stateRequested, stateRefused); err != nil || ok {
			t.Fatalf("stale requested -> refused: %v, %v; want refused by the compare-and-swap", ok, err)
		}
		if _, err := s.TransitionDeploy(ctx, id+100, stateReady, stateConfirming); !errors.Is(err, ErrNotFound) {
			t.Fatalf("transition of unknown deploy: %v", err)
		}
		if _, err := s.TransitionDeploy(ctx, id, stateReady, "shipped"); err == nil {
			t.Fatal("transition to an unknown state succeeded")
		}

		clk.add(time.Minute)
		if err := s.UpdateDeploy(ctx, id, func(d *DeployRow) { d.TS = "1700000000.000100"; d.GitHubDeploymentID = 987; d.CheckSeq = 42 }); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetDeploy(ctx, id)
		if got.State != stateReady || got.TS != "1700000000.000100" || got.GitHubDeploymentID != 987 || got.CheckSeq != 42 ||
			got.Channel != "C1" || !got.UpdatedAt.Equal(clk.now()) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("after update: %+v", got)
		}
		if err := s.UpdateDeploy(ctx, id, func(d *DeployRow) { d.State = stateDeployed; d.TS = "x" }); err == nil {
			t.Fatal("UpdateDeploy changed the state")
		}
		if got, _ := s.GetDeploy(ctx, id); got.State != stateReady || got.TS != "1700000000.000100" {
			t.Fatalf("a refused update left %+v", got)
		}
		if err := s.UpdateDeploy(ctx, id+100, func(*DeployRow) {}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of unknown deploy: %v", err)
		}

		if d, err := s.DeployByGitHubID(ctx, "acme/pay", 987); err != nil || d.ID != id {
			t.Fatalf("DeployByGitHubID = %+v, %v", d, err)
		}
		if _, err := s.DeployByGitHubID(ctx, "acme/web", 987); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeployByGitHubID in another repo: %v", err)
		}

		var prod []int64
		for i := range 3 {
			id, err := s.CreateDeploy(ctx, DeployRow{Service: "pay", Environment: "prod", Repo: "acme/pay", Ref: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			prod = append(prod, id)
		}
		if _, err := s.CreateDeploy(ctx, DeployRow{Service: "pay", Environment: "staging", Repo: "acme/pay", Ref: "s"}); err != nil {
			t.Fatal(err)
		}
		recent, err := s.RecentDeploys(ctx, "pay", "prod", 2)
		if err != nil || len(recent) != 2 || recent[0].ID != prod[2] || recent[1].ID != prod[1] {
			t.Fatalf("RecentDeploys = %+v, %v; want %d, %d", recent, err, prod[2], prod[1])
		}
	})

	t.Run("Locks", func(t *testing.T) {
		s := fresh(t)
		clk := newClock(s)
		if l, err := s.GetLock(ctx, "pay", "prod"); err != nil || l != nil {
			t.Fatalf("GetLock on a free env = %+v, %v", l, err)
		}
		if ok, l, err := s.Lock(ctx, "pay", "prod", "U1", "quarter close"); err != nil || !ok || l != nil {
			t.Fatalf("Lock = %v, %+v, %v", ok, l, err)
		}
		want := &EnvLock{Service: "pay", Environment: "prod", By: "U1", Reason: "quarter close", At: clk.now()}
		clk.add(time.Minute)
		ok, l, err := s.Lock(ctx, "pay", "prod", "U2", "hotfix")
		if err != nil || ok || !equalLock(l, want) {
			t.Fatalf("second Lock = %v, %+v, %v; want refused, held as %+v", ok, l, err, want)
		}
		if l, err := s.GetLock(ctx, "pay", "prod"); err != nil || !equalLock(l, want) {
			t.Fatalf("GetLock = %+v, %v", l, err)
		}
		if ok, _, err := s.Lock(ctx, "pay", "staging", "U2", "test"); err != nil || !ok {
			t.Fatalf("lock of another environment: %v, %v", ok, err)
		}
		if was, err := s.Unlock(ctx, "pay", "prod"); err != nil || !was {
			t.Fatalf("Unlock = %v, %v", was, err)
		}
		if was, err := s.Unlock(ctx, "pay", "prod"); err != nil || was {
			t.Fatalf("second Unlock = %v, %v", was, err)
		}
		if ok, _, err := s.Lock(ctx, "pay", "prod", "U2", "hotfix"); err != nil || !ok {
			t.Fatalf("Lock after unlock: %v, %v", ok, err)
		}
	})

	t.Run("Leases", func(t *testing.T) {
		s := fresh(t)
		clk := newClock(s)
		acquire := func(holder string, want bool) {
			t.Helper()
			if ok, err := s.AcquireLease(ctx, "daily-summary", holder, time.Minute); err != nil || ok != want {
				t.Fatalf("AcquireLease(%s) = %v, %v; want %v", holder, ok, err, want)
			}
		}
		acquire("a", true)
		acquire("b", false)
		clk.add(50 * time.Second)
		acquire("a", true) // renewal: runs to 1m50s now
		clk.add(50 * time.Second)
		acquire("b", false)
		clk.add(11 * time.Second)
		acquire("b", true) // a stopped renewing
		acquire("a", false)
		if err := s.ReleaseLease(ctx, "daily-summary", "a"); err != nil {
			t.Fatal(err)
		}
		acquire("a", false) // a cannot release b's lease
		if err := s.ReleaseLease(ctx, "daily-summary", "b"); err != nil {
			t.Fatal(err)
		}
		acquire("a", true)
	})

	t.Run("State", func(t *testing.T) {
		s := fresh(t)
		if v, found, err := s.GetState(ctx, "reconcile/acme/pay"); err != nil || found || v != "" {
			t.Fatalf("GetState of unset key = %q, %v, %v", v, found, err)
		}
		for _, v := range []string{"2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", ""} {
			if err := s.SetState(ctx, "reconcile/acme/pay", v); err != nil {
				t.Fatal(err)
			}
			if got, found, err := s.GetState(ctx, "reconcile/acme/pay"); err != nil || !found || got != v {
				t.Fatalf("GetState = %q, %v, %v; want %q", got, found, err, v)
			}
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s := fresh(t)
		if first, err := s.Once(ctx, "slack", "old"); err != nil || !first {
			t.Fatal(first, err)
		}
		if n, err := s.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("pruned %d (%v) of nothing old", n, err)
		}
		if first, _ := s.Once(ctx, "slack", "old"); first {
			t.Fatal("a recent key was forgotten")
		}
		appendN(t, s, 1)
		// A posted-notice mark from long ago goes; other state (a reconcile cursor) stays.
		if err := s.SetState(ctx, "posted:merge_note:acme/pay#1", time.Now().Add(-100*24*time.Hour).UTC().Format(time.RFC3339)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetState(ctx, "reconcile.cursor:acme/pay", "2020-01-01T00:00:00Z"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("pruned %d (%v), want the key and the old mark", n, err)
		}
		if _, ok, _ := s.GetState(ctx, "reconcile.cursor:acme/pay"); !ok {
			t.Fatal("Prune removed a cursor")
		}
		if first, _ := s.Once(ctx, "slack", "old"); !first {
			t.Fatal("a pruned key is still remembered")
		}
		if res, err := s.Verify(ctx); err != nil || !res.OK || res.Checked != 1 {
			t.Fatalf("evidence touched by Prune: %+v %v", res, err)
		}
	})

	t.Run("Migrations", func(t *testing.T) {
		u := newURL(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := Open(ctx, u)
				if err != nil {
					t.Errorf("concurrent open: %v", err)
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		s := openStore(t, u)
		ms, _ := loadMigrations(s.Dialect())
		var n, newest int
		if err := s.db.QueryRow("SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &newest); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || newest != ms[len(ms)-1].version {
			t.Fatalf("schema_migrations has %d rows up to %d, want each of %d migrations once", n, newest, len(ms))
		}
		sqlExec(t, s, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future.sql', '')")
		if _, err := Open(ctx, u); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("open of a newer schema: %v, want refused", err)
		}
	})

	t.Run("OpenExisting", func(t *testing.T) {
		// Readers of evidence never create a store: an empty database or a missing file is an
		// error, not "0 records, chain intact".
		u := newURL(t)
		if s, err := OpenExisting(ctx, u); err == nil {
			s.Close()
			t.Fatal("OpenExisting created a store where there was none")
		} else if !strings.Contains(err.Error(), "no evidence store") && !strings.Contains(err.Error(), "holds no sockembot evidence store") {
			t.Fatalf("OpenExisting on nothing: %v", err)
		}
		openStore(t, u) // Open creates it
		s, err := OpenExisting(ctx, u)
		if err != nil {
			t.Fatalf("OpenExisting on a store: %v", err)
		}
		s.Close()
	})
	t.Run("AppendNeedsTheKey", func(t *testing.T) {
		u := newURL(t)
		appendN(t, openStore(t, u), 3)
		unkeyed, err := Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer unkeyed.Close()
		if _, err := unkeyed.Append(ctx, compliance.Evidence{Kind: compliance.EvidenceCheckRun, Subject: "x"}); err == nil || !strings.Contains(err.Error(), "without the evidence key") {
			t.Fatalf("Append without the key: %v, want refused", err)
		}
		// Without the key the links and the head are still checked, and the result says the
		// MACs were not.
		if res, err := unkeyed.Verify(ctx); err != nil || !res.OK || res.MACsChecked || res.Checked != 3 || res.Keyed() != 3 {
			t.Fatalf("Verify without the key = %+v, %v", res, err)
		}
		wrong, err := Open(ctx, u, WithKey(NewKey()))
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		if res, err := wrong.Verify(ctx); err != nil || res.OK || res.FirstBad != 1 || !strings.Contains(res.Problem, "not the one the chain was written with") {
			t.Fatalf("Verify with another key = %+v, %v", res, err)
		}
		if _, err := Open(ctx, u, WithKey(make([]byte, 16))); err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Fatalf("Open with a 16-byte key: %v", err)
		}
	})

	t.Run("AuthenticRecords", func(t *testing.T) {
		u := newURL(t)
		s := openStore(t, u)
		recs := appendN(t, s, 700) // subjects sha1..sha700, more than one query's worth
		collect := func(st *Store, subjects ...string) ([]int64, error) {
			var seqs []int64
			err := st.AuthenticRecords(ctx, compliance.EvidenceCheckRun, subjects, func(r compliance.Record) error {
				if want := recs[r.Seq-1]; r.Subject != want.Subject || string(r.Body) != string(want.Body) || !r.At.Equal(want.At) || r.Hash != want.Hash {
					t.Errorf("record %d = %+v, want %+v", r.Seq, r, want)
				}
				seqs = append(seqs, r.Seq)
				return nil
			})
			return seqs, err
		}
		var all []string
		for i := 700; i >= 1; i-- {
			all = append(all, fmt.Sprintf("sha%d", i))
		}
		all = append(all, "no-such-subject", "sha1; DROP TABLE evidence")
		if seqs, err := collect(s, all...); err != nil || len(seqs) != 700 {
			t.Fatalf("AuthenticRecords of 700 subjects: %d records, %v", len(seqs), err)
		}
		if seqs, err := collect(s, "sha3", "sha5"); err != nil || !slices.Equal(seqs, []int64{3, 5}) {
			t.Fatalf("AuthenticRecords(sha3, sha5) = %v, %v", seqs, err)
		}
		if seqs, err := collect(s); err != nil || len(seqs) != 0 {
			t.Fatalf("no subjects: %v, %v", seqs, err)
		}
		// Without the key nothing can be authenticated: nothing is reused.
		unkeyed, err := Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer unkeyed.Close()
		if seqs, err := collect(unkeyed, "sha3"); err != nil || len(seqs) != 0 {
			t.Fatalf("without the key: %v, %v", seqs, err)
		}
		// Someone with database access edits a record: it is refused, named, never passed on.
		dropGuard(t, s)
		sqlExec(t, s, `UPDATE evidence SET body = '{"n": 99}' WHERE seq = 5`)
		if seqs, err := collect(s, "sha3", "sha5"); err == nil || !strings.Contains(err.Error(), "record 5 does not match its MAC") || slices.Contains(seqs, 5) {
			t.Fatalf("edited record 5: %v, %v", seqs, err)
		}
		if seqs, err := collect(s, "sha3"); err != nil || !slices.Equal(seqs, []int64{3}) {
			t.Fatalf("an untouched record after the edit: %v, %v", seqs, err)
		}
	})

	t.Run("KeyedChainMigration", func(t *testing.T) {
		// A store the unkeyed code wrote: the first migration only, three plain SHA-256 records.
		legacy := func(t *testing.T) (string, []string) {
			u := newURL(t)
			hashes := writeLegacyStore(t, u, 3)
			return u, hashes
		}
		t.Run("opened with a key, appended to, verified", func(t *testing.T) {
			u, hashes := legacy(t)
			s := openStore(t, u)
			res, err := s.Verify(ctx)
			if err != nil || !res.OK || res.Checked != 3 || res.KeyedFrom != 4 || res.Unkeyed() != 3 || res.Keyed() != 0 || res.HeadHash != hashes[2] {
				t.Fatalf("Verify of the migrated legacy store = %+v, %v", res, err)
			}
			recs := appendN(t, s, 2)
			at := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
			if want := wantMAC(testKey, 4, hashes[2], 4, at, compliance.EvidenceCheckRun, "acme/pay", "sha1", []byte(`{"n":1}`)); recs[0].Seq != 4 || recs[0].PrevHash != hashes[2] || recs[0].Hash != want {
				t.Fatalf("first keyed record %+v, want seq 4 after %s with MAC %s", recs[0], hashes[2], want)
			}
			res, err = s.Verify(ctx)
			if err != nil || !res.OK || res.Checked != 5 || res.KeyedFrom != 4 || res.Unkeyed() != 3 || res.Keyed() != 2 || !res.MACsChecked || res.HeadHash != recs[1].Hash {
				t.Fatalf("Verify after two keyed appends = %+v, %v", res, err)
			}
			// Reopening (another replica, a restart) never moves the boundary.
			if res, err := openStore(t, u).Verify(ctx); err != nil || !res.OK || res.KeyedFrom != 4 {
				t.Fatalf("Verify after reopening = %+v, %v", res, err)
			}
		})
		for _, c := range []struct {
			name     string
			tamper   func(t *testing.T, s *Store)
			firstBad int64
			problem  string
		}{
			// The unkeyed part is pinned by the first keyed record's MAC, which covers its link.
			{"an unkeyed record edited and the unkeyed part re-hashed", func(t *testing.T, s *Store) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"legacy":20}' WHERE seq = 2`)
				rehash(t, s, 2, wantHash)
			}, 4, "the first keyed record"},
			{"the boundary moved up, the first keyed record re-hashed as unkeyed", func(t *testing.T, s *Store) {
				sqlExec(t, s, `UPDATE evidence SET body = '{"n":10}' WHERE seq = 4`)
				rehash(t, s, 4, wantHash)
				sqlExec(t, s, `UPDATE chain_head SET keyed_from = 5`)
			}, 5, "does not match its MAC"},
			{"the boundary moved back over the unkeyed records", func(t *testing.T, s *Store) {
				sqlExec(t, s, `UPDATE chain_head SET keyed_from = 1`)
			}, 1, "does not match its MAC"},
		} {
			t.Run(c.name, func(t *testing.T) {
				u, _ := legacy(t)
				s := openStore(t, u)
				appendN(t, s, 2)
				dropGuard(t, s)
				c.tamper(t, s)
				res, err := s.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.OK || res.FirstBad != c.firstBad || !strings.Contains(res.Problem, c.problem) {
					t.Errorf("Verify = %+v, want first bad %d with %q", res, c.firstBad, c.problem)
				}
			})
		}
	})

	t.Run("PassedOffAsUnkeyed", func(t *testing.T) {
		// The one rewrite that leaves no keyed record to contradict it: every record re-hashed
		// with SHA-256 and the boundary moved just past the head. Verify cannot tell it from a
		// store not yet written with a key, so it reports that nothing is keyed (audit verify
		// does not call that intact), and an anchor from outside the database catches it.
		s := fresh(t)
		recs := appendN(t, s, 5)
		dropGuard(t, s)
		rehash(t, s, 1, wantHash)
		sqlExec(t, s, `UPDATE chain_head SET keyed_from = 6`)
		res, err := s.Verify(ctx)
		if err != nil || !res.OK || res.Keyed() != 0 || res.Unkeyed() != 5 {
			t.Fatalf("Verify = %+v, %v; want intact with no keyed record", res, err)
		}
		if r, _, _ := s.RecordAt(ctx, 5); r.Hash == recs[4].Hash {
			t.Fatal("the rewrite kept record 5's MAC: an anchor could not catch it")
		}
	})
	t.Run("CrashSafety", func(t *testing.T) { testCrash(t, newURL(t)) })
}

// writeLegacyStore writes, at u, a store as the code before the keyed chain left it: only the
// first migration, and n records chained with plain SHA-256. It returns their hashes.
func writeLegacyStore(t *testing.T, u string, n int) []string {
	t.Helper()
	dialect, driver, dsn, err := parseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := loadMigrations(dialect)
	if err != nil || ms[0].version != 1 {
		t.Fatalf("migrations: %v", err)
	}
	for _, q := range []string{
		"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
		ms[0].sql,
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, '" + ms[0].name + "', '2024-01-01T00:00:00Z')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("legacy schema: %v", err)
		}
	}
	prev := GenesisHash
	var hashes []string
	at := time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC)
	for i := range n {
		seq, body := int64(i+1), fmt.Sprintf(`{"legacy":%d}`, i+1)
		at := at.Add(time.Duration(i) * time.Hour)
		h := wantHash(prev, seq, at, compliance.EvidenceMergeVerdict, "acme/pay", fmt.Sprintf("acme/pay#%d", seq), []byte(body))
		if _, err := db.Exec(`INSERT INTO evidence (seq, at, at_ns, kind, repo, subject, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			seq, at.Format(time.RFC3339Nano), at.UnixNano(), compliance.EvidenceMergeVerdict, "acme/pay", fmt.Sprintf("acme/pay#%d", seq), body, prev, h); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1", seq, h); err != nil {
			t.Fatal(err)
		}
		hashes, prev = append(hashes, h), h
	}
	return hashes
}

func equalDeploy(a, b DeployRow) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func equalLock(a, b *EnvLock) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.At, y.At = time.Time{}, time.Time{}
	return x == y && a.At.Equal(b.At)
}

func appendN(t *testing.T, s *Store, n int) []compliance.Record {
	t.Helper()
	var recs []compliance.Record
	at := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		rec, err := s.Append(context.Background(), compliance.Evidence{
			At: at.Add(time.Duration(i) * time.Minute), Kind: compliance.EvidenceCheckRun, Repo: "acme/pay",
			Subject: fmt.Sprintf("sha%d", i+1), Body: map[string]int{"n": i + 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func sqlExec(t *testing.T, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// dropGuard removes the append-only triggers, as someone with write access to the database could.
func dropGuard(t *testing.T, s *Store) {
	on := ""
	if s.Dialect() == Postgres {
		on = " ON evidence"
	}
	sqlExec(t, s, "DROP TRIGGER evidence_no_update"+on)
	sqlExec(t, s, "DROP TRIGGER evidence_no_delete"+on)
}

// forge inserts a record at seq whose MAC is computed correctly, with the key, over its content
// and prev: what only someone holding the key could do.
func forge(t *testing.T, s *Store, seq int64, prev string) {
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"override":"nobody saw this"}`)
	sqlExec(t, s, `INSERT INTO evidence (seq, at, at_ns, kind, repo, subject, body, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		seq, at.Format(time.RFC3339Nano), at.UnixNano(), compliance.EvidenceOverride, "acme/pay", "deploy-1", string(body), prev,
		wantMAC(testKey, 1, prev, seq, at, compliance.EvidenceOverride, "acme/pay", "deploy-1", body))
}

// rehash recomputes the hash of every record from seq on with formula, each linked to the one
// before, and moves the chain head to the last: a rewrite by someone with database access.
func rehash(t *testing.T, s *Store, from int64, formula func(prev string, seq int64, at time.Time, kind, repo, subject string, body []byte) string) {
	t.Helper()
	type row struct {
		seq                  int64
		at, kind, repo, subj string
		body                 []byte
	}
	rows, err := s.db.Query("SELECT seq, at, kind, repo, subject, body FROM evidence WHERE seq >= $1 ORDER BY seq", from)
	if err != nil {
		t.Fatal(err)
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.at, &r.kind, &r.repo, &r.subj, &r.body); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	prev := GenesisHash
	if from > 1 {
		if err := s.db.QueryRow("SELECT hash FROM evidence WHERE seq = $1", from-1).Scan(&prev); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range all {
		at, err := time.Parse(time.RFC3339Nano, r.at)
		if err != nil {
			t.Fatal(err)
		}
		h := formula(prev, r.seq, at, r.kind, r.repo, r.subj, r.body)
		sqlExec(t, s, "UPDATE evidence SET prev_hash = $1, hash = $2 WHERE seq = $3", prev, h, r.seq)
		prev = h
	}
	sqlExec(t, s, "UPDATE chain_head SET hash = $1", prev)
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, dialect, path string
	}{
		{"", SQLite, "sockembot.db"},
		{"sqlite:///var/lib/sockembot/evidence.db", SQLite, "/var/lib/sockembot/evidence.db"},
		{"sqlite://evidence.db", SQLite, "evidence.db"},
		{"/tmp/x.db", SQLite, "/tmp/x.db"},
		{"postgres://u:p@db/sockembot", Postgres, ""},
		{"postgresql://db/sockembot?sslmode=require", Postgres, ""},
	} {
		dialect, _, dsn, err := parseURL(c.url)
		if err != nil || dialect != c.dialect {
			t.Errorf("parseURL(%q) = %s, %v", c.url, dialect, err)
			continue
		}
		if c.dialect == SQLite && (!strings.HasPrefix(dsn, c.path+"?") || !strings.Contains(dsn, "journal_mode(WAL)") ||
			!strings.Contains(dsn, "_txlock=immediate") || !strings.Contains(dsn, "busy_timeout(5000)")) {
			t.Errorf("parseURL(%q) DSN %q", c.url, dsn)
		}
	}
	for _, bad := range []string{"mysql://root:hunter2@db/x", "sqlite://", "file:x.db?mode=memory", ":memory:", "x.db?_pragma=foo"} {
		if _, _, _, err := parseURL(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseURL(%q) error %v, want refused without the password", bad, err)
		}
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://sockembot:hunter2@127.0.0.1:1/sockembot?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open error %v, want an error without the password", err)
	}
}

func TestSQLiteFileIsWAL(t *testing.T) {
	s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "wal.db"))
	var mode string
	var sync int
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if s.Dialect() != SQLite {
		t.Fatalf("Dialect = %q", s.Dialect())
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for _, in := range []string{
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)), " " + hex.EncodeToString(raw) + "\n",
		base64.StdEncoding.EncodeToString(raw),
	} {
		if k, err := ParseKey(in); err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", in, k, err)
		}
	}
	secret := "c0ffee" + strings.Repeat("ab", 10) // hex, but only 13 bytes
	for _, in := range []string{"", "   ", secret, secret + "a", "not a key at all!", base64.StdEncoding.EncodeToString(raw[:31])} {
		k, err := ParseKey(in)
		if err == nil {
			t.Errorf("ParseKey(%q) = %x, want refused", in, k)
		} else if strings.TrimSpace(in) != "" && strings.Contains(err.Error(), strings.TrimSpace(in)) {
			t.Errorf("ParseKey's error repeats the key: %v", err)
		}
	}
}
