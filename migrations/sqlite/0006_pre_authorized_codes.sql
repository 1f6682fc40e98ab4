-- One-time codes staff hand a holder (issuer-initiated provisioning): a proofUser whose evidence
-- carries a valid code is accepted at once for the code's record. Only the SHA-256 is kept.
create table pre_authorized_codes (
    code_sha256        blob primary key,
    credential_id      text not null references credentials (credential_id),
    expires_at         text not null,
    -- the proofing that redeemed it; a code is used once
    used_by_proofing   text,
    created_at         text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at         text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
