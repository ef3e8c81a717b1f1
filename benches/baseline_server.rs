//! The bare axum baseline of `bench/run`: one JSON route, nothing else (no middleware, no state).
//!
//! `baseline_server [ADDR]` (default `127.0.0.1:0`) prints `listening on ADDR` with the bound
//! address on stdout, then serves `GET /json` → `{"message":"Hello, World!"}` until it is killed
//! or its stdin closes (so it never outlives the harness that started it).

use anyhow::{Context, Result};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

async fn hello() -> Json<Value> {
    Json(json!({ "message": "Hello, World!" }))
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(serve())
}

async fn serve() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new().route("/json", get(hello));
    // Ends when stdin reaches its end (the parent closed it or exited).
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stdin_closed)
        .await?;
    Ok(())
}
