package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"sockembot/compliance"
)

// GenesisHash is the prev_hash of the first record.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// VerifyResult is the outcome of walking the chain. FirstBad is the first sequence number that
// is missing or does not check out (0 when OK); Checked counts the records found intact before it.
type VerifyResult struct {
	OK       bool
	Checked  int64
	FirstBad int64
	Problem  string
	// HeadSeq and HeadHash identify the newest record of an intact chain (HeadHash is its MAC
	// when it is keyed). Kept outside the database (a deploy's Slack thread, the daily summary),
	// they let a later verify prove the chain up to that point was neither rewritten nor cut.
	HeadSeq  int64
	HeadHash string
	// KeyedFrom is the first record of the keyed part of the chain: the records before it were
	// written, plain SHA-256, before the store had a key. MACsChecked says whether the keyed
	// part's MACs were checked (Verify had the key); without them only the links between the
	// records, and the unkeyed part's hashes, were.
	KeyedFrom   int64
	MACsChecked bool
}

// Unkeyed and Keyed count the records of an intact chain on each side of KeyedFrom.
func (r VerifyResult) Unkeyed() int64 { return max(0, min(r.KeyedFrom-1, r.HeadSeq)) }
func (r VerifyResult) Keyed() int64   { return r.HeadSeq - r.Unkeyed() }

// chainHash is the unkeyed formula, of the records written before the chain was keyed:
// hex(sha256(prev "\n" seq "\n" at "\n" kind "\n" repo "\n" subject "\n" body)). Append refuses
// newlines in kind, repo and subject, so the fields cannot be shifted into each other without
// changing the hash; body (JSON) and at (RFC 3339) never contain one.
func chainHash(prev string, seq int64, at, kind, repo, subject string, body []byte) string {
	h := sha256.New()
	writeFields(h, prev, seq, at, kind, repo, subject, body)
	return hex.EncodeToString(h.Sum(nil))
}

// macDomain starts every MAC's input. It names the formula, so that a later one can never be fed
// an input that reads the same under this one.
const macDomain = "sockembot evidence hmac-sha256 v1"

// chainMAC is the keyed formula: hex(HMAC-SHA256(key, macDomain "\n" keyedFrom "\n" prev "\n"
// seq "\n" at "\n" kind "\n" repo "\n" subject "\n" body)). keyedFrom, the first keyed record,
// is covered so that moving the boundary breaks every keyed record that remains.
func chainMAC(key []byte, keyedFrom int64, prev string, seq int64, at, kind, repo, subject string, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macDomain + "\n" + strconv.FormatInt(keyedFrom, 10) + "\n"))
	writeFields(h, prev, seq, at, kind, repo, subject, body)
	return hex.EncodeToString(h.Sum(nil))
}

func writeFields(h hash.Hash, prev string, seq int64, at, kind, repo, subject string, body []byte) {
	for _, f := range []string{prev, strconv.FormatInt(seq, 10), at, kind, repo, subject} {
		h.Write([]byte(f))
		h.Write([]byte{'\n'})
	}
	h.Write(body)
}

// Append adds e to the chain and returns once the record is committed: an acknowledged record
// is durable. Appends are serialised across goroutines and processes by the chain head's lock.
func (s *Store) Append(ctx context.Context, e compliance.Evidence) (compliance.Record, error) {
	rec, _, err := s.appendIf(ctx, "", "", e)
	return rec, err
}

// AppendOnce appends e unless (scope, key) was claimed before, by Once or AppendOnce on any
// replica, and claims it in the same transaction: the claim and the record commit together or
// not at all. It suits evidence of a one-time event (a retroactive review closed) that two
// replicas or a redelivery may report at once. first is false, and nothing is written, when
// the key was already claimed.
func (s *Store) AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (rec compliance.Record, first bool, err error) {
	if scope == "" || key == "" {
		return compliance.Record{}, false, errors.New("store: append once: scope and key must be set")
	}
	return s.appendIf(ctx, scope, key, e)
}

