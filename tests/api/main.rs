//! Integration tests, run against SQLite by default and PostgreSQL with
//! `STRONGROOM_TEST_DATABASE=postgres`.

mod support;
mod tenancy;
mod webhooks;
mod work;

mod abuse;
mod api_keys;
mod audit;
mod audit_page;
mod audit_trail;
mod backup;
mod billing;
mod boards;
mod browser;
mod browser_documents;
mod browser_integrations;
mod browser_mfa;
mod browser_product;
mod cli;
mod document_pages;
mod documents;
mod documents_s3;
mod hardening;
mod hardening_abuse;
mod hardening_small;
mod identity;
mod integration_pages;
mod logs;
mod matrix;
mod mfa;
mod org_pages;
mod pages;
mod product_pages;
mod rejections;
mod sessions;
