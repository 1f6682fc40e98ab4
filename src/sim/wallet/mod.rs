//! `brevet sim wallet`: Google's servers and an Android device, against a running Brevet. The
//! device (`android`) is written from Android's definitions alone; the Google side (`client`,
//! `flow`, `load`) speaks the Wallet API's JSON and relays what the device makes.

pub mod android;
pub mod client;
pub mod flow;
pub mod load;
