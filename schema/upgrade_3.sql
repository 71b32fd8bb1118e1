-- Upgrades a connhist database from schema version 3 to version 4: DNS
-- names (dns_names, dns_answers) and the tamper-evident chain
-- (schema/README.md, "The chain").
--
-- Run by connhist-record inside the one transaction that then runs
-- schema.sql, which creates what is new (dns_names, dns_answers, their
-- indexes and codes, v_dns_answers, v_lifetime_names, chain_links) and sets
-- PRAGMA user_version = 4. Only what it cannot create by itself is here:
-- new columns. Runs of older recorders get NULL in the names columns:
-- whether names were captured is not known. Every table the chain keeps a
-- digest beside gets its chain_digest column, NULL in the rows written
-- before; the recorder's first start on the upgraded file digests them all
-- in the chain's first link (its genesis), and connhist-query verify
-- reports what was recorded before that link as unchained.

-- The tables must be version 3's: a file whose user_version says 3 but
-- whose tables are something else fails here, before anything changes.
SELECT run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os, boot_id, boot_time, sampler,
       version, pid, uid, notes, event_overruns FROM runs LIMIT 0;
SELECT run_id, first_at, last_at, samples FROM heartbeats LIMIT 0;
SELECT proc_id, pid, start_time, name, path, cmdline, uid, user, first_seen FROM processes LIMIT 0;
SELECT lifetime_id, run_id, proto, family, local_addr_id, local_port, remote_addr_id, remote_port, state,
       states, first_seen, last_seen_after, closed_after, close_reason, proc_id, holders, owner_source, uid,
       inode, cookie, bytes_sent, bytes_received, opened_after, seen_by FROM lifetimes LIMIT 0;
SELECT lifetime_id, at, state FROM state_changes LIMIT 0;

ALTER TABLE runs ADD COLUMN names INTEGER;
ALTER TABLE runs ADD COLUMN names_off TEXT;
ALTER TABLE runs ADD COLUMN names_dropped INTEGER;

ALTER TABLE runs ADD COLUMN chain_digest INTEGER;
ALTER TABLE heartbeats ADD COLUMN chain_digest INTEGER;
ALTER TABLE processes ADD COLUMN chain_digest INTEGER;
ALTER TABLE addrs ADD COLUMN chain_digest INTEGER;
ALTER TABLE lifetimes ADD COLUMN chain_digest INTEGER;
ALTER TABLE lifetime_blocks ADD COLUMN chain_digest INTEGER;
ALTER TABLE prunes ADD COLUMN chain_digest INTEGER;
ALTER TABLE port_ranges ADD COLUMN chain_digest INTEGER;
ALTER TABLE prunes ADD COLUMN links_before INTEGER;
ALTER TABLE prunes ADD COLUMN links_prev BLOB;
