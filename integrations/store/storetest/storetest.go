// Package storetest opens throwaway evidence stores for tests outside the store package: a
// SQLite file in the test's temp dir, and a fresh PostgreSQL schema when
// SOCKEMBOT_TEST_POSTGRES_URL names a server, each keyed with a random evidence key. (The
// store's own conformance suite has the same helpers inside the package.)
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"sockembot/integrations/store"
)

// PostgresEnv names the PostgreSQL server tests also run against; unset, those tests skip.
const PostgresEnv = "SOCKEMBOT_TEST_POSTGRES_URL"

// key is the evidence key of every store these helpers open: random for each test binary, and
// never printed.
var key = store.NewKey()

// Key is that evidence key, for a test that opens the same database again (a second replica,
// the CLI).
func Key() []byte { return append([]byte(nil), key...) }

// SQLite opens a store on a new SQLite file, closed when the test ends.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "sockembot.db"))
}

// Postgres opens a store on a new PostgreSQL schema, dropped when the test ends. It skips the
// test when SOCKEMBOT_TEST_POSTGRES_URL is not set.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set")
	}
	return open(t, SchemaURL(t, base))
}

// Each runs fn as a subtest on SQLite and, when configured, on PostgreSQL.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SchemaURL creates a fresh schema on the server at base, dropped when the test ends, and returns
// base with its search_path pointing there (pgx sends unknown URL parameters as settings).
func SchemaURL(t testing.TB, base string) string {
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

func open(t testing.TB, u string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), u, store.WithKey(key))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
