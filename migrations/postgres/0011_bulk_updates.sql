-- Staff's changes to many records at once (`POST /admin/v1/credentials/bulk-updates`): a JSON merge
-- of holder-data elements applied to each selected record in bounded batches. The cursor (the last
-- record handled, records being taken in id order) makes the work resumable after a crash; the lease
-- lets one replica at a time work on it.
create table bulk_updates (
    bulk_update_id  uuid primary key,
    -- {"docType": …, "status": …} or {"credentialIds": […]}
    selection       jsonb not null,
    -- {namespace: {element: value or null}}
    merge           jsonb not null,
    state           text not null check (state in ('running', 'done')),
    cursor          uuid,
    -- records the selection matched when the update was asked for (later ones are handled too)
    total           integer not null,
    selected        integer not null default 0,
    changed         integer not null default 0,
    unchanged       integer not null default 0,
    failed          integer not null default 0,
    -- the first problems met, [{credentialId, message}]
    problems        jsonb not null,
    -- the name of the token that asked: the actor of every version the update writes
    actor           text not null,
    created_by      uuid references admin_tokens (admin_token_id),
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
create index bulk_updates_running on bulk_updates (state, created_at);
