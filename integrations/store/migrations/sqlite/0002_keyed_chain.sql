-- The chain is keyed from here on: each new record's hash is an HMAC-SHA256 under the evidence
-- key, which lives outside the database (SOCKEMBOT_EVIDENCE_KEY), so someone who can write the
-- database can no longer recompute the chain after an edit. Records already written stay as they
-- are (plain SHA-256); keyed_from is the first record of the keyed part. It is fixed here, once,
-- and never written again: every keyed record's MAC covers it, so moving the boundary to pass
-- keyed records off as unkeyed breaks the chain at the first keyed record that remains.
ALTER TABLE chain_head ADD COLUMN keyed_from INTEGER NOT NULL DEFAULT 1;
UPDATE chain_head SET keyed_from = seq + 1;
