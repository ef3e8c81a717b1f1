//! Integration tests, run against SQLite by default and PostgreSQL with
//! `STRONGROOM_TEST_DATABASE=postgres`.

mod support;

mod abuse;
mod audit;
mod cli;
mod hardening;
mod identity;
mod logs;
mod pages;
mod sessions;
// Needs the dev-dependency `hyper-util = { version = "0.1", features = ["client-legacy", "http1", "tokio"] }`
// (fantoccini without TLS features takes its HTTP connector from it); enable together with it.
// mod browser;
