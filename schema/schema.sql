-- connhist database schema, version 4.
--
-- This file is the single source of the tables, indexes and views. Both
-- programs embed it at build time and run it on a new database; the version
-- below is written to PRAGMA user_version. schema/README.md documents every
-- column and shows example queries.
--
-- Conventions: times are INTEGER ms since 1970-01-01 UTC (*_after, state_changes.at: after first_seen).
-- The views add *_utc text columns (ISO 8601, UTC, milliseconds) for reading.
-- The tables keep addresses in a dictionary (addrs) and names as small
-- integers (codes); the views show them as text ('10.0.0.5', 'tcp',
-- 'ESTABLISHED'), so they can be typed into a WHERE clause. NULL always
-- means "not known" or "not applicable", never zero.

-- Space freed by --retain pruning is given back to the file system bit by
-- bit (PRAGMA incremental_vacuum). This must come before anything that
-- writes the file, even the user_version below.
PRAGMA auto_vacuum = INCREMENTAL;

PRAGMA user_version = 4;

-- One row per start of connhist-record (a continuous run or one --once run).
CREATE TABLE IF NOT EXISTS runs (
    run_id       INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,             -- NULL: still running, or it died
    end_reason   TEXT,                -- 'signal', 'duration', 'once'; 'died' when it never ended
    mode         TEXT NOT NULL,       -- 'continuous' or 'once'
    interval_ms  INTEGER NOT NULL,    -- sampling period (for --once: the schedule period)
    host         TEXT NOT NULL,
    os           TEXT NOT NULL,
    boot_id      TEXT,                -- the kernel's boot id; NULL where unknown
    boot_time    INTEGER,             -- when the machine booted
    sampler      TEXT NOT NULL,       -- 'netlink', 'bpf_iter' or 'procfs' (Linux)
    version      TEXT NOT NULL,       -- connhist version
    pid          INTEGER NOT NULL,    -- pid of the recorder
    uid          INTEGER,             -- user the recorder ran as
    notes        TEXT,                -- what the recorder could not do, if anything
    event_overruns INTEGER,           -- announcements of closed sockets lost to a full queue (each
                                      -- followed by a full resync); NULL when none were listened to
    names        INTEGER,             -- 1: DNS answers were captured (dns_answers), 0: not; NULL: a recorder
                                      -- older than schema version 4
    names_off    TEXT,                -- why they were not (or stopped being) captured; NULL when they were
    names_dropped INTEGER,            -- DNS answers lost to a full queue or capture ring; NULL when not captured
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);

-- Spans of regular sampling inside a run. A span is extended on every
-- sample; a sample taken more than two intervals after the previous one
-- (the machine slept, the recorder was stopped or starved) starts a new
-- span, so the gaps between spans are the times nobody was watching.
CREATE TABLE IF NOT EXISTS heartbeats (
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),
    first_at     INTEGER NOT NULL,    -- first sample of the span
    last_at      INTEGER NOT NULL,    -- last committed sample of the span
    samples      INTEGER NOT NULL,    -- samples taken in the span
    chain_digest INTEGER,             -- short digest of this row for the chain (schema/README.md, "The chain")
    PRIMARY KEY (run_id, first_at)
);
CREATE INDEX IF NOT EXISTS heartbeats_last ON heartbeats(last_at);

-- One row per process that owned a recorded socket. A process is its pid
-- together with its start time: a pid reused later is another process.
-- Lifetimes refer to it by proc_id.
CREATE TABLE IF NOT EXISTS processes (
    proc_id      INTEGER PRIMARY KEY,
    pid          INTEGER NOT NULL,
    start_time   INTEGER NOT NULL,    -- when the process started
    name         TEXT,                -- short name (Linux: comm)
    path         TEXT,                -- executable path; NULL when not readable
    cmdline      TEXT,                -- arguments joined by spaces; NULL when not readable
    uid          INTEGER,
    user         TEXT,                -- user name of uid; NULL when unknown
    first_seen   INTEGER NOT NULL,    -- when connhist first saw it
    chain_digest INTEGER,             -- short digest of this row for the chain (schema/README.md, "The chain")
    UNIQUE (pid, start_time)
);
CREATE INDEX IF NOT EXISTS processes_name ON processes(name);

