-- Each row's HMAC of its identity (id, provider, kind, external id, team),
-- `<kid>:<hex>`, made and checked by the service (the key never reaches the
-- database): a row whose identity is edited here is refused on read. Rows
-- from before this migration are signed at the service's next start.
ALTER TABLE connections ADD COLUMN identity_mac text;
