-- Upgrades a connhist database from schema version 2 to version 3.
--
-- Run by connhist-record inside the one transaction that then runs
-- schema.sql (which creates what is new: codes, addrs, lifetime_blocks, the
-- indexes and the views) and sets PRAGMA user_version = 3, so a failure or a
-- crash leaves version 2 intact. Every lifetime and state change is kept;
-- what changes is how they are stored:
--  * lifetime ids are given again in first_seen order (then by old id), so
--    that a time window is an id range; state_changes follow their lifetime;
--  * addresses move into the addrs dictionary, names (proto, states, close
--    reasons, seen_by, offload states) become the small integers of codes;
--  * last_seen, closed_at and state change times become ms after first_seen;
--  * processes get a proc_id, by which lifetimes refer to their owner;
--  * what only Windows reports moves to lifetime_extras.

DROP VIEW IF EXISTS v_lifetimes;
DROP VIEW IF EXISTS v_listeners;
DROP VIEW IF EXISTS v_open;
DROP VIEW IF EXISTS v_connections;
DROP VIEW IF EXISTS v_runs;
DROP VIEW IF EXISTS v_last_sample;

-- Only what the copy below reads; schema.sql adds the rest of the table.
CREATE TABLE codes (
    field        TEXT NOT NULL,
    code         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (field, code)
) WITHOUT ROWID;
INSERT INTO codes(field, code, name) VALUES
    ('proto', 6, 'tcp'), ('proto', 17, 'udp'),
    ('state', 1, 'ESTABLISHED'), ('state', 2, 'SYN_SENT'), ('state', 3, 'SYN_RECV'),
    ('state', 4, 'FIN_WAIT1'), ('state', 5, 'FIN_WAIT2'), ('state', 6, 'TIME_WAIT'),
    ('state', 7, 'CLOSE'), ('state', 8, 'CLOSE_WAIT'), ('state', 9, 'LAST_ACK'),
    ('state', 10, 'LISTEN'), ('state', 11, 'CLOSING'), ('state', 12, 'NEW_SYN_RECV'),
    ('state', 13, 'UNCONN'), ('state', 15, 'UNKNOWN'),
    ('close_reason', 1, 'gone'), ('close_reason', 2, 'gone_while_stopped'),
    ('close_reason', 3, 'reboot'), ('close_reason', 4, 'readdressed'),
    ('seen_by', 1, 'destroy_event'), ('seen_by', 2, 'destroy_event_only'),
    ('seen_by', 3, 'destroy_event_time_wait'),
    ('offload_state', 0, 'in_host'), ('offload_state', 1, 'offloading'),
    ('offload_state', 2, 'offloaded'), ('offload_state', 3, 'uploading'),
    ('owner_source', 1, 'socket'), ('owner_source', 2, 'event'), ('owner_source', 3, 'listener');

CREATE TABLE addrs (
    addr_id      INTEGER PRIMARY KEY,
    addr         TEXT NOT NULL UNIQUE
);
INSERT INTO addrs(addr)
    SELECT local_addr FROM lifetimes UNION SELECT remote_addr FROM lifetimes WHERE remote_addr IS NOT NULL;

CREATE TABLE processes_v3 (
    proc_id      INTEGER PRIMARY KEY,
    pid          INTEGER NOT NULL,
    start_time   INTEGER NOT NULL,
    name         TEXT,
    path         TEXT,
    cmdline      TEXT,
    uid          INTEGER,
    user         TEXT,
    first_seen   INTEGER NOT NULL,
    UNIQUE (pid, start_time)
);
INSERT INTO processes_v3(pid, start_time, name, path, cmdline, uid, user, first_seen)
    SELECT pid, start_time, name, path, cmdline, uid, user, first_seen FROM processes ORDER BY first_seen, rowid;

-- Old id -> new id, in first_seen order.
CREATE TEMP TABLE upgrade_ids AS
    SELECT lifetime_id AS old_id, row_number() OVER (ORDER BY first_seen, lifetime_id) AS new_id
      FROM lifetimes;
CREATE UNIQUE INDEX temp.upgrade_ids_old ON upgrade_ids(old_id);

-- A state name's code; a name written by hand that is no state becomes UNKNOWN (15).
CREATE TEMP VIEW upgrade_state AS SELECT name, code FROM codes WHERE field = 'state';

-- The states list "A,B,C" as codes, 4 bits each, the latest lowest (the first 15).
CREATE TEMP TABLE upgrade_states AS
    WITH RECURSIVE split(id, rest, packed, n) AS (
        SELECT lifetime_id, states || ',', 0, 0 FROM lifetimes
        UNION ALL
        SELECT id, substr(rest, instr(rest, ',') + 1),
               CASE WHEN n < 15 THEN packed * 16 + COALESCE((SELECT code FROM upgrade_state
                                                            WHERE name = substr(rest, 1, instr(rest, ',') - 1)), 15)
                    ELSE packed END,
               n + 1
          FROM split WHERE rest != '')
    SELECT id, packed FROM split WHERE rest = '';
