-- connhist database schema, version 2.
--
-- This file is the single source of the tables, indexes and views. Both
-- programs embed it at build time and run it on a new database; the version
-- below is written to PRAGMA user_version. schema/README.md documents every
-- column and shows example queries.
--
-- Conventions: every time is an INTEGER of milliseconds since 1970-01-01 UTC.
-- The views add *_utc text columns (ISO 8601, UTC, milliseconds) for reading.
-- Addresses are canonical text ('10.0.0.5', '2001:db8::1'), so they can be
-- typed into a WHERE clause. NULL always means "not known" or "not
-- applicable", never zero.

-- Space freed by --retain pruning is given back to the file system bit by
-- bit (PRAGMA incremental_vacuum). This must come before anything that
-- writes the file, even the user_version below.
PRAGMA auto_vacuum = INCREMENTAL;

PRAGMA user_version = 2;

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
    sampler      TEXT NOT NULL,       -- 'netlink' or 'procfs' (Linux)
    version      TEXT NOT NULL,       -- connhist version
    pid          INTEGER NOT NULL,    -- pid of the recorder
    uid          INTEGER,             -- user the recorder ran as
    notes        TEXT,                -- what the recorder could not do, if anything
    event_overruns INTEGER            -- announcements of closed sockets lost to a full queue (each
                                      -- followed by a full resync); NULL when none were listened to
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
    PRIMARY KEY (run_id, first_at)
);
CREATE INDEX IF NOT EXISTS heartbeats_last ON heartbeats(last_at);

-- One row per process that owned a recorded socket. A process is its pid
-- together with its start time: a pid reused later is another process.
CREATE TABLE IF NOT EXISTS processes (
    pid          INTEGER NOT NULL,
    start_time   INTEGER NOT NULL,    -- when the process started
    name         TEXT,                -- short name (Linux: comm)
    path         TEXT,                -- executable path; NULL when not readable
    cmdline      TEXT,                -- arguments joined by spaces; NULL when not readable
    uid          INTEGER,
    user         TEXT,                -- user name of uid; NULL when unknown
    first_seen   INTEGER NOT NULL,    -- when connhist first saw it
    PRIMARY KEY (pid, start_time)
);
CREATE INDEX IF NOT EXISTS processes_name ON processes(name);

