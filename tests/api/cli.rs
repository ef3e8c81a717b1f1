//! The `strongroom` binary: check-config, migrate, and a zero-config serve that logs its address
//! and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn check_config_says_what_is_wrong_in_plain_words() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config"])
        .env("STRONGROOM_LISTEN", "not-an-address")
        .env("STRONGROOM_PASSWORD__MIN_LENGTH", "4")
        .env("STRONGROOM_TRUSTED_PROXIES", "[\"banana\"]")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for what in [
        "listen: 'not-an-address'",
        "password.min_length",
        "trusted_proxies: 'banana'",
    ] {
        assert!(err.contains(what), "{what} in {err}");
    }

    let file = dir.path().join("strongroom.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nsesion_timeout = 5\n").expect("write");
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sesion_timeout"),
        "unknown keys are named"
    );

    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\n[session]\nidle_timeout_secs = 600\n",
    )
    .expect("write");
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    // Flags win over env, env over the file.
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config", "--listen", "bad flag value", "--config"])
        .arg(&file)
        .env("STRONGROOM_LISTEN", "127.0.0.1:1")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad flag value"));
}

#[tokio::test]
async fn zero_config_serve_logs_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut db_name = None;
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    if crate::support::backend_is_postgres() {
        let (url, name) = crate::support::fresh_database(dir.path()).await;
        db_name = name;
        let m = bin()
            .current_dir(dir.path())
            .args(["migrate", "--database-url", &url])
            .output()
            .expect("migrate");
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
        cmd.args(["--database-url", &url]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a listening line in time");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if v["fields"]["message"] == "listening" {
            break v["fields"]["listen_addr"]
                .as_str()
                .expect("listen_addr")
                .to_string();
        }
    };
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("get");
    assert_eq!(health.status(), 200);
    let data = dir.path().join("strongroom-data");
    assert!(data.join("outbox").is_dir() && data.join("objects").is_dir());
    let key = data.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
            0o600
        );
    }
    if db_name.is_none() {
        assert!(data.join("strongroom.db").is_file());
    }

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful exit, got {status}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown signal received")),
        "{rest:?}"
    );
    if let Some(n) = db_name {
        crate::support::drop_database(n);
    }
}
