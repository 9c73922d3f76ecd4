-- Bearer tokens of the JSON API (`ejgate token create|revoke|list`). Only a token's BLAKE3
-- hash is kept: the token is printed once when it is made and is never stored. A token
-- is random (256 bits), so a fast hash is enough (nothing to guess from it). Revoked
-- tokens stay, with `revoked_at`, until a new token takes their name.
CREATE TABLE api_tokens (
    name       TEXT NOT NULL PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
