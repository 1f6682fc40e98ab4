-- Token Status Lists (docs/STATUS_LIST.md): one bit per issued MSO, published as a signed token.
-- Entries are derived when a token is built (an MSO's entry is invalid when its record is
-- revoked); `generation` is bumped in the transaction that revokes, and a token is current when
-- it was built at its list's generation. An index is handed out once and never again.
create table status_lists (
    -- its number in the URI: <status_list.base_url>/status-lists/<list_id>
    list_id               integer primary key,
    -- whose signer signs it: '' the main key directory, else the doc type with a directory of its own
    scope                 text not null,
    size                  integer not null check (size > 0),
    -- entries handed out: the counter of the next (its index is the counter through the list's
    -- keyed permutation, src/domain/status_index.rs)
    allocated             integer not null default 0 check (allocated <= size),
    -- the list's random permutation key: indexes are not handed out in order
    index_key             blob not null,
    generation            integer not null default 1,
    token                 blob,
    token_generation      integer not null default 0,
    token_etag            text,
    token_issued_at       text,
    token_expires_at      text,
    -- the replica building its token holds it while the lease is in the future
    lease_owner           text,
    lease_until           text,
    created_at            text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index status_lists_open on status_lists (scope, list_id) where allocated < size;

alter table mso_issuances add column status_list_id integer references status_lists (list_id);
alter table mso_issuances add column status_index integer;
create unique index mso_issuances_status_entry on mso_issuances (status_list_id, status_index);
