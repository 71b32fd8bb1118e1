-- Upgrades a connhist database from schema version 1 to version 2.
--
-- Run by connhist-record inside the one transaction that also sets
-- PRAGMA user_version = 2, so a failure or a crash leaves version 1 intact.
-- No row of any table is changed; only how the rows are indexed:
--  * lifetimes_closed goes: the windowed reports bound their scans with
--    first_seen ranges and lifetimes_long instead.
--  * lifetimes_process becomes (pid, first_seen), so one process's lifetimes
--    in a window are one index range.
--  * lifetimes_long lists the lifetimes still open or longer than an hour.
--  * state_changes is stored in its primary key (WITHOUT ROWID) and loses
--    its index on at: a state change is found through its lifetime.

DROP INDEX IF EXISTS lifetimes_closed;
DROP INDEX IF EXISTS lifetimes_process;
CREATE INDEX lifetimes_process ON lifetimes(pid, first_seen);
CREATE INDEX lifetimes_long ON lifetimes(first_seen, closed_at)
    WHERE closed_at IS NULL OR closed_at - first_seen > 3600000;

DROP INDEX IF EXISTS state_changes_at;
CREATE TABLE state_changes_v2 (
    lifetime_id  INTEGER NOT NULL REFERENCES lifetimes(lifetime_id),
    at           INTEGER NOT NULL,
    state        TEXT NOT NULL,
    PRIMARY KEY (lifetime_id, at, state)
) WITHOUT ROWID;
INSERT INTO state_changes_v2(lifetime_id, at, state)
    SELECT lifetime_id, at, state FROM state_changes;
DROP TABLE state_changes;
ALTER TABLE state_changes_v2 RENAME TO state_changes;
