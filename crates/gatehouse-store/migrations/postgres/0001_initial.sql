-- Gatehouse store schema, PostgreSQL dialect. Keep in step with ../sqlite/0001_initial.sql: the
-- two files differ only where the dialects do (BYTEA for BLOB, BIGINT PRIMARY KEY for the rowid).
-- Times are Unix milliseconds (BIGINT) on both backends, so ordering and arithmetic agree.

-- One row per serialized writer. A transaction that must read-then-append (the receipt chain,
-- the change log) first updates its row here: on SQLite that takes the write lock before any
-- read, on PostgreSQL it takes a row lock, so sequence numbers are assigned without gaps and
-- committed in order across every replica.
CREATE TABLE store_locks (
    name TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO store_locks (name, generation) VALUES ('receipts', 0), ('changes', 0);

CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE user_groups (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_by_user ON group_members (user_name);

CREATE TABLE teams (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE team_members (
    team_name TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team_name, user_name)
);
CREATE INDEX team_members_by_user ON team_members (user_name);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_name);

-- A secret is a service credential (user_name NULL) or one user's delegated credential. NULLs
-- are distinct in a UNIQUE constraint, so the two scopes get one partial unique index each.
CREATE TABLE secrets (
    name TEXT NOT NULL,
    user_name TEXT REFERENCES users (name) ON DELETE CASCADE,
    owner_team TEXT REFERENCES teams (name),
    description TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX secrets_service_name ON secrets (name) WHERE user_name IS NULL;
CREATE UNIQUE INDEX secrets_user_name ON secrets (name, user_name) WHERE user_name IS NOT NULL;
CREATE INDEX secrets_by_owner_team ON secrets (owner_team);

CREATE TABLE catalog_entries (
    server TEXT NOT NULL,
    list_kind TEXT NOT NULL,
    items TEXT NOT NULL,
    era TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (server, list_kind)
);

-- Append-only. `hash` chains each row to `prev_hash` (see src/receipts/chain.rs); a completion
-- row points at the intent it completes, and at most one completion exists per intent.
CREATE TABLE receipts (
    seq BIGINT PRIMARY KEY,
    recorded_at BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'intent', 'completion')),
    intent_seq BIGINT,
    user_name TEXT,
    server TEXT,
    tool TEXT,
    decision TEXT NOT NULL,
    outcome TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    CHECK ((kind = 'completion') = (intent_seq IS NOT NULL))
);
CREATE UNIQUE INDEX receipts_one_completion ON receipts (intent_seq) WHERE intent_seq IS NOT NULL;
CREATE INDEX receipts_by_time ON receipts (recorded_at);
CREATE INDEX receipts_by_user ON receipts (user_name, recorded_at);
CREATE INDEX receipts_by_server ON receipts (server, recorded_at);
CREATE INDEX receipts_by_tool ON receipts (tool, recorded_at);
CREATE INDEX receipts_by_decision ON receipts (decision, recorded_at);

CREATE TABLE checkpoints (
    seq BIGINT PRIMARY KEY,
    head_hash TEXT NOT NULL,
    signature BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE change_events (
    seq BIGINT PRIMARY KEY,
    recorded_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL
);