-- One row per socket lifetime: from the first sample that saw the socket to
-- the sample that found it gone. A TCP connection that moves to TIME_WAIT is
-- still the same row; a new socket reusing the same addresses is a new row.
CREATE TABLE IF NOT EXISTS lifetimes (
    lifetime_id  INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),  -- run that first saw it
    proto        TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    family       INTEGER NOT NULL CHECK (family IN (4, 6)),
    local_addr   TEXT NOT NULL,
    local_port   INTEGER NOT NULL,
    remote_addr  TEXT,                -- NULL for listeners and unconnected UDP
    remote_port  INTEGER,             -- NULL for listeners and unconnected UDP
    state        TEXT NOT NULL,       -- last state seen: 'ESTABLISHED', 'LISTEN', 'UNCONN', ...
    states       TEXT NOT NULL,       -- every state seen, in order, comma separated
    first_seen   INTEGER NOT NULL,    -- first sample that saw it
    last_seen    INTEGER,             -- last sample that saw it; NULL while open (see v_lifetimes)
    closed_at    INTEGER,             -- first sample that found it gone; NULL while open
    close_reason TEXT,                -- 'gone', 'gone_while_stopped', 'reboot', 'readdressed'
    pid          INTEGER,             -- owning process, with proc_start; NULL when unknown
    proc_start   INTEGER,
    holders      INTEGER,             -- processes holding the socket (>= 1); NULL exactly when pid is NULL
    uid          INTEGER,             -- socket owner uid as the kernel reports it
    inode        INTEGER,             -- socket inode; NULL when the kernel gave 0
    cookie       INTEGER,             -- identity across samples: sock_diag cookie (Linux netlink), or on
                                      -- Windows a hash of creation time, addresses and pid; NULL when none
    local_scope  INTEGER,             -- IPv6 scope (interface) id of local_addr (Windows); NULL when none
    remote_scope INTEGER,             -- IPv6 scope id of remote_addr (Windows); NULL when none
    created_at   INTEGER,             -- when the OS created the socket (Windows liCreateTimestamp); NULL when not reported
    offload_state TEXT,               -- TCP offload (Windows): 'in_host', 'offloading', 'offloaded', 'uploading'
    owner_module TEXT,                -- owning module (Windows: the service or program); NULL when unknown
    owner_module_path TEXT,           -- its file path; NULL when unknown
    bytes_sent   INTEGER,             -- TCP bytes the peer acknowledged (Linux tcpi_bytes_acked), as of
                                      -- the last state change or the close; NULL for UDP or not reported
    bytes_received INTEGER,           -- TCP bytes received (tcpi_bytes_received), likewise
    opened_after INTEGER,             -- seen_by 'destroy_event_only' or 'destroy_event_time_wait': the
                                      -- sample before, after which it opened; NULL otherwise, or when
                                      -- there was no sample before
    seen_by      TEXT,                -- NULL: samples only; 'destroy_event': closed_at is the time the
                                      -- kernel announced it destroyed; 'destroy_event_only': no sample
                                      -- saw it, only that announcement; 'destroy_event_time_wait': no
                                      -- sample saw the connection, the announcement of its end is the
                                      -- state change into TIME_WAIT, and samples saw the TIME_WAIT
    FOREIGN KEY (pid, proc_start) REFERENCES processes(pid, start_time)
);
CREATE INDEX IF NOT EXISTS lifetimes_remote ON lifetimes(remote_addr, first_seen);
CREATE INDEX IF NOT EXISTS lifetimes_local_port ON lifetimes(local_port, first_seen);
CREATE INDEX IF NOT EXISTS lifetimes_remote_port ON lifetimes(remote_port, first_seen);
CREATE INDEX IF NOT EXISTS lifetimes_first ON lifetimes(first_seen);
CREATE INDEX IF NOT EXISTS lifetimes_process ON lifetimes(pid, first_seen);
-- The lifetimes still open or that lasted more than an hour: few on any
-- machine. Every other lifetime started at most an hour before any
-- moment it was open, so "what overlapped this window" is a first_seen range
-- on the indexes above plus this short list (see schema/README.md).
CREATE INDEX IF NOT EXISTS lifetimes_long ON lifetimes(first_seen, closed_at)
    WHERE closed_at IS NULL OR closed_at - first_seen > 3600000;

-- Every change of state after the first, with the sample that saw it.
CREATE TABLE IF NOT EXISTS state_changes (
    lifetime_id  INTEGER NOT NULL REFERENCES lifetimes(lifetime_id),
    at           INTEGER NOT NULL,
    state        TEXT NOT NULL,
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
    lifetimes    INTEGER NOT NULL     -- lifetimes deleted by this run
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
    closed_at    INTEGER              -- first check that found it gone; NULL while in force
);
CREATE INDEX IF NOT EXISTS port_ranges_ports ON port_ranges(first_port, last_port);

-- The newest committed sample of any run: open lifetimes were still seen
-- then. (Open rows are not rewritten on every sample; this is their last_seen.)
CREATE VIEW IF NOT EXISTS v_last_sample AS
    SELECT MAX(last_at) AS at FROM heartbeats;

-- Every lifetime with readable times and its process.
CREATE VIEW IF NOT EXISTS v_lifetimes AS
    SELECT l.lifetime_id, l.proto, l.family,
           l.local_addr, l.local_port, l.remote_addr, l.remote_port,
           l.state, l.states,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.first_seen / 1000.0, 'unixepoch') AS first_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ',
                    COALESCE(l.last_seen, (SELECT at FROM v_last_sample)) / 1000.0,
                    'unixepoch') AS last_seen_utc,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.closed_at / 1000.0, 'unixepoch') AS closed_at_utc,
           l.closed_at IS NULL AS open,
           l.pid, p.name AS process, p.path, p.cmdline, p.user,
           l.holders, l.close_reason, l.uid AS socket_uid, l.inode, l.cookie,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.created_at / 1000.0, 'unixepoch') AS created_utc,
           l.offload_state, l.owner_module, l.owner_module_path,
           l.bytes_sent, l.bytes_received, l.seen_by,
           strftime('%Y-%m-%dT%H:%M:%fZ', l.opened_after / 1000.0, 'unixepoch') AS opened_after_utc,
           l.first_seen, COALESCE(l.last_seen, (SELECT at FROM v_last_sample)) AS last_seen,
           l.closed_at, l.proc_start, l.run_id
      FROM lifetimes l
      LEFT JOIN processes p ON p.pid = l.pid AND p.start_time = l.proc_start;

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
