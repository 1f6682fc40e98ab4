-- When each issuer key starts to be used, agreed by every replica: the first replica to see a key
-- records its activation time, and every replica (and every restart) reads that one, so that all
-- switch to a new key at the same instant. A Wallet key is published before it is used; a DS may
-- be scheduled (`brevet keys rotate-ds --at`).
create table key_activations (
    -- ds, identity or hybrid
    kind               text not null,
    -- SHA-256 of the key's certificate (DER), hex: the key's identity across key directories
    certificate_sha256 text not null,
    -- its number in the key directory, for people
    number             integer not null,
    activate_at        timestamptz not null,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    primary key (kind, certificate_sha256)
);
