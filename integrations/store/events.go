package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"sockembot/compliance"
)

// Period selects the evidence recorded in [From, To), optionally of one repository (matched
// without regard to case, as GitHub names are) and of one kind. A zero To is open-ended.
type Period struct {
	From, To time.Time
	Repo     string
	Kind     string
}

// Evidence times are kept as nanoseconds since 1970 in a 64-bit integer, which spans the years
// 1678 to 2262; a period asked for must lie within it.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Validate refuses a period that is empty, reversed, or beyond what evidence times can hold: an
// export that silently lists nothing would mislead an auditor.
func (q Period) Validate() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return errors.New("the period needs both a start and an end")
	case !q.To.After(q.From):
		return fmt.Errorf("the period ends (%s) before it starts (%s)", q.To.Format(time.DateOnly), q.From.Format(time.DateOnly))
	case q.From.Before(minTime) || q.To.After(maxTime):
		return fmt.Errorf("the period must lie between %s and %s", minTime.Format(time.DateOnly), maxTime.Format(time.DateOnly))
	}
	return nil
}

// Events calls fn for every evidence record in q, in chain order. It streams: one record at a
// time, so memory stays flat however long the period. An error from fn stops the walk and is
// returned as is.
func (s *Store) Events(ctx context.Context, q Period, fn func(compliance.Record) error) error {
	query := "SELECT " + recordCols + " FROM evidence WHERE at_ns >= $1"
	args := []any{nanos(q.From)}
	if !q.To.IsZero() {
		args = append(args, nanos(q.To))
		query += fmt.Sprintf(" AND at_ns < $%d", len(args))
	}
	if q.Repo != "" {
		args = append(args, strings.ToLower(q.Repo))
		query += fmt.Sprintf(" AND lower(repo) = $%d", len(args))
	}
	if q.Kind != "" {
		args = append(args, q.Kind)
		query += fmt.Sprintf(" AND kind = $%d", len(args))
	}
	rows, err := s.db.QueryContext(ctx, query+" ORDER BY seq", args...)
	if err != nil {
		return fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return fmt.Errorf("store: events: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: events: %w", err)
	}
	return nil
}
