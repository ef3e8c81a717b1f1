//! The documents bench of `bench/run`: one file (1 GiB by default) uploaded to and downloaded
//! from Strongroom (multipart in, encrypted with its per-version key into the local object store;
//! decrypted on the way out), against the bare axum baseline streaming the same file unencrypted
//! to and from disk (`baseline_server`'s `/upload`, through the same multipart parser, and
//! `/file`), in the same run. Prints the
//! throughput ratios and the server's peak resident memory during each transfer (VmHWM, reset
//! before it through `/proc/<pid>/clear_refs`, and VmRSS sampled every 20 ms).
//!
//! `documents --strongroom BIN --baseline BIN [--size-mib N] [--max-rss-mib M] [--results-dir D]`:
//! with `--max-rss-mib`, exits 1 when either transfer's peak exceeds it, or when a download does
//! not return the uploaded bytes (checked by SHA-256).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "correct horse battery staple orbit";
const EMAIL: &str = "docs@bench.example";
const BOUNDARY: &str = "strongroom-bench-boundary-93b1c";

#[derive(Parser)]
struct Args {
    #[arg(long)]
    strongroom: PathBuf,
    #[arg(long)]
    baseline: PathBuf,
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Fail when a transfer's peak RSS exceeds this many MiB.
    #[arg(long)]
    max_rss_mib: Option<u64>,
    #[arg(long)]
    results_dir: Option<PathBuf>,
    #[arg(long)]
    pid_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(args))
}

fn note_pid(pid_dir: Option<&Path>, pid: u32) -> Result<()> {
    if let Some(d) = pid_dir {
        std::fs::write(d.join(pid.to_string()), "")?;
    }
    Ok(())
}

/// Peak memory of `pid` while `work` runs: (VmHWM after a reset, highest VmRSS sampled), in bytes.
async fn peak_rss<F, T>(pid: u32, work: F) -> Result<(T, u64)>
where
    F: std::future::Future<Output = Result<T>>,
{
    let status = format!("/proc/{pid}/status");
    // "5" resets the peak resident set size (proc(5)).
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak RSS of {pid} ({e}): VmHWM is since its start");
    }
    let read = |field: &str| -> u64 {
        std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    let max = Arc::new(AtomicU64::new(read("VmRSS:")));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (max, done, status) = (max.clone(), done.clone(), status.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let rss = std::fs::read_to_string(&status)
                    .unwrap_or_default()
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
                    .map_or(0, |kb| kb * 1024);
                max.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    eprintln!(
        "server before the transfer: VmRSS {} MiB, VmHWM {} MiB; {}",
        read("VmRSS:") >> 20,
        read("VmHWM:") >> 20,
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("RssAnon")
                || l.starts_with("RssFile")
                || l.starts_with("Threads"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = work.await;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak = read("VmHWM:").max(max.load(Ordering::Relaxed));
    Ok((out?, peak))
}

/// The file in 256 KiB reads, as a request body stream (with `prefix` and `suffix` around it).
fn file_body(path: PathBuf, prefix: Vec<u8>, suffix: Vec<u8>) -> reqwest::Body {
    enum S {
        Prefix(Vec<u8>, PathBuf, Vec<u8>),
        File(tokio::fs::File, Vec<u8>),
        Ended,
        Done,
    }
    let s = futures_util::stream::unfold(S::Prefix(prefix, path, suffix), |s| async move {
        match s {
            S::Prefix(p, path, suffix) => match tokio::fs::File::open(&path).await {
                Ok(f) => Some((Ok(bytes::Bytes::from(p)), S::File(f, suffix))),
                Err(e) => Some((Err(e), S::Done)),
            },
            S::File(mut f, suffix) => {
                let mut buf = vec![0u8; 256 * 1024];
                match f.read(&mut buf).await {
                    Ok(0) => Some((Ok(bytes::Bytes::from(suffix)), S::Ended)),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(bytes::Bytes::from(buf)), S::File(f, suffix)))
                    }
                    Err(e) => Some((Err(e), S::Done)),
                }
            }
            S::Ended | S::Done => None,
        }
    });
    reqwest::Body::wrap_stream(s)
}

