//! Strongroom: a self-hosted, multi-tenant collaboration server whose security is the product.
//! Layers (data flows one way): `http` → services (`identity`, `audit`) → `store`/`blobs`/`crypto`/`mail`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod background;
pub mod backup;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod content;
pub mod crypto;
pub mod error;
pub mod exports;
pub mod http;
pub mod humanize;
pub mod identity;
pub mod keys;
pub mod logging;
pub mod mail;
pub mod markdown;
pub mod mask;
pub mod net_guard;
pub mod private_dir;
pub mod purge;
pub mod ratelimit;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod templates;
pub mod tenancy;
pub mod text;
pub mod tls;
pub mod watermark;
