-- Signed-in sessions of the staff console (`/console/`), kept in the store so that any replica
-- serves them. A session borrows its admin token's role; it ends at its expiry, at sign-out, or
-- when the token is revoked (the lookup joins the token and requires it unrevoked).
create table console_sessions (
    -- hex SHA-256 of the session cookie's value (the value itself is never stored)
    session_hash   text primary key,
    admin_token_id uuid not null references admin_tokens (admin_token_id),
    -- the synchroniser token every form of this session carries
    csrf_token     text not null,
    expires_at     timestamptz not null,
    created_at     timestamptz not null default now()
);
create index console_sessions_expiry on console_sessions (expires_at);
-- The audit log's filters (actor, action, record) page by id.
create index audit_log_target on audit_log (target_id, audit_id);
