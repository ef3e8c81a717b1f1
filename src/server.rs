//! Running the server: bind, serve with client addresses, background jobs, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::state::AppState;

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    app: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let _ = crate::http::ops::metrics_handle();
    let (trigger, stop) = crate::shutdown::channel();
    let worker = app.mailer.spawn_worker(stop.clone());
    let retention = crate::audit::retention::spawn_job(app.retention_job(), stop.clone());
    let cleanup = crate::tenancy::documents::spawn_cleanup(&app, stop.clone());
    let purge = crate::purge::spawn_job(app.purge_job(), stop.clone());
    let erasure = crate::identity::erasure::spawn_job(&app, stop.clone());
    let exports = crate::exports::spawn_job(&app, stop.clone());
    let backups = crate::backup::spawn_schedule(&app, stop.clone());
    let webhooks = crate::tenancy::webhooks::spawn_loop(&app, stop.clone());
    // Texts written before the search index existed are indexed once, in the background.
    let (db, keyring) = (app.db.clone(), app.keyring.clone());
    let backfill = tokio::spawn(async move {
        match crate::tenancy::search::backfill(&db, &keyring).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(indexed = n, "search index backfilled"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "search index backfill failed"),
        }
    });
    let tls = app.config.tls.clone();
    let public_url = app.config.public_url();
    let app_background = app.background.clone();
    let router = crate::http::router(app);
    let mut tls_tasks = Vec::new();
    match tls {
        None => {
            // SIGHUP reloads the certificate when there is one; without one it must not stop the
            // server (its default action), whatever a service manager's reload sends.
            #[cfg(unix)]
            if let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                let stop = stop.clone();
                tls_tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            r = hup.recv() => match r {
                                Some(()) => tracing::info!("SIGHUP: no certificate to reload (TLS is off)"),
                                None => return,
                            },
                            _ = stop.wait() => return,
                        }
                    }
                }));
            }
            tracing::info!(listen_addr = %addr, public_url = %public_url, "listening");
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        Some(t) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
                crate::tls::server_config(&t.cert_file, &t.key_file)?,
            ));
            tls_tasks.push(crate::tls::spawn_reloader(
                rustls.clone(),
                t.cert_file.clone(),
                t.key_file.clone(),
                std::time::Duration::from_secs(t.reload_interval_secs),
                stop.clone(),
            ));
            if let Some(redirect) = &t.redirect_listen {
                let plain = TcpListener::bind(redirect).await?;
                tracing::info!(redirect_addr = %plain.local_addr()?, "plain HTTP redirects to HTTPS");
                let r = crate::tls::redirect_router(public_url.clone());
                let stop = stop.clone();
                tls_tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(plain, r)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait().await;
                        })
                        .await;
                }));
            }
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            tracing::info!(listen_addr = %addr, public_url = %public_url, tls = true, "listening");
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<SocketAddr>())
                .await?;
        }
    }
    app_background
        .drain(std::time::Duration::from_secs(10))
        .await;
    trigger.fire();
    let _ = worker.await;
    let _ = retention.await;
    let _ = cleanup.await;
    let _ = webhooks.await;
    if let Some(b) = backups {
        let _ = b.await;
    }
    if let Some(p) = purge {
        let _ = p.await;
    }
    if let Some(e) = erasure {
        let _ = e.await;
    }
    let _ = exports.await;
    for t in tls_tasks {
        let _ = t.await;
    }
    backfill.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled: a SIGTERM that arrives after the "listening" line but before the server
/// first polls its shutdown future must drain, not kill, the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutdown signal received; draining");
    }
}
