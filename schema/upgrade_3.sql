-- Upgrades a connhist database from schema version 3 to version 4.
--
-- Run by connhist-record inside the one transaction that then runs
-- schema.sql, which creates what is new (dns_names, dns_answers, their
-- indexes and codes, v_dns_answers, v_lifetime_names). Only what it cannot
-- create by itself is here: the new columns of runs. Runs of older
-- recorders get NULL in them: whether names were captured is not known.
-- The runs table of version 3 (a table of that name but not those columns
-- stops the upgrade here, with SQLite's "no such column", not later).
SELECT run_id, event_overruns FROM runs LIMIT 0;
ALTER TABLE runs ADD COLUMN names INTEGER;
ALTER TABLE runs ADD COLUMN names_off TEXT;
ALTER TABLE runs ADD COLUMN names_dropped INTEGER;
