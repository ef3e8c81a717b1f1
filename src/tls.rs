//! HTTPS on `listen` with rustls: TLS 1.2 and 1.3 only, and only the cipher suites of the
//! aws-lc-rs provider, which are all AEAD (AES-GCM, ChaCha20-Poly1305) with ephemeral key
//! exchange (forward secrecy). The certificate and key (`tls.cert_file`, `tls.key_file`, PEM) are
//! read again when either file changes (checked every `tls.reload_interval_secs`) or on SIGHUP;
//! a new pair that does not load is logged and the old one kept. An optional plain-HTTP listener
//! (`tls.redirect_listen`) answers every request with a permanent redirect to the HTTPS address.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server's TLS settings from the certificate chain and key in PEM files.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    use anyhow::Context;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("tls.cert_file {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls.cert_file {}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "tls.cert_file {}: no certificate in it",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("tls.key_file {}", key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not belong together")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reloads the certificate into `tls` when its files change or on SIGHUP, until `stop`.
pub fn spawn_reloader(
    tls: axum_server::tls_rustls::RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    stop: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = (modified(&cert), modified(&key));
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<()>();
            let forced = tokio::select! {
                () = tokio::time::sleep(every) => false,
                () = hup_recv => true,
                _ = stop.wait() => return,
            };
            let now = (modified(&cert), modified(&key));
            if !forced && now == seen {
                continue;
            }
            seen = now;
            match server_config(&cert, &key) {
                Ok(c) => {
                    tls.reload_from_config(Arc::new(c));
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                }
                Err(e) => tracing::error!(
                    error = %format!("{e:#}"),
                    "the new TLS certificate does not load; the previous one stays"
                ),
            }
        }
    })
}

/// The plain-HTTP listener's only answer: a permanent redirect to the same path on `base` (the
/// public HTTPS URL; the request's Host header is not trusted for it).
pub fn redirect_router(base: String) -> axum::Router {
    let base = Arc::new(base.trim_end_matches('/').to_string());
    axum::Router::new().fallback(move |uri: Uri| {
        let base = base.clone();
        async move {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            // Only a path goes after the base: never a second authority.
            let path = if path.starts_with("//") { "/" } else { path };
            let to = format!("{base}{path}");
            redirect(&to)
        }
    })
}

fn redirect(to: &str) -> Response {
    match axum::http::HeaderValue::from_str(to) {
        Ok(v) => (
            StatusCode::PERMANENT_REDIRECT,
            [
                (axum::http::header::LOCATION, v),
                (
                    axum::http::header::CACHE_CONTROL,
                    axum::http::HeaderValue::from_static("no-store"),
                ),
            ],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