-- The names behind the small integers that stand for them in the tables
-- below (the views show the names): field is the column, code its value.
CREATE TABLE IF NOT EXISTS codes (
    field        TEXT NOT NULL,       -- 'proto', 'state', 'close_reason', 'seen_by', 'offload_state', 'owner_source',
                                      -- 'dns_type'
    code         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (field, code)
) WITHOUT ROWID;
INSERT OR IGNORE INTO codes(field, code, name) VALUES
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

-- Every address a lifetime had at either end, once: lifetimes refer to it by
-- addr_id. Canonical text ('10.0.0.5', '2001:db8::1'; an IPv4 peer of a
-- dual-stack IPv6 socket is '::ffff:10.0.0.5').
CREATE TABLE IF NOT EXISTS addrs (
    addr_id      INTEGER PRIMARY KEY,
    addr         TEXT NOT NULL UNIQUE,
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);

-- One row per socket lifetime: from the first sample that saw the socket to
-- the sample that found it gone. A TCP connection that moves to TIME_WAIT is
-- still the same row; a new socket reusing the same addresses is a new row.
-- Read it through v_lifetimes, which shows names, addresses and times.
--
-- Ids follow first_seen: a lifetime first seen later has a larger id (but
-- for the few ms a sample takes, and wall-clock steps back), and
-- lifetime_blocks bounds the first_seen of every block of ids, so a time
-- window is an id range and the indexes below need no time column.
CREATE TABLE IF NOT EXISTS lifetimes (
    lifetime_id  INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),  -- run that first saw it
    proto        INTEGER NOT NULL CHECK (proto IN (6, 17)),  -- IANA number: 6 TCP, 17 UDP
    family       INTEGER NOT NULL CHECK (family IN (4, 6)),
    local_addr_id  INTEGER NOT NULL REFERENCES addrs(addr_id),
    local_port   INTEGER NOT NULL,
    remote_addr_id INTEGER REFERENCES addrs(addr_id),  -- NULL for listeners and unconnected UDP
    remote_port  INTEGER,             -- NULL for listeners and unconnected UDP
    state        INTEGER NOT NULL,    -- last state seen (codes 'state')
    states       INTEGER NOT NULL,    -- every state seen, in order, 4 bits each, the latest in the lowest
                                      -- 4 bits: ESTABLISHED then TIME_WAIT is 1 * 16 + 6 = 22. It keeps
                                      -- the first 15 (state_changes has them all)
    first_seen   INTEGER NOT NULL,    -- first sample that saw it
    last_seen_after INTEGER,          -- last sample that saw it, in ms after first_seen; NULL while open
    closed_after INTEGER,             -- first sample that found it gone, in ms after first_seen; NULL while open
    close_reason INTEGER,             -- codes 'close_reason'
    proc_id      INTEGER REFERENCES processes(proc_id),  -- owning process; NULL when unknown
    holders      INTEGER,             -- processes holding the socket (>= 1); NULL exactly when proc_id is NULL
    owner_source INTEGER,             -- how the owner is known (codes 'owner_source'); NULL when proc_id is NULL
    uid          INTEGER,             -- socket owner uid as the kernel reports it
    inode        INTEGER,             -- socket inode; NULL when the kernel gave 0
    cookie       INTEGER,             -- identity across samples: sock_diag cookie (Linux netlink), or on
                                      -- Windows a hash of creation time, addresses and pid; NULL when none
    bytes_sent   INTEGER,             -- TCP bytes the peer acknowledged (Linux tcpi_bytes_acked), as of
                                      -- the last state change or the close; NULL for UDP or not reported
    bytes_received INTEGER,           -- TCP bytes received (tcpi_bytes_received), likewise
    opened_after INTEGER,             -- seen_by 2 or 3: the sample before, after which it opened; NULL
                                      -- otherwise, or when there was no sample before
    seen_by      INTEGER,             -- NULL: samples only; else codes 'seen_by' (see schema/README.md)
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);
-- Each index ends, as every SQLite index does, in the rowid: one remote's
-- (one port's, one process's) lifetimes in a window are one index range.
CREATE INDEX IF NOT EXISTS lifetimes_remote ON lifetimes(remote_addr_id) WHERE remote_addr_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS lifetimes_local_port ON lifetimes(local_port);
CREATE INDEX IF NOT EXISTS lifetimes_remote_port ON lifetimes(remote_port) WHERE remote_port IS NOT NULL;
CREATE INDEX IF NOT EXISTS lifetimes_process ON lifetimes(proc_id) WHERE proc_id IS NOT NULL;
-- The lifetimes still open or that lasted more than an hour: few on any
-- machine. Every other lifetime started at most an hour before any
-- moment it was open, so "what overlapped this window" is a first_seen
-- range (an id range, through lifetime_blocks) plus this short list.
CREATE INDEX IF NOT EXISTS lifetimes_long ON lifetimes(first_seen, closed_after)
    WHERE closed_after IS NULL OR closed_after > 3600000;

