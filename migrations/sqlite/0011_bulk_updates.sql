-- Staff's changes to many records at once (`POST /admin/v1/credentials/bulk-updates`): a JSON merge
-- of holder-data elements applied to each selected record in bounded batches. The cursor (the last
-- record handled, records being taken in id order) makes the work resumable after a crash; the lease
-- lets one replica at a time work on it.
create table bulk_updates (
    bulk_update_id  text primary key,
    -- {"docType": …, "status": …} or {"credentialIds": […]}
    selection       text not null,
    -- {namespace: {element: value or null}}
    merge           text not null,
    state           text not null check (state in ('running', 'done')),
    cursor          text,
    -- records the selection matched when the update was asked for (later ones are handled too)
    total           integer not null,
    selected        integer not null default 0,
    changed         integer not null default 0,
    unchanged       integer not null default 0,
    failed          integer not null default 0,
    -- the first problems met, [{credentialId, message}]
    problems        text not null,
    -- the name of the token that asked: the actor of every version the update writes
    actor           text not null,
    created_by      text references admin_tokens (admin_token_id),
    lease_owner     text,
    lease_until     text,
    created_at      text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index bulk_updates_running on bulk_updates (state, created_at);
