-- One-time codes staff hand a holder (issuer-initiated provisioning): a proofUser whose evidence
-- carries a valid code is accepted at once for the code's record. Only the SHA-256 is kept.
create table pre_authorized_codes (
    code_sha256        bytea primary key,
    credential_id      uuid not null references credentials (credential_id),
    expires_at         timestamptz not null,
    -- the proofing that redeemed it; a code is used once
    used_by_proofing   text,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
