//! Simulators of the services Brevet talks to but cannot reach from a test machine, built to the
//! spec including its errors. Used by the integration tests and, later, by `brevet sim`.

pub mod chrome;
pub mod google;
pub mod stepca;
pub mod wallet;
