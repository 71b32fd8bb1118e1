-- Upgrades a connhist database from schema version 3 to version 4: the
-- tamper-evident chain (schema/README.md, "The chain").
--
-- Run by connhist-record inside the one transaction that then runs
-- schema.sql (which creates chain_links) and sets PRAGMA user_version = 4.
-- No row changes: every table the chain keeps a digest beside gets its
-- chain_digest column, NULL in the rows written before. The recorder's
-- first start on the upgraded file digests them all in the chain's first
-- link (its genesis); connhist-query verify reports what was recorded
-- before that link as unchained.

ALTER TABLE runs ADD COLUMN chain_digest INTEGER;
ALTER TABLE heartbeats ADD COLUMN chain_digest INTEGER;
ALTER TABLE processes ADD COLUMN chain_digest INTEGER;
ALTER TABLE addrs ADD COLUMN chain_digest INTEGER;
ALTER TABLE lifetimes ADD COLUMN chain_digest INTEGER;
ALTER TABLE lifetime_blocks ADD COLUMN chain_digest INTEGER;
ALTER TABLE prunes ADD COLUMN chain_digest INTEGER;
ALTER TABLE port_ranges ADD COLUMN chain_digest INTEGER;
