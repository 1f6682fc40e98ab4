-- Settings that belong to the deployment rather than to one replica. The first is the
-- certificate-provisioning adapter's callerInstanceId: made once, shared by every replica, so a
-- replacement pod with another host name still owns the processes its deployment claimed.
create table deployment_settings (
    name       text primary key,
    value      text not null,
    created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- When the current run of failures of a process's step began (null: the last call succeeded).
-- The retry budget is measured from it, and any progress clears it.
alter table cert_processes add column failing_since text;
