-- Evidence is the audit trail (SOC 2 CC8.1): rows are only ever inserted, each one hash-linked to
-- the one before, so an edit, insertion or deletion breaks the chain that `audit verify` walks.
CREATE TABLE evidence (
    seq       BIGINT PRIMARY KEY,
    at        TEXT   NOT NULL, -- RFC 3339 UTC: exactly the text that was hashed
    at_ns     BIGINT NOT NULL, -- the same instant in Unix nanoseconds, for range queries
    kind      TEXT   NOT NULL,
    repo      TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    body      TEXT   NOT NULL, -- canonical JSON, verbatim (not jsonb): re-hashing must see the same bytes
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);
CREATE INDEX evidence_kind_at ON evidence (kind, at_ns, seq);
CREATE INDEX evidence_subject ON evidence (subject, kind);

-- The guard stops mistakes and casual edits; the hash chain is what catches a determined one.
CREATE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence is append-only';
END;
$$;
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();

-- The head is written in the same transaction as each record, so removing the newest records
-- (which leaves a chain that is intact as far as it goes) is still detected. Its row lock is also
-- what serialises appends across replicas.
CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Operational state below is mutable; every transition of it is also recorded as evidence by
-- the callers. Times are Unix nanoseconds so both dialects compare them the same way.

CREATE TABLE once_keys (
    scope TEXT   NOT NULL,
    k     TEXT   NOT NULL,
    at_ns BIGINT NOT NULL,
    PRIMARY KEY (scope, k)
);

CREATE TABLE deliveries (
    id         TEXT    PRIMARY KEY,
    event      TEXT    NOT NULL,
    payload    BYTEA   NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_ns     BIGINT  NOT NULL, -- when it may next be claimed: enqueue, lease expiry or retry
    worker     TEXT    NOT NULL DEFAULT '',
    last_error TEXT    NOT NULL DEFAULT '',
    created_ns BIGINT  NOT NULL,
    done_ns    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (state, due_ns);

CREATE TABLE deploys (
    id                   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service              TEXT    NOT NULL,
    environment          TEXT    NOT NULL,
    repo                 TEXT    NOT NULL,
    ref                  TEXT    NOT NULL,
    head_sha             TEXT    NOT NULL DEFAULT '',
    base_sha             TEXT    NOT NULL DEFAULT '',
    requester            TEXT    NOT NULL DEFAULT '',
    channel              TEXT    NOT NULL DEFAULT '',
    ts                   TEXT    NOT NULL DEFAULT '',
    state                TEXT    NOT NULL CHECK (state IN
        ('requested', 'refused', 'ready', 'confirming', 'deployed', 'cancelled', 'failed')),
    check_seq            BIGINT  NOT NULL DEFAULT 0,
    github_deployment_id BIGINT  NOT NULL DEFAULT 0,
    emergency            BOOLEAN NOT NULL DEFAULT FALSE,
    reason               TEXT    NOT NULL DEFAULT '',
    created_ns           BIGINT  NOT NULL,
    updated_ns           BIGINT  NOT NULL
);
CREATE INDEX deploys_github ON deploys (repo, github_deployment_id);
CREATE INDEX deploys_service_env ON deploys (service, environment, id);

CREATE TABLE env_locks (
    service     TEXT   NOT NULL,
    environment TEXT   NOT NULL,
    locked_by   TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    at_ns       BIGINT NOT NULL,
    PRIMARY KEY (service, environment)
);

CREATE TABLE leases (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL,
    until_ns BIGINT NOT NULL
);

CREATE TABLE kv (
    k          TEXT   PRIMARY KEY,
    v          TEXT   NOT NULL,
    updated_ns BIGINT NOT NULL
);
