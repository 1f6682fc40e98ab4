-- Chrome Enterprise certificate-provisioning processes the worker has heard of (spec
-- cert-provisioning.md). The row is the process's durable state and its lease: a worker holds it
-- while lease_expires_at is in the future, so replicas never drive one process at once and a
-- restart resumes from the last recorded step.
-- 0001 created a placeholder cert_processes that no released code ever wrote; this replaces it
-- with the shape the adapter needs (it is empty wherever it exists).
drop table cert_processes;
create table cert_processes (
    cert_process_id   text primary key,
    -- customers/{customer}/certificateProvisioningProcesses/{id}, as Google names it
    name              text not null unique,
    customer_id       text not null,
    -- received → claimed → signing → issuing → uploading → done; failing → failed; skipped
    state             text not null check (state in ('received', 'claimed', 'signing', 'issuing', 'uploading', 'failing', 'done', 'failed', 'skipped')),
    attempts          integer not null default 0,
    next_attempt_at   text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    lease_owner       text,
    lease_expires_at  text,
    -- the process resource as read at claim time (subject, references, key)
    process           text,
    -- the bytes sent to signData (a PKCS#10 CertificationRequestInfo); written before the call,
    -- so that signData is never sent twice
    sign_data         blob,
    sign_requested_at text,
    operation_name    text,
    -- the device's signature over sign_data, once verified (completes the CSR)
    signature         blob,
    -- the issued leaf, kept so that a restart uploads it instead of issuing another
    certificate_pem   text,
    certificate_serial text,
    -- the reason sent (or to send) with setFailure; shown on the ChromeOS device
    failure_message   text,
    last_error        text,
    created_at        text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index cert_processes_due_idx on cert_processes (state, next_attempt_at);