func (s *Store) appendIf(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error) {
	if e.Kind == "" {
		return compliance.Record{}, false, errors.New("store: append evidence: kind is empty")
	}
	if s.key == nil {
		// An unkeyed record in the keyed part would read as tampering at the next verify.
		return compliance.Record{}, false, fmt.Errorf("store: append %s evidence: the store was opened without the evidence key, and the chain is keyed", e.Kind)
	}
	if strings.Contains(e.Kind+e.Repo+e.Subject, "\n") {
		return compliance.Record{}, false, fmt.Errorf("store: append %s evidence: kind, repo and subject must not contain newlines", e.Kind)
	}
	body, err := json.Marshal(e.Body)
	if err != nil {
		return compliance.Record{}, false, fmt.Errorf("store: append %s evidence: encode body: %w", e.Kind, err)
	}
	at := e.At
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	atText := at.Format(time.RFC3339Nano)
	rec := compliance.Record{Kind: e.Kind, Repo: e.Repo, Subject: e.Subject, Body: body}
	rec.At, _ = time.Parse(time.RFC3339Nano, atText) // what a reader will get back
	first := true
	err = s.write(ctx, func(tx *sql.Tx) error {
		if scope != "" {
			var err error
			if first, err = s.claim(ctx, tx, scope, key); err != nil || !first {
				return err
			}
		}
		// The head row's lock (PG) or the immediate transaction (SQLite) makes read-head,
		// insert, move-head one step. Reading the head rather than the newest row means a
		// deleted newest row stays detectable: the next record still links to the lost one.
		var keyedFrom int64
		if err := tx.QueryRowContext(ctx, "SELECT seq, hash, keyed_from FROM chain_head WHERE id = 1"+s.forUpdate()).
			Scan(&rec.Seq, &rec.PrevHash, &keyedFrom); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errors.New("the chain head is missing: run `sockembot audit verify`")
			}
			return fmt.Errorf("read chain head: %w", err)
		}
		rec.Seq++
		if keyedFrom < 1 || keyedFrom > rec.Seq {
			// The boundary is set once, at or before the head; anywhere else it was moved.
			return fmt.Errorf("the chain head says the keyed part starts at record %d, past the next record %d: run `sockembot audit verify`", keyedFrom, rec.Seq)
		}
		rec.Hash = chainMAC(s.key, keyedFrom, rec.PrevHash, rec.Seq, atText, rec.Kind, rec.Repo, rec.Subject, body)
		if _, err := tx.ExecContext(ctx, `INSERT INTO evidence (seq, at, at_ns, kind, repo, subject, body, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			rec.Seq, atText, nanos(at), rec.Kind, rec.Repo, rec.Subject, string(body), rec.PrevHash, rec.Hash); err != nil {
			return fmt.Errorf("insert record %d: %w", rec.Seq, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1", rec.Seq, rec.Hash); err != nil {
			return fmt.Errorf("move chain head: %w", err)
		}
		return nil
	})
	if err != nil {
		return compliance.Record{}, false, fmt.Errorf("store: append %s evidence: %w", e.Kind, err)
	}
	if !first {
		return compliance.Record{}, false, nil
	}
	return rec, true, nil
}

// Head is the chain's newest record: its sequence number and hash, a MAC when the record is
// keyed (0 and the genesis hash when the chain is empty). Kept outside the database, it anchors
// `audit verify --anchor`.
func (s *Store) Head(ctx context.Context) (seq int64, hash string, err error) {
	if err := s.db.QueryRowContext(ctx, "SELECT seq, hash FROM chain_head WHERE id = 1").Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("store: chain head: %w", err)
	}
	return seq, hash, nil
}

const recordCols = "seq, at, kind, repo, subject, body, prev_hash, hash"

func scanRecord(rows interface{ Scan(...any) error }) (compliance.Record, error) {
	var r compliance.Record
	var at string
	var body []byte
	if err := rows.Scan(&r.Seq, &at, &r.Kind, &r.Repo, &r.Subject, &body, &r.PrevHash, &r.Hash); err != nil {
		return compliance.Record{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return compliance.Record{}, fmt.Errorf("record %d: time %q: %w", r.Seq, at, err)
	}
	r.At, r.Body = t, body
	return r, nil
}

// recordFilter builds the WHERE clause for kind and subject, "" meaning any. Building it rather
// than writing ($1 = ” OR kind = $1) lets both databases use the indexes.
func recordFilter(kind, subject string) (string, []any) {
	var conds []string
	var args []any
	if kind != "" {
		args = append(args, kind)
		conds = append(conds, fmt.Sprintf("kind = $%d", len(args)))
	}
	if subject != "" {
		args = append(args, subject)
		conds = append(conds, fmt.Sprintf("subject = $%d", len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Records calls fn for each record of kind about subject ("" matches any), oldest first. It
// streams: fn sees one record at a time. An error from fn stops the walk and is returned as is.
func (s *Store) Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error {
	where, args := recordFilter(kind, subject)
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordCols+" FROM evidence"+where+" ORDER BY seq", args...)
	if err != nil {
		return fmt.Errorf("store: read %s evidence about %q: %w", kind, subject, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return fmt.Errorf("store: read %s evidence about %q: %w", kind, subject, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read %s evidence about %q: %w", kind, subject, err)
	}
	return nil
}

// RecordAt is the record with sequence number seq; found is false when there is none.
func (s *Store) RecordAt(ctx context.Context, seq int64) (r compliance.Record, found bool, err error) {
	r, err = scanRecord(s.db.QueryRowContext(ctx, "SELECT "+recordCols+" FROM evidence WHERE seq = $1", seq))
	if errors.Is(err, sql.ErrNoRows) {
		return compliance.Record{}, false, nil
	}
	if err != nil {
		return compliance.Record{}, false, fmt.Errorf("store: evidence record %d: %w", seq, err)
	}
	return r, true, nil
}

// LastRecord is the newest record of kind about subject ("" matches any); found is false when
// there is none.
func (s *Store) LastRecord(ctx context.Context, kind, subject string) (r compliance.Record, found bool, err error) {
	where, args := recordFilter(kind, subject)
	r, err = scanRecord(s.db.QueryRowContext(ctx, "SELECT "+recordCols+" FROM evidence"+where+" ORDER BY seq DESC LIMIT 1", args...))
	if errors.Is(err, sql.ErrNoRows) {
		return compliance.Record{}, false, nil
	}
	if err != nil {
		return compliance.Record{}, false, fmt.Errorf("store: last %s evidence about %q: %w", kind, subject, err)
	}
	return r, true, nil
}

// Verify walks the whole chain in sequence order and reports the first record that was edited
// (its hash or MAC no longer matches its content), deleted (a gap, or the head pointing past the
// end), inserted or reordered (its prev_hash does not match the record before it, or it lies
// beyond the head). Without the key (WithKey) the keyed part's MACs cannot be checked: the result
// says so (MACsChecked), and the rest is checked all the same. It reads one row at a time inside
// one snapshot, so memory stays flat and concurrent appends do not look like tampering.
func (s *Store) Verify(ctx context.Context) (VerifyResult, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("store: verify: %w", err)
	}
	defer tx.Rollback()
	res, err := verifyChain(ctx, tx, s.key)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("store: verify: %w", err)
	}
	return res, nil
}

func verifyChain(ctx context.Context, tx *sql.Tx, key []byte) (VerifyResult, error) {
	res := VerifyResult{MACsChecked: key != nil}
	bad := func(seq int64, format string, args ...any) (VerifyResult, error) {
		res.FirstBad, res.Problem = seq, fmt.Sprintf(format, args...)
		return res, nil
	}
	var headSeq, keyedFrom int64
	var headHash string
	err := tx.QueryRowContext(ctx, "SELECT seq, hash, keyed_from FROM chain_head WHERE id = 1").Scan(&headSeq, &headHash, &keyedFrom)
	if errors.Is(err, sql.ErrNoRows) {
		return bad(1, "the chain head row is missing")
	}
	if err != nil {
		return res, fmt.Errorf("read chain head: %w", err)
	}
	res.KeyedFrom = keyedFrom
	if keyedFrom < 1 || keyedFrom > headSeq+1 {
		// Set once, at most one past the head of the time, and the head only moves forward.
		return bad(max(1, min(keyedFrom, headSeq+1)), "the chain head says the keyed part starts at record %d, which is past the head (%d): the boundary was moved, or the head moved back", keyedFrom, headSeq)
	}
	rows, err := tx.QueryContext(ctx, "SELECT seq, at, at_ns, kind, repo, subject, body, prev_hash, hash FROM evidence ORDER BY seq")
	if err != nil {
		return res, err
	}
	defer rows.Close()
	want, prev := int64(1), GenesisHash
	var body []byte
	for rows.Next() {
		var seq, atNs int64
		var at, kind, repo, subject, prevHash, hash string
		if err := rows.Scan(&seq, &at, &atNs, &kind, &repo, &subject, &body, &prevHash, &hash); err != nil {
			return res, err
		}
		switch {
		case seq > headSeq:
			return bad(seq, "record %d lies beyond the chain head (%d): it was inserted outside sockembot", seq, headSeq)
		case seq > want:
			return bad(want, "record %d is missing (the next record is %d): it was deleted", want, seq)
		case seq < want:
			return bad(seq, "record %d is out of sequence", seq)
		case prevHash != prev:
			return bad(seq, "record %d does not link to record %d: a record was inserted, replaced or reordered here", seq, seq-1)
		case strings.Contains(kind+repo+subject, "\n"):
			return bad(seq, "record %d has a newline in kind, repo or subject, which Append never writes", seq)
		case seq < keyedFrom && chainHash(prevHash, seq, at, kind, repo, subject, body) != hash:
			return bad(seq, "record %d does not match its hash: its content was edited", seq)
		case seq >= keyedFrom && key != nil && !hmac.Equal([]byte(chainMAC(key, keyedFrom, prevHash, seq, at, kind, repo, subject, body)), []byte(hash)):
			if seq == keyedFrom {
				return bad(seq, "record %d (the first keyed record) does not match its MAC: its content, or a record before it, was edited and the chain re-hashed without the evidence key; or the key given is not the one the chain was written with", seq)
			}
			return bad(seq, "record %d does not match its MAC: its content was edited (and re-hashed without the evidence key)", seq)
		}
		if t, err := time.Parse(time.RFC3339Nano, at); err != nil || t.UnixNano() != atNs {
			return bad(seq, "record %d: at_ns does not match its hashed time %q", seq, at)
		}
		res.Checked++
		want, prev = seq+1, hash
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	last := want - 1
	switch {
	case headSeq > last:
		return bad(last+1, "record %d is missing: the chain head says the chain ends at %d, the records end at %d", last+1, headSeq, last)
	case headHash != prev:
		return bad(last, "the chain head's hash does not match record %d: the head or the record was rewritten", last)
	}
	res.OK, res.HeadSeq, res.HeadHash = true, last, prev
	return res, nil
}

// subjectsPerQuery bounds the subjects of one AuthenticRecords query (SQLite and PostgreSQL
// both allow far more bind parameters; smaller statements plan faster).
const subjectsPerQuery = 500

// AuthenticRecords calls fn for each record of kind about one of subjects whose MAC checks out
// under the store's key, oldest first within each batch of subjects. It is for evidence that is
// reused as fact (a merged pull request's recorded facts): a record that does not match its MAC
// was edited in the database, and is an error naming it, never a fact. Records written before
// the chain was keyed, and every record when the store has no key, cannot be authenticated and
// are skipped: the caller fetches those facts again.
func (s *Store) AuthenticRecords(ctx context.Context, kind string, subjects []string, fn func(compliance.Record) error) error {
	if s.key == nil || len(subjects) == 0 {
		return nil
	}
	var keyedFrom int64
	if err := s.db.QueryRowContext(ctx, "SELECT keyed_from FROM chain_head WHERE id = 1").Scan(&keyedFrom); err != nil {
		return fmt.Errorf("store: read %s evidence: chain head: %w", kind, err)
	}
	for start := 0; start < len(subjects); start += subjectsPerQuery {
		batch := subjects[start:min(start+subjectsPerQuery, len(subjects))]
		args := []any{kind}
		marks := make([]string, len(batch))
		for i, sub := range batch {
			args = append(args, sub)
			marks[i] = fmt.Sprintf("$%d", i+2)
		}
		q := "SELECT " + recordCols + " FROM evidence WHERE kind = $1 AND subject IN (" + strings.Join(marks, ", ") + ") ORDER BY seq"
		if err := s.authentic(ctx, q, args, keyedFrom, fn); err != nil {
			return fmt.Errorf("store: read %s evidence: %w", kind, err)
		}
	}
	return nil
}

func (s *Store) authentic(ctx context.Context, q string, args []any, keyedFrom int64, fn func(compliance.Record) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r compliance.Record
		var at string
		var body []byte
		if err := rows.Scan(&r.Seq, &at, &r.Kind, &r.Repo, &r.Subject, &body, &r.PrevHash, &r.Hash); err != nil {
			return err
		}
		if r.Seq < keyedFrom {
			continue
		}
		// The MAC covers the time as it was written: the stored text.
		want := chainMAC(s.key, keyedFrom, r.PrevHash, r.Seq, at, r.Kind, r.Repo, r.Subject, body)
		if !hmac.Equal([]byte(want), []byte(r.Hash)) {
			return fmt.Errorf("record %d does not match its MAC: it was edited in the database; run `sockembot audit verify`", r.Seq)
		}
		if r.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return fmt.Errorf("record %d: time %q: %w", r.Seq, at, err)
		}
		r.Body = body
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
