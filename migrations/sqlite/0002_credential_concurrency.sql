-- Optimistic concurrency for holder-data edits (If-Match carries the version number), the reason a
-- record is in its status (e.g. why it was revoked), and the index behind filtered listings.
alter table credentials add column current_version_number integer not null default 0;
alter table credentials add column status_reason text;
create index credentials_doc_type_idx on credentials (doc_type, credential_id);
create index credentials_status_idx on credentials (status, credential_id);
create index outbox_coalesce_idx on outbox (coalesce_key, state);
