-- Updates as Telegram delivered them, stored before Telegram is told they arrived (the next
-- getUpdates offset, or the webhook's 200), and handled from here: a crash loses none, and a
-- redelivered one (same update_id) is handled once. handled_at is set in the same transaction
-- as the state the update led to; error says why one was skipped (unparseable, failed).
CREATE TABLE inbox (
    update_id   INTEGER PRIMARY KEY,
    payload     TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    handled_at  INTEGER,
    error       TEXT
);
-- The worker's question, "what is left to handle, oldest first": a small partial index.
CREATE INDEX inbox_unhandled ON inbox (update_id) WHERE handled_at IS NULL;
