// Package store keeps sockembot's evidence and operational state on database/sql: SQLite by
// default (modernc.org/sqlite, pure Go) and PostgreSQL (pgx) when several replicas share one
// database.
//
// Evidence is an append-only hash chain: each record's hash covers its content and the previous
// record's hash, and a chain_head row written in the same transaction remembers the newest one, so
// Verify can name the first record that was edited, inserted, deleted or reordered. The chain is
// keyed (HMAC-SHA256 under a key kept outside the database, see WithKey), so someone who can
// write the database but not read the key cannot recompute it after an edit. Records written
// before the chain was keyed stay plain SHA-256, pinned by the first keyed record's MAC. What a
// key cannot stop is cutting the chain's tail and moving the head back: the head (seq and MAC)
// posted outside the database, in each deploy's Slack thread and the daily summary, is what
// `audit verify --anchor` catches that with.
//
// Everything else (deploys, deliveries, locks, leases, cursors) is mutable operational state whose
// every transition the callers also record as evidence.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"               // registers the "sqlite" driver; its Error carries the result code
	sqlite3 "modernc.org/sqlite/lib"

	"sockembot/compliance"
)

// Dialects as Dialect reports them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultPath is the SQLite file used when no database URL is configured.
const DefaultPath = "sockembot.db"

// ErrNotFound is returned when a deploy (or delivery) asked for by id does not exist: the
// domain's error kind, so a gate recognises it without knowing the store.
var ErrNotFound = compliance.ErrNotFound

// migrateLockKey is the PostgreSQL advisory lock held while migrating, so two replicas starting at
// once do not both apply the same migration. Any constant works; this one spells "sockembt".
const migrateLockKey int64 = 0x736f636b656d6274

//go:embed migrations
var migrations embed.FS

// Store is the evidence chain plus operational state, on SQLite or PostgreSQL.
type Store struct {
	db      *sql.DB
	dialect string
	url     string // to reopen the same database in tests; never printed (it may hold a password)

	// writeSem serialises this process's SQLite writers before they reach the file lock: SQLite's
	// busy handler polls with sleeps, so under contention it is slow and unfair, while a channel
	// queues writers in order. Other processes still wait on the lock (busy_timeout). Nil on PG.
	writeSem chan struct{}

	now func() time.Time // replaced in tests to expire leases without sleeping

	key []byte // the evidence key (WithKey); nil: the chain can be read, not appended to
}

// Open connects to url and applies any pending migrations. url is "" (./sockembot.db),
// "sqlite:///path/to/file.db", a plain file path, or "postgres://..." / "postgresql://...".
// Appending evidence needs WithKey.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	return open(ctx, url, true, opts)
}

// OpenExisting is Open for readers of evidence (audit verify and export): the database must
// already hold a sockembot store. It never creates an empty one, which would read as "no
// evidence, chain intact" to an auditor who ran it in the wrong directory or with a mistyped URL.
func OpenExisting(ctx context.Context, url string, opts ...Option) (*Store, error) {
	return open(ctx, url, false, opts)
}

func open(ctx context.Context, url string, create bool, opts []Option) (*Store, error) {
	dialect, driver, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	var keyed Store
	for _, o := range opts {
		o(&keyed)
	}
	if keyed.key != nil && len(keyed.key) < MinKeyBytes {
		return nil, fmt.Errorf("store: the evidence key is %d bytes long: at least %d are needed", len(keyed.key), MinKeyBytes)
	}
	if dialect == SQLite && !create {
		file, _, _ := strings.Cut(dsn, "?")
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("store: no evidence store at %s (set DATABASE_URL to the bot's database): %w", file, err)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, err)
	}
	s := &Store{db: db, dialect: dialect, url: url, now: time.Now, key: keyed.key}
	if dialect == SQLite {
		s.writeSem = make(chan struct{}, 1)
	}
	if err := s.connect(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", dialect, err)
	}
	if !create {
		var version int
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&version); err != nil || version == 0 {
			db.Close()
			return nil, fmt.Errorf("store: the %s database holds no sockembot evidence store (no schema): is DATABASE_URL the bot's database?", dialect)
		}
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", dialect, err)
	}
	return s, nil
}

// connect makes the first connection. Two processes creating the same SQLite file at once both
// switch it to WAL, which takes an exclusive lock, and SQLite answers one of them SQLITE_BUSY at
// once instead of waiting (waiting could deadlock). The file is in WAL mode a moment later, so
// trying again is the fix.
func (s *Store) connect(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || attempt == 20 || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// parseURL picks the dialect. Errors never repeat the URL: it may carry a password.
func parseURL(url string) (dialect, driver, dsn string, err error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return Postgres, "pgx", url, nil
	case url == "":
		url = DefaultPath
	case strings.HasPrefix(url, "sqlite://"):
		url = strings.TrimPrefix(url, "sqlite://")
	case strings.Contains(url, "://"):
		scheme, _, _ := strings.Cut(url, "://")
		return "", "", "", fmt.Errorf("store: unsupported database URL scheme %q (want sqlite:// or postgres://)", scheme)
	}
	if url == "" || strings.ContainsAny(url, "?#") || strings.HasPrefix(url, "file:") || strings.Contains(url, ":memory:") {
		// The store sets the connection parameters itself, and an in-memory database would be
		// a different empty database on every pooled connection.
		return "", "", "", fmt.Errorf("store: SQLite path must be a plain file path without parameters")
	}
	// WAL lets readers (export, verify) run beside the writer. synchronous=FULL makes a commit
	// durable before Append returns, so acknowledged evidence survives a power cut, not only a
	// crash. _txlock=immediate takes the write lock at BEGIN, so two writers never both read the
	// chain head and then collide at COMMIT.
	dsn = url + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)&_txlock=immediate"
	return SQLite, "sqlite", dsn, nil
}

// SetClock replaces the store's clock, which dates what callers leave undated (evidence records
// without a time, deploys, leases, deliveries). The demo runs on a fixed clock so that every
// run writes the same chain; set it before the store is used.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// write runs fn in a write transaction and commits it; fn must not call the store itself.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.writeSem != nil {
		select {
		case s.writeSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-s.writeSem }()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's write transaction already holds the
// whole database.
func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a version number", e.Name())
		}
		data, err := fs.ReadFile(migrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(data)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies each pending migration in its own transaction. The transaction also holds the
// migration lock (PG: an advisory lock; SQLite: the immediate write lock), and the applied check
// is made under it, so replicas starting together apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := s.write(ctx, func(tx *sql.Tx) error {
			if s.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
				return err
			}
			var newest int
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&newest); err != nil {
				return err
			}
			if newest > ms[len(ms)-1].version {
				// An older binary must not write to a schema it does not understand.
				return fmt.Errorf("database schema version %d is newer than this build knows (%d)", newest, ms[len(ms)-1].version)
			}
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = $1", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, s.now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