/// Downloads `req`, hashing what arrives: (bytes, SHA-256 hex).
async fn drain(req: reqwest::RequestBuilder) -> Result<(u64, String)> {
    let res = req.send().await?;
    ensure!(res.status().is_success(), "download: {}", res.status());
    let mut hash = Sha256::new();
    let mut n = 0u64;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        hash.update(&chunk);
    }
    Ok((n, hex::encode(hash.finalize())))
}

async fn run(args: Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let size = args.size_mib * 1024 * 1024;
    // The file: pseudo-random (incompressible) bytes, hashed as written.
    let file = tmp.path().join("payload.bin");
    let sha = {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let mut hash = Sha256::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = vec![0u8; 1024 * 1024];
        for _ in 0..args.size_mib {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            hash.update(&buf);
            f.write_all(&buf)?;
        }
        f.flush()?;
        hex::encode(hash.finalize())
    };
    let client = reqwest::Client::builder().build()?;

    // The baseline: the same file, unencrypted, to and from disk.
    let mut child = Command::new(&args.baseline)
        .arg("127.0.0.1:0")
        .env("BASELINE_FILE", &file)
        .env("BASELINE_UPLOAD", tmp.path().join("baseline-upload.bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start the baseline")?;
    let pid = child.id().context("baseline pid")?;
    note_pid(args.pid_dir.as_deref(), pid)?;
    let line = BufReader::new(child.stdout.take().context("stdout")?)
        .lines()
        .next_line()
        .await?
        .context("baseline exited")?;
    let base_addr = line
        .strip_prefix("listening on ")
        .context("baseline: unexpected first line")?
        .to_string();
    let baseline: Child = child;
    let prefix = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"payload.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    let suffix = format!("\r\n--{BOUNDARY}--\r\n").into_bytes();
    let length = prefix.len() as u64 + size + suffix.len() as u64;
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
    let t = Instant::now();
    let r = client
        .post(format!("http://{base_addr}/upload"))
        .header(reqwest::header::CONTENT_TYPE, &multipart)
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(file_body(file.clone(), prefix.clone(), suffix.clone()))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "baseline upload: {}",
        r.status()
    );
    let base_up = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (n, got) = drain(client.get(format!("http://{base_addr}/file"))).await?;
    let base_down = t.elapsed().as_secs_f64();
    ensure!(n == size && got == sha, "baseline download differs");
    drop(baseline);
    let _ = std::fs::remove_file(tmp.path().join("baseline-upload.bin"));

    // Strongroom, zero configuration (SQLite, local object store), limits out of the way.
    let data = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let mut cmd = Command::new(&args.strongroom);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env(
            "STRONGROOM_DOCUMENTS__MAX_UPLOAD_BYTES",
            (size * 2).to_string(),
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(tmp.path().join("server.err"))?)
        .kill_on_drop(true);
    for k in [
        "SIGNUP_PER_IP",
        "AUTH_PER_IP",
        "API_PER_IP",
        "API_PER_SESSION",
    ] {
        cmd.env(
            format!("STRONGROOM_RATE_LIMITS__{k}"),
            "{ max = 1000000000, window_secs = 60 }",
        );
    }
    let child = cmd.spawn().context("start strongroom")?;
    let pid = child.id().context("strongroom pid")?;
    note_pid(args.pid_dir.as_deref(), pid)?;
    let server: Child = child;
    let re = regex::Regex::new(r#""listen_addr":"([^"]+)""#)?;
    let started = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(c) = text
            .lines()
            .find(|l| l.contains("\"listening\""))
            .and_then(|l| re.captures(l))
        {
            break c[1].to_string();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "strongroom did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let base = format!("http://{addr}");
    let cookie = sign_up(&client, &base, &data).await?;
    let org = post_json(
        &client,
        &base,
        "/api/v1/orgs",
        &cookie,
        json!({"name": "Bench"}),
    )
    .await?;
    let org = org["id"].as_str().context("org")?.to_string();
    let ws = post_json(
        &client,
        &base,
        &format!("/api/v1/orgs/{org}/workspaces"),
        &cookie,
        json!({"name": "Room", "kind": "deal"}),
    )
    .await?;
    let ws = ws["id"].as_str().context("ws")?.to_string();
    let docs = format!("{base}/api/v1/orgs/{org}/workspaces/{ws}/documents");

    let t = Instant::now();
    let (doc, up_peak) = peak_rss(pid, async {
        let r = client
            .post(&docs)
            .header(reqwest::header::COOKIE, &cookie)
            .header(reqwest::header::CONTENT_TYPE, &multipart)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(file_body(file.clone(), prefix, suffix))
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        ensure!(status.as_u16() == 201, "upload: {status} {v}");
        Ok(v)
    })
    .await?;
    let up = t.elapsed().as_secs_f64();
    ensure!(
        doc["sha256"] == sha.as_str(),
        "the server hashed other bytes: {doc}"
    );
    let content = format!("{docs}/{}/content", doc["id"].as_str().context("doc id")?);
    let t = Instant::now();
    let ((n, got), down_peak) = peak_rss(
        pid,
        drain(
            client
                .get(&content)
                .header(reqwest::header::COOKIE, &cookie),
        ),
    )
    .await?;
    let down = t.elapsed().as_secs_f64();
    ensure!(
        n == size && got == sha,
        "the download differs from the upload"
    );
    let stored: u64 = walk_size(&data.join("objects"));
    drop(server);

    let mbs = |secs: f64| size as f64 / 1_048_576.0 / secs;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "\n### Documents ({} MiB file, SQLite, local object store)\n",
        args.size_mib
    );
    println!("| case | MiB/s | ratio to the plain baseline | server peak RSS |");
    println!("|---|---:|---:|---:|");
    println!(
        "| upload, baseline (same multipart parser, plain to disk) | {:.0} | 1.00 | |",
        mbs(base_up)
    );
    println!(
        "| upload, Strongroom (multipart, SHA-256, sniffed, encrypted) | {:.0} | {:.2} | {:.0} MiB |",
        mbs(up),
        base_up / up,
        mib(up_peak)
    );
    println!(
        "| download, baseline (plain, from disk) | {:.0} | 1.00 | |",
        mbs(base_down)
    );
    println!(
        "| download, Strongroom (decrypted, authenticated) | {:.0} | {:.2} | {:.0} MiB |",
        mbs(down),
        base_down / down,
        mib(down_peak)
    );
    println!(
        "\nStored object: {} bytes for {} bytes of plaintext.",
        stored, size
    );
    let report = json!({
        "size_bytes": size,
        "baseline": { "upload_secs": base_up, "download_secs": base_down },
        "strongroom": { "upload_secs": up, "download_secs": down,
                        "upload_peak_rss": up_peak, "download_peak_rss": down_peak },
        "ratios": { "upload": base_up / up, "download": base_down / down },
    });
    if let Some(d) = &args.results_dir {
        std::fs::create_dir_all(d)?;
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        std::fs::write(
            d.join(format!("{at}-documents.json")),
            serde_json::to_vec_pretty(&report)?,
        )?;
    }
    if let Some(max) = args.max_rss_mib {
        let limit = max * 1024 * 1024;
        if up_peak > limit || down_peak > limit {
            bail!(
                "peak RSS over {max} MiB: upload {:.0} MiB, download {:.0} MiB",
                mib(up_peak),
                mib(down_peak)
            );
        }
    }
    Ok(())
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_size(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

async fn post_json(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    body: Value,
) -> Result<Value> {
    let r = client
        .post(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, cookie)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "{path}: {status} {v}");
    Ok(v)
}

/// Signs up, follows the verification link from the outbox, signs in: the session cookie.
async fn sign_up(client: &reqwest::Client, base: &str, data: &Path) -> Result<String> {
    let r = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "display_name": "Bench"}))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 202, "signup: {}", r.status());
    let re = regex::Regex::new(r"/verify-email\?token=([A-Za-z0-9_\-]+)")?;
    let started = Instant::now();
    let token = loop {
        let found = std::fs::read_dir(data.join("outbox"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .find_map(|t| {
                re.captures(&t.replace("=\r\n", ""))
                    .map(|c| c[1].to_string())
            });
        if let Some(t) = found {
            break t;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "no verification email"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = client
        .post(format!("{base}/api/v1/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await?;
    ensure!(r.status().is_success(), "verify: {}", r.status());
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await?;
    ensure!(r.status().is_success(), "login: {}", r.status());
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let pair = c.split(';').next()?;
            pair.contains("strongroom_session=")
                .then(|| pair.to_string())
        })
        .context("no session cookie")
}
