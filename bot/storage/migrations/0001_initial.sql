-- Users and their conversation state. No names or message texts are kept: the coaching needs
-- only where the user is in the conversation, their time zone and their interview time.
CREATE TABLE users (
    user_id     INTEGER PRIMARY KEY,
    chat_id     INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT '{}',
    active      INTEGER NOT NULL DEFAULT 1,  -- 0 once Telegram says the user blocked the bot
    opted_out   INTEGER NOT NULL DEFAULT 0,  -- 1 after /stop, until the user writes again
    created_at  INTEGER NOT NULL,            -- unix seconds, UTC
    updated_at  INTEGER NOT NULL
);

-- Follow-up nudges: durable rows instead of in-memory jobs, so a restart loses none.
CREATE TABLE nudges (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,            -- unix seconds, UTC
    deadline    INTEGER,                     -- past it the nudge no longer makes sense
    state       TEXT    NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'expired', 'cancelled', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER
);

-- The dispatcher only ever asks "which pending nudges are due first": a partial index keeps
-- that lookup O(log n) and the index small (sent rows drop out of it).
CREATE INDEX nudges_pending_due ON nudges (due_at) WHERE state = 'pending';
CREATE INDEX nudges_user_state ON nudges (user_id, state);
