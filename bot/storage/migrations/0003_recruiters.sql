-- Recruiters: people approved by an administrator (ADMIN_IDS) or from the shell to create links
-- for their openings and see, with each candidate's consent, who is coming.
CREATE TABLE recruiters (
    user_id     INTEGER PRIMARY KEY,             -- Telegram user id (= private chat id)
    status      TEXT    NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'denied', 'removed')),
    name        TEXT,                            -- first name, shown to the administrators
    digest      INTEGER NOT NULL DEFAULT 1,      -- 0 after "no weekly digest"
    draft       TEXT    NOT NULL DEFAULT '{}',   -- a screen in progress: /newlink steps, a reply
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- An opening a recruiter invites candidates to.
CREATE TABLE openings (
    id            INTEGER PRIMARY KEY,
    recruiter_id  INTEGER NOT NULL REFERENCES recruiters(user_id),
    role          TEXT    NOT NULL,
    company       TEXT    NOT NULL,
    format        TEXT,                          -- "45 minutes, video, with the team lead"
    note          TEXT,                          -- a short note for candidates
    status        TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paused', 'closed')),
    created_at    INTEGER NOT NULL
);
CREATE INDEX openings_recruiter ON openings (recruiter_id);

-- Deep links of an opening, one per channel ("LinkedIn", "job fair"; NULL: the main link).
-- A new code replaces an old one (active = 0), whose candidates keep counting for the link.
CREATE TABLE links (
    id          INTEGER PRIMARY KEY,
    opening_id  INTEGER NOT NULL REFERENCES openings(id),
    code        TEXT    NOT NULL UNIQUE,         -- unguessable, the /start parameter
    channel     TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
CREATE INDEX links_opening ON links (opening_id);

-- A candidate of an opening: the first link that brought them (kept), the latest, and what the
-- recruiter may see. name is stored only with consent, and cleared when it is withdrawn.
CREATE TABLE candidates (
    user_id       INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    opening_id    INTEGER NOT NULL REFERENCES openings(id),
    first_link_id INTEGER NOT NULL REFERENCES links(id),
    last_link_id  INTEGER NOT NULL REFERENCES links(id),
    consent       INTEGER,                       -- NULL: not asked yet; 0 no; 1 yes
    name          TEXT,
    decision      TEXT,
    interview_at  INTEGER,
    attended      TEXT,
    first_at      INTEGER NOT NULL,
    last_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, opening_id)
);
CREATE INDEX candidates_opening ON candidates (opening_id, consent);
-- "Which opening is this candidate talking about now?": their latest link.
CREATE INDEX candidates_latest ON candidates (user_id, last_at);

-- The funnel: one row per candidate, opening and step the first time it is reached (steps:
-- opened, engaged, go, unsure, pass, time_set, reminded, attended, worry), with the channel
-- (the candidate's first link). worry holds the objection id for step 'worry', else ''.
CREATE TABLE funnel (
    opening_id  INTEGER NOT NULL,
    link_id     INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    step        TEXT    NOT NULL,
    worry       TEXT    NOT NULL DEFAULT '',
    at          INTEGER NOT NULL,
    PRIMARY KEY (opening_id, user_id, step, worry)
) WITHOUT ROWID;
-- /stats counts rows per step (and per worry) of an opening or a link since a date: these
-- cover those aggregates, so they read the index alone, never the table.
CREATE INDEX funnel_by_opening ON funnel (opening_id, step, at, worry);
CREATE INDEX funnel_by_link ON funnel (link_id, step, at, worry);
-- Deleting a candidate removes their rows through the cascade, which looks them up by user.
CREATE INDEX funnel_by_user ON funnel (user_id);

-- Questions relayed from a candidate to the recruiter, one open at a time, and the answers.
CREATE TABLE questions (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    opening_id    INTEGER NOT NULL REFERENCES openings(id),
    text          TEXT    NOT NULL,
    answer        TEXT,
    asked_at      INTEGER NOT NULL,
    answered_at   INTEGER
);
CREATE INDEX questions_user ON questions (user_id, asked_at);

-- Messages that are not replies (recruiter notifications, relayed questions and answers, the
-- weekly digest) go through the nudge queue too: durable, rate-limited, retried. payload holds
-- what the message needs; about_user_id is the candidate it concerns, so deleting a
-- candidate's data also drops every queued message about them.
ALTER TABLE nudges ADD COLUMN payload TEXT;
ALTER TABLE nudges ADD COLUMN about_user_id INTEGER REFERENCES users(user_id) ON DELETE CASCADE;
CREATE INDEX nudges_about ON nudges (about_user_id) WHERE about_user_id IS NOT NULL;