-- What some platforms report beside a socket (Windows), for the lifetimes
-- that have any of it: a row here only then, so that lifetimes elsewhere
-- carry no empty columns for it.
CREATE TABLE IF NOT EXISTS lifetime_extras (
    lifetime_id  INTEGER PRIMARY KEY REFERENCES lifetimes(lifetime_id),
    local_scope  INTEGER,             -- IPv6 scope (interface) id of the local address; NULL when none
    remote_scope INTEGER,             -- IPv6 scope id of the remote address; NULL when none
    created_at   INTEGER,             -- when the OS created the socket (liCreateTimestamp); NULL when not reported
    offload_state INTEGER,            -- TCP offload (codes 'offload_state'); NULL when not reported
    owner_module TEXT,                -- owning module (the service or program); NULL when unknown
    owner_module_path TEXT            -- its file path; NULL when unknown
);

-- DNS: the names this machine's programs resolved, from the DNS responses
-- captured on every interface (Linux, as root; see schema/README.md). Every
-- name once, here; answers refer to it by name_id. Lower case, no final dot.
CREATE TABLE IF NOT EXISTS dns_names (
    name_id      INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);

-- One row per answer lifetime: an address (A, AAAA) or alias (CNAME) given
-- to a client for a name, from the response that first carried it to the
-- latest that did, deduplicated like sockets: a response that repeats it
-- while it is still in force (within its TTL) only moves last_seen_after,
-- expires_after and times_seen. A repeat after it expired, or after the same
-- address was answered for another name meanwhile, starts a new row, so the
-- rows of one address follow each other in time.
CREATE TABLE IF NOT EXISTS dns_answers (
    answer_id    INTEGER PRIMARY KEY,
    qname_id     INTEGER NOT NULL REFERENCES dns_names(name_id),  -- the name the client asked for
    rname_id     INTEGER NOT NULL REFERENCES dns_names(name_id),  -- the name of the record: qname, or a
                                      -- name on its CNAME chain
    type         INTEGER NOT NULL,    -- codes 'dns_type': 1 A, 28 AAAA, 5 CNAME
    qtype        INTEGER,             -- the question's type (DNS type number: 1 A, 28 AAAA, 65 HTTPS,
                                      -- 255 ANY, ...), of the first response; NULL: not recorded
    addr_id      INTEGER REFERENCES addrs(addr_id),        -- A, AAAA: the address; NULL for CNAME
    target_id    INTEGER REFERENCES dns_names(name_id),    -- CNAME: the name it points to; NULL otherwise
    ttl          INTEGER NOT NULL,    -- seconds, as the first response gave it
    first_seen   INTEGER NOT NULL,    -- capture time of the first response that carried it
    last_seen_after INTEGER NOT NULL, -- the latest, in ms after first_seen
    expires_after INTEGER NOT NULL,   -- when it stopped being in force: the latest response's time
                                      -- plus its TTL, in ms after first_seen
    times_seen   INTEGER NOT NULL,    -- responses that carried it
    resolver_addr_id INTEGER NOT NULL REFERENCES addrs(addr_id),  -- who answered
    client_addr_id INTEGER NOT NULL REFERENCES addrs(addr_id),    -- who asked
    client_port  INTEGER NOT NULL,    -- the asking socket's port, of the first response
    proto        INTEGER NOT NULL,    -- 17 UDP or 6 TCP (codes 'proto')
    proc_id      INTEGER REFERENCES processes(proc_id),  -- the asking process, when the socket of
                                      -- client_port was recorded with an owner; NULL otherwise
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);
CREATE INDEX IF NOT EXISTS dns_answers_addr ON dns_answers(addr_id, first_seen) WHERE addr_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dns_answers_qname ON dns_answers(qname_id);
CREATE INDEX IF NOT EXISTS dns_answers_rname ON dns_answers(rname_id);
CREATE INDEX IF NOT EXISTS dns_answers_first ON dns_answers(first_seen);
INSERT OR IGNORE INTO codes(field, code, name) VALUES
    ('dns_type', 1, 'A'), ('dns_type', 5, 'CNAME'), ('dns_type', 28, 'AAAA');

