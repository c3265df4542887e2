-- Who is sending a claimed nudge, and until when: a process renews its lease while it works,
-- and recovery takes back only expired leases, so a second process (a restart overlapping
-- the old one, a copy started by mistake) never resends what the first is sending. The claim
-- maps onto PostgreSQL's UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) later.
ALTER TABLE nudges ADD COLUMN claimed_by TEXT;
ALTER TABLE nudges ADD COLUMN lease_until INTEGER;

-- Named locks with a lease (the single poller): held while renewed, free once expired.
CREATE TABLE locks (
    name        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    until       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);
