-- Facts about the store as a whole. `key_id` names the key that seals its
-- secrets: an instance started with another key is refused before it can
-- seal a secret that the others cannot open.
CREATE TABLE store_meta (
    name text PRIMARY KEY,
    value text NOT NULL
);
