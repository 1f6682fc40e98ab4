-- A credential as provisioned to one device: Google's credentialId, bound to one holder record and
-- one deviceReferenceId. Changes to the record are announced to Google once per such copy.
create table wallet_credentials (
    -- Google's opaque credentialId (provisionCredential)
    wallet_credential_id  text primary key,
    credential_id         uuid not null references credentials (credential_id),
    device_reference_id   text not null,
    -- wire status: provisionPending, active, revoked or deleted
    status                text not null,
    -- the version whose data this device received last
    provisioned_version_id uuid references credential_versions (credential_version_id),
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now()
);
create index wallet_credentials_credential_idx on wallet_credentials (credential_id);

-- Jobs are claimed in due order.
create index outbox_claim_idx on outbox (next_attempt_at, outbox_id) where state = 'pending';
