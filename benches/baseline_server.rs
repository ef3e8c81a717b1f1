//! The bare axum baseline of `bench/run`: one JSON route, nothing else (no middleware, no state).
//!
//! `baseline_server [ADDR]` (default `127.0.0.1:0`) prints `listening on ADDR` with the bound
//! address on stdout, then serves `GET /json` → `{"message":"Hello, World!"}` until it is killed
//! or its stdin closes (so it never outlives the harness that started it).
//!
//! For the documents bench it also streams a file unencrypted: `GET /file` sends the file named
//! by `BASELINE_FILE` from disk in 1 MiB reads, `POST /upload` writes the `file` part of a
//! multipart body (the same parser as the server's) to `BASELINE_UPLOAD`.

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

async fn hello() -> Json<Value> {
    Json(json!({ "message": "Hello, World!" }))
}

/// Bytes per disk read: 1 MiB, as the server's local object store reads them (64 KiB reads through
/// `tokio::fs`, a blocking-pool hop each, made the baseline a third slower and flattered the
/// server).
const IO_SIZE: usize = 1024 * 1024;

/// The file of `BASELINE_FILE`, streamed from disk.
async fn file() -> Result<Body, StatusCode> {
    let path = std::env::var("BASELINE_FILE").map_err(|_| StatusCode::NOT_FOUND)?;
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|_| StatusCode::NOT_FOUND)?;
    let chunks = futures_util::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; IO_SIZE];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok(Body::from_stream(chunks))
}

/// The `file` part of a `multipart/form-data` body (parsed by the same parser the server uses),
/// written to `BASELINE_UPLOAD` as it arrives: the server's upload without the encryption, the
/// hashing, the object store and the database.
async fn upload(req: Request) -> StatusCode {
    let Ok(path) = std::env::var("BASELINE_UPLOAD") else {
        return StatusCode::NOT_FOUND;
    };
    let Some(boundary) = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    };
    let mut multipart = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
    let Ok(mut f) = tokio::fs::File::create(path).await else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    // `tokio::fs::File` buffers each write and lets a blocking thread write it behind us: this
    // measured faster here than gathering 1 MiB first.
    while let Ok(Some(mut field)) = multipart.next_field().await {
        if field.name() != Some("file") {
            continue;
        }
        while let Some(chunk) = field.next().await {
            let Ok(chunk) = chunk else {
                return StatusCode::BAD_REQUEST;
            };
            if f.write_all(&chunk).await.is_err() {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
    }
    if f.flush().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::CREATED
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
    let app = Router::new()
        .route("/json", get(hello))
        .route("/file", get(file))
        .route("/upload", post(upload));
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
