-- Wakes idle dispatchers as soon as jobs are queued rather than at their next poll: each insert
-- into the outbox notifies channel brevet_outbox, which dispatchers LISTEN on. Postgres sends a
-- notification when the transaction commits, and one per transaction however many statements
-- queued jobs, so a bulk update's run of records costs one.
create function outbox_queued() returns trigger language plpgsql as $$
begin
    perform pg_notify('brevet_outbox', '');
    return null;
end
$$;
create trigger outbox_queued after insert on outbox
    for each statement execute function outbox_queued();