-- The first_seen of the lifetimes of each block of 4,096 ids: block B holds
-- ids B * 4096 to B * 4096 + 4095 (lifetime_id >> 12 = B). A window's
-- lifetimes lie in the blocks whose bounds meet it.
CREATE TABLE IF NOT EXISTS lifetime_blocks (
    block        INTEGER PRIMARY KEY,
    min_first_seen INTEGER NOT NULL,
    max_first_seen INTEGER NOT NULL,
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);

-- Every change of state after the first, with the sample that saw it.
CREATE TABLE IF NOT EXISTS state_changes (
    lifetime_id  INTEGER NOT NULL REFERENCES lifetimes(lifetime_id),
    at           INTEGER NOT NULL,    -- when, in ms after the lifetime's first_seen
    state        INTEGER NOT NULL,    -- codes 'state'
    PRIMARY KEY (lifetime_id, at, state)
) WITHOUT ROWID;

-- Pruning by --retain: lifetimes closed before cutoff were deleted (open
-- lifetimes never are). One row per run that pruned; a report over a window
-- before MAX(cutoff) is over pruned data, not over a quiet machine.
CREATE TABLE IF NOT EXISTS prunes (
    run_id       INTEGER PRIMARY KEY REFERENCES runs(run_id),
    first_at     INTEGER NOT NULL,    -- first pruning pass of the run
    last_at      INTEGER NOT NULL,    -- latest pruning pass of the run
    cutoff       INTEGER NOT NULL,    -- lifetimes closed before this are gone
    lifetimes    INTEGER NOT NULL,    -- lifetimes deleted by this run
    chain_digest INTEGER,             -- short digest of this row for the chain (schema/README.md, "The chain")
    links_before INTEGER,             -- the chain's links 2 to links_before - 1 were pruned; NULL: none by this run
    links_prev   BLOB                 -- the hash of link links_before - 1, which link links_before follows
);

-- Port ranges in force over time: the ephemeral range the OS gives client
-- ports from, and reserved blocks (Linux ip_local_reserved_ports; Windows
-- persistent reservations of the blocks given with --reservation). Checked
-- every minute; a row per range from the check that first saw it to the
-- check that found it gone, like a lifetime.
CREATE TABLE IF NOT EXISTS port_ranges (
    range_id     INTEGER PRIMARY KEY,
    proto        TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    kind         TEXT NOT NULL CHECK (kind IN ('ephemeral', 'reserved')),
    first_port   INTEGER NOT NULL,
    last_port    INTEGER NOT NULL,    -- inclusive
    token        INTEGER,             -- Windows reservation token; NULL elsewhere
    first_seen   INTEGER NOT NULL,    -- first check that saw it in force
    last_seen    INTEGER,             -- last check that saw it; NULL while in force, or unknown
    closed_at    INTEGER,             -- first check that found it gone; NULL while in force
    chain_digest INTEGER              -- short digest of this row for the chain (schema/README.md, "The chain")
);
CREATE INDEX IF NOT EXISTS port_ranges_ports ON port_ranges(first_port, last_port);

-- The tamper-evident chain (schema/README.md, "The chain"): one link per
-- minute at most of the recorder's committed transactions, each over the
-- previous link's hash and the multiset of every chained row's digest.
CREATE TABLE IF NOT EXISTS chain_links (
    seq          INTEGER PRIMARY KEY, -- 1, 2, ... with no gap
    at           INTEGER NOT NULL,    -- when its first transaction wrote its first row
    kind         INTEGER NOT NULL,    -- 0 transactions; 1 the first link (genesis); 2 the first link of a keyed chain
    rows         INTEGER NOT NULL,    -- chained rows after its last transaction
    mset         BLOB NOT NULL,       -- sum of their 32-byte digests modulo 2^256, big-endian
    hash         BLOB NOT NULL,       -- SHA-256 (keyed: HMAC-SHA-256) over the previous hash and the fields above
    key_id       INTEGER              -- first link of a keyed chain: fingerprint of its key; NULL otherwise
);