CREATE UNIQUE INDEX temp.upgrade_states_id ON upgrade_states(id);

CREATE TABLE lifetimes_v3 (
    lifetime_id  INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),
    proto        INTEGER NOT NULL CHECK (proto IN (6, 17)),
    family       INTEGER NOT NULL CHECK (family IN (4, 6)),
    local_addr_id  INTEGER NOT NULL REFERENCES addrs(addr_id),
    local_port   INTEGER NOT NULL,
    remote_addr_id INTEGER REFERENCES addrs(addr_id),
    remote_port  INTEGER,
    state        INTEGER NOT NULL,
    states       INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen_after INTEGER,
    closed_after INTEGER,
    close_reason INTEGER,
    proc_id      INTEGER REFERENCES processes(proc_id),
    holders      INTEGER,
    owner_source INTEGER,
    uid          INTEGER,
    inode        INTEGER,
    cookie       INTEGER,
    bytes_sent   INTEGER,
    bytes_received INTEGER,
    opened_after INTEGER,
    seen_by      INTEGER
);
INSERT INTO lifetimes_v3
    SELECT m.new_id, l.run_id, CASE l.proto WHEN 'tcp' THEN 6 ELSE 17 END, l.family,
           (SELECT addr_id FROM addrs WHERE addr = l.local_addr), l.local_port,
           (SELECT addr_id FROM addrs WHERE addr = l.remote_addr), l.remote_port,
           COALESCE((SELECT code FROM upgrade_state WHERE name = l.state), 15), s.packed,
           l.first_seen, l.last_seen - l.first_seen, l.closed_at - l.first_seen,
           (SELECT code FROM codes WHERE field = 'close_reason' AND name = l.close_reason),
           (SELECT proc_id FROM processes_v3 p WHERE p.pid = l.pid AND p.start_time = l.proc_start), l.holders,
           CASE WHEN l.pid IS NOT NULL THEN 1 END, -- version 2 knew owners only from their sockets
           l.uid, l.inode, l.cookie, l.bytes_sent, l.bytes_received, l.opened_after,
           (SELECT code FROM codes WHERE field = 'seen_by' AND name = l.seen_by)
      FROM lifetimes l
      JOIN upgrade_ids m ON m.old_id = l.lifetime_id
      JOIN upgrade_states s ON s.id = l.lifetime_id
     ORDER BY m.new_id;

CREATE TABLE state_changes_v3 (
    lifetime_id  INTEGER NOT NULL REFERENCES lifetimes(lifetime_id),
    at           INTEGER NOT NULL,
    state        INTEGER NOT NULL,
    PRIMARY KEY (lifetime_id, at, state)
) WITHOUT ROWID;
INSERT INTO state_changes_v3(lifetime_id, at, state)
    SELECT m.new_id, s.at - l.first_seen, COALESCE((SELECT code FROM upgrade_state WHERE name = s.state), 15)
      FROM state_changes s
      JOIN lifetimes l ON l.lifetime_id = s.lifetime_id
      JOIN upgrade_ids m ON m.old_id = s.lifetime_id;

CREATE TABLE lifetime_extras (
    lifetime_id  INTEGER PRIMARY KEY REFERENCES lifetimes(lifetime_id),
    local_scope  INTEGER,
    remote_scope INTEGER,
    created_at   INTEGER,
    offload_state INTEGER,
    owner_module TEXT,
    owner_module_path TEXT
);
INSERT INTO lifetime_extras
    SELECT m.new_id, l.local_scope, l.remote_scope, l.created_at,
           (SELECT code FROM codes WHERE field = 'offload_state' AND name = l.offload_state),
           l.owner_module, l.owner_module_path
      FROM lifetimes l JOIN upgrade_ids m ON m.old_id = l.lifetime_id
     WHERE COALESCE(l.local_scope, l.remote_scope, l.created_at, l.offload_state, l.owner_module,
                    l.owner_module_path) IS NOT NULL
     ORDER BY m.new_id;

DROP TABLE state_changes;
DROP TABLE lifetimes;
DROP TABLE processes;
ALTER TABLE processes_v3 RENAME TO processes;
ALTER TABLE lifetimes_v3 RENAME TO lifetimes;
ALTER TABLE state_changes_v3 RENAME TO state_changes;

CREATE TABLE lifetime_blocks (
    block        INTEGER PRIMARY KEY,
    min_first_seen INTEGER NOT NULL,
    max_first_seen INTEGER NOT NULL
);
INSERT INTO lifetime_blocks(block, min_first_seen, max_first_seen)
    SELECT lifetime_id >> 12, MIN(first_seen), MAX(first_seen) FROM lifetimes GROUP BY lifetime_id >> 12;

DROP VIEW temp.upgrade_state;
DROP TABLE temp.upgrade_states;
DROP TABLE temp.upgrade_ids;
