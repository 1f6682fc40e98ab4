//! Brevet's integration tests: one binary, so that the throwaway Postgres cluster and the build are
//! shared. Tests that touch a store run once per store; their names end in `::sqlite` or `::postgres`.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its location"
)]

#[macro_use]
mod support;

mod admin_cli;
mod attestation;
mod bulk_updates;
mod certprov;
mod cli;
mod compose;
mod config_cli;
mod console;
mod crosscheck;
mod device_boundary;
mod docs_examples;
mod hsm;
mod http_admin;
mod http_credentials;
mod http_limits;
mod http_ops;
mod http_proofings;
mod http_surfaces;
mod http_wallet;
mod key_expiry;
mod key_rotation;
mod keys_cli;
mod mdoc;
mod mtls;
mod openapi;
mod operations;
mod outbox;
mod replicas;
mod schemathesis;
mod sim_wallet;
mod status_lists;
mod store;
mod store_credentials;
mod store_upgrade;
mod wallet_api;