-- The newest committed sample of any run: open lifetimes were still seen
-- then. (Open rows are not rewritten on every sample; this is their last_seen.)
CREATE VIEW IF NOT EXISTS v_last_sample AS
    SELECT MAX(last_at) AS at FROM heartbeats;

-- Every lifetime with readable addresses, names, times and its process.
CREATE VIEW IF NOT EXISTS v_lifetimes AS
    SELECT l.lifetime_id,
           (SELECT name FROM codes WHERE field = 'proto' AND code = l.proto) AS proto,
           l.family, la.addr AS local_addr, l.local_port, ra.addr AS remote_addr, l.remote_port,
           (SELECT name FROM codes WHERE field = 'state' AND code = l.state) AS state,
           (WITH RECURSIVE d(rest, names) AS (
                SELECT l.states >> 4, (SELECT name FROM codes WHERE field = 'state' AND code = l.states & 15)
                UNION ALL
                SELECT rest >> 4, (SELECT name FROM codes WHERE field = 'state' AND code = rest & 15) || ',' || names
                  FROM d WHERE rest > 0)
            SELECT names FROM d WHERE rest = 0) AS states,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.first_seen / 1000.0, 'unixepoch') AS first_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ',
                    COALESCE(l.first_seen + l.last_seen_after, (SELECT at FROM v_last_sample)) / 1000.0,
                    'unixepoch') AS last_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', (l.first_seen + l.closed_after) / 1000.0, 'unixepoch') AS closed_at_utc,
           l.closed_after IS NULL AS open,
           p.pid, p.name AS process, p.path, p.cmdline, p.user,
           l.holders, (SELECT name FROM codes WHERE field = 'owner_source' AND code = l.owner_source) AS owner_source,
           (SELECT name FROM codes WHERE field = 'close_reason' AND code = l.close_reason) AS close_reason,
           l.uid AS socket_uid, l.inode, l.cookie,
           strftime('%Y-%m-%dT%H:%M:%fZ', x.created_at / 1000.0, 'unixepoch') AS created_utc,
           (SELECT name FROM codes WHERE field = 'offload_state' AND code = x.offload_state) AS offload_state,
           x.owner_module, x.owner_module_path,
           l.bytes_sent, l.bytes_received,
           (SELECT name FROM codes WHERE field = 'seen_by' AND code = l.seen_by) AS seen_by,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.opened_after / 1000.0, 'unixepoch') AS opened_after_utc,
           l.first_seen, COALESCE(l.first_seen + l.last_seen_after, (SELECT at FROM v_last_sample)) AS last_seen,
           l.first_seen + l.closed_after AS closed_at, l.opened_after, p.start_time AS proc_start, l.proc_id,
           l.run_id, x.local_scope, x.remote_scope, x.created_at
      FROM lifetimes l
      JOIN addrs la ON la.addr_id = l.local_addr_id
      LEFT JOIN addrs ra ON ra.addr_id = l.remote_addr_id
      LEFT JOIN processes p ON p.proc_id = l.proc_id
      LEFT JOIN lifetime_extras x ON x.lifetime_id = l.lifetime_id;

-- Every change of state after the first, with its lifetime's addresses.
CREATE VIEW IF NOT EXISTS v_state_changes AS
    SELECT s.lifetime_id, l.first_seen + s.at AS at,
           strftime('%Y-%m-%dT%H:%M:%fZ', (l.first_seen + s.at) / 1000.0, 'unixepoch') AS at_utc,
           (SELECT name FROM codes WHERE field = 'state' AND code = s.state) AS state
      FROM state_changes s JOIN lifetimes l ON l.lifetime_id = s.lifetime_id;

-- Listening TCP sockets and bound (unconnected) UDP sockets.
CREATE VIEW IF NOT EXISTS v_listeners AS
    SELECT * FROM v_lifetimes
     WHERE remote_addr IS NULL AND (proto = 'udp' OR state = 'LISTEN');

