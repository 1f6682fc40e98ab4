-- Settings that belong to the deployment rather than to one replica. The first is the
-- certificate-provisioning adapter's callerInstanceId: made once, shared by every replica, so a
-- replacement pod with another host name still owns the processes its deployment claimed.
create table deployment_settings (
    name       text primary key,
    value      text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- When the current run of failures of a process's step began (null: the last call succeeded).
-- The retry budget is measured from it, and any progress clears it.
alter table cert_processes add column failing_since timestamptz;

-- Certificates the built-in device CAs issued that staff revoked. Kept apart from
-- cert_processes, which are purged after their retention: a revocation must outlive that.
create table device_revocations (
    -- caConnectionAdapterConfigReference of the issuing built-in CA
    ca_connection text not null,
    -- serial number, upper-case hex
    serial        text not null,
    -- RFC 5280 CRLReason name, e.g. keyCompromise
    reason        text not null,
    revoked_at    timestamptz not null,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (ca_connection, serial)
);

-- The newest CRL the worker signed for each built-in CA (DER); brevet serve publishes it.
create table device_crls (
    ca_connection text primary key,
    der           bytea not null,
    this_update   timestamptz not null,
    next_update   timestamptz not null,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
