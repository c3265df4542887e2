-- Start-up puts nudges a crash left in 'sending' back to pending. Without this (normally
-- empty) partial index that lookup scans every nudge, so start-up grew with the queue.
CREATE INDEX nudges_in_flight ON nudges (state) WHERE state = 'sending';