-- What was open at the newest sample (now, if the recorder is running).
CREATE VIEW IF NOT EXISTS v_open AS
    SELECT * FROM v_lifetimes WHERE open;

-- Connections with a remote end (not listeners).
CREATE VIEW IF NOT EXISTS v_connections AS
    SELECT * FROM v_lifetimes WHERE remote_addr IS NOT NULL;

-- Runs with readable times and how much they sampled.
CREATE VIEW IF NOT EXISTS v_runs AS
    SELECT r.run_id, r.mode, r.interval_ms, r.host, r.os, r.sampler, r.version,
           r.pid, r.uid, r.boot_id,
           strftime('%Y-%m-%dT%H:%M:%fZ', r.boot_time / 1000.0, 'unixepoch') AS boot_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at / 1000.0, 'unixepoch') AS started_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', r.ended_at / 1000.0, 'unixepoch') AS ended_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', MAX(h.last_at) / 1000.0, 'unixepoch') AS last_sample_utc,
           SUM(h.samples) AS samples, r.end_reason, r.notes
      FROM runs r LEFT JOIN heartbeats h ON h.run_id = r.run_id
     GROUP BY r.run_id;

-- DNS answers with their names, addresses and times (the grace of
-- v_lifetime_names is not applied here).
CREATE VIEW IF NOT EXISTS v_dns_answers AS
    SELECT a.answer_id, q.name AS qname, r.name AS rname,
           (SELECT name FROM codes WHERE field = 'dns_type' AND code = a.type) AS type,
           ad.addr AS addr, t.name AS target, a.ttl,
           strftime('%Y-%m-%dT%H:%M:%fZ', a.first_seen / 1000.0, 'unixepoch') AS first_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', (a.first_seen + a.last_seen_after) / 1000.0, 'unixepoch') AS last_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', (a.first_seen + a.expires_after) / 1000.0, 'unixepoch') AS expires_utc,
           a.times_seen, rs.addr AS resolver, c.addr AS client_addr, a.client_port,
           (SELECT name FROM codes WHERE field = 'proto' AND code = a.proto) AS proto,
           p.pid, p.name AS process, a.first_seen, a.first_seen + a.last_seen_after AS last_seen,
           a.first_seen + a.expires_after AS expires, a.addr_id, a.proc_id, a.run_id
      FROM dns_answers a
      JOIN dns_names q ON q.name_id = a.qname_id
      JOIN dns_names r ON r.name_id = a.rname_id
      LEFT JOIN dns_names t ON t.name_id = a.target_id
      LEFT JOIN addrs ad ON ad.addr_id = a.addr_id
      JOIN addrs rs ON rs.addr_id = a.resolver_addr_id
      JOIN addrs c ON c.addr_id = a.client_addr_id
      LEFT JOIN processes p ON p.proc_id = a.proc_id;

-- Connections joined to the names resolved to their remote address before
-- they opened: answers first seen at or before the lifetime's first_seen
-- and still in force then, give or take a grace of 10 s (the time between
-- an answer and the connect, and a client caching a little past the TTL).
-- connhist-query's "remote_names" is this list, most recent first, the
-- asking process's own answers before others'.
CREATE VIEW IF NOT EXISTS v_lifetime_names AS
    SELECT l.lifetime_id, ra.addr AS remote_addr, l.remote_port,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.first_seen / 1000.0, 'unixepoch') AS first_seen_utc,
           q.name AS name, r.name AS record_name,
           strftime('%Y-%m-%dT%H:%M:%fZ', a.first_seen / 1000.0, 'unixepoch') AS resolved_utc,
           a.proc_id IS NOT NULL AND a.proc_id IS l.proc_id AS same_process,
           a.answer_id, l.first_seen, a.first_seen AS resolved
      FROM lifetimes l
      JOIN addrs ra ON ra.addr_id = l.remote_addr_id
      JOIN dns_answers a ON a.addr_id = l.remote_addr_id AND a.first_seen <= l.first_seen
                        AND l.first_seen <= a.first_seen + a.expires_after + 10000
      JOIN dns_names q ON q.name_id = a.qname_id
      JOIN dns_names r ON r.name_id = a.rname_id;
