-- Brevet's initial schema (SQLite). The Postgres twin lives in migrations/postgres/ and keeps the same
-- tables, columns and meaning. Never edit this file once applied: add a new migration instead.
-- SQLite types: ids are hyphenated UUID text, timestamps RFC 3339 UTC text, JSON documents text,
-- binary values blob.

-- Issuer staff credentials for the admin API. Only a SHA-256 hash of each bearer token is kept.
create table admin_tokens (
    admin_token_id text primary key,
    name           text not null unique,
    role           text not null check (role in ('viewer', 'operator', 'admin')),
    -- hex SHA-256 of the whole bearer token; tokens carry 256 random bits, so a fast hash suffices
    token_hash     text not null unique,
    last_used_at   text,
    revoked_at     text,
    created_at     text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per holder record the issuer maintains (e.g. one person's driving licence).
create table credentials (
    credential_id      text primary key,
    doc_type           text not null,
    status             text not null,
    -- the version whose data provisionCredential returns; holder data changes only by a new version
    current_version_id text,
    -- copy of the current version's holder data, for listing and search without a join
    holder_data        text not null,
    created_at         text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at         text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Immutable snapshots of a credential's holder data; each is one credentialVersionId on the wire.
create table credential_versions (
    credential_version_id text primary key,
    credential_id         text not null references credentials (credential_id),
    version_number        integer not null,
    holder_data           text not null,
    -- admin token that wrote this version; null when written by the system
    created_by            text references admin_tokens (admin_token_id),
    created_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    unique (credential_id, version_number)
);

-- Wallet devices, keyed by Google's deviceReferenceId (one per device and credential, not per phone).
create table devices (
    device_reference_id   text primary key,
    status                text not null,
    -- outstanding registration nonce (getDeviceRegistrationNonce); single use
    registration_nonce    blob,
    nonce_expires_at      text,
    -- DER SubjectPublicKeyInfo of the device identity key, once registered
    identity_public_key   blob,
    -- JSON array of base64 DER certificates, leaf first, as presented at registration
    attestation_chain     text,
    registered_at         text,
    created_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Proofing requests (proofUser) and the issuer's review of them.
create table proofings (
    proofing_id         text primary key,
    device_reference_id text not null,
    -- the holder record this proofing was matched to, once reviewed
    credential_id       text references credentials (credential_id),
    status              text not null,
    -- wire detail of the status (rejection reason, challenge kind), as JSON
    status_detail       text,
    -- evidence as received; may hold personal data and is never logged
    evidence            text not null,
    created_at          text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index proofings_status_idx on proofings (status, created_at);

-- Every mobile security object issued: which version, which device auth key, which DS key, how long.
create table mso_issuances (
    mso_issuance_id       text primary key,
    credential_version_id text not null references credential_versions (credential_version_id),
    device_reference_id   text not null,
    -- SHA-256 of the device auth key (COSE_Key bytes), to find issuances per key without storing it twice
    auth_key_sha256       blob not null,
    ds_key_id             text not null,
    valid_from            text not null,
    valid_until           text not null,
    created_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index mso_issuances_version_idx on mso_issuances (credential_version_id);

-- Durable jobs (notifications to Google). Written in the same transaction as the change they announce.
create table outbox (
    outbox_id        text primary key,
    kind             text not null,
    payload          text not null,
    -- jobs with the same key that are still pending are merged into one dispatch
    coalesce_key     text,
    state            text not null check (state in ('pending', 'done', 'dead')),
    attempts         integer not null default 0,
    next_attempt_at  text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- a worker holds a job while lease_expires_at is in the future; an expired lease frees it again
    lease_owner      text,
    lease_expires_at text,
    last_error       text,
    created_at       text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index outbox_due_idx on outbox (state, next_attempt_at);

-- Who did what to which record. Never holds holder data.
create table audit_log (
    audit_id       text primary key,
    -- null for actions taken by Brevet itself (bootstrap, workers)
    admin_token_id text references admin_tokens (admin_token_id),
    actor          text not null,
    action         text not null,
    target_kind    text not null,
    target_id      text not null,
    request_id     text,
    created_at     text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index audit_log_target_idx on audit_log (target_kind, target_id, created_at);

-- Chrome certificate-provisioning processes the worker handled, so a restart never signs or issues twice.
create table cert_processes (
    process_name     text primary key,
    state            text not null,
    claimed_by       text,
    -- name of the signData long-running operation, once requested (signData is called once per process)
    sign_operation   text,
    certificate_pem  text,
    failure_reason   text,
    created_at       text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
