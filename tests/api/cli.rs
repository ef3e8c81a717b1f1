//! The `strongroom` binary: check-config, migrate, and a zero-config serve that logs its address
//! and stops cleanly on SIGTERM.

use crate::support::{strongroom_bin as bin, ServerProcess};

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
    // The file can also be named by STRONGROOM_CONFIG.
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config"])
        .env("STRONGROOM_CONFIG", &file)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Argon2 below the OWASP floor needs an explicit test-only switch.
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config"])
        .env("STRONGROOM_PASSWORD__ARGON2_MEMORY_KIB", "1024")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("insecure_fast_hashing_for_tests"));
    // The shipped example is valid.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/strongroom.example.toml");
    let out = bin()
        .current_dir(dir.path())
        .args(["check-config", "--config", example])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let server = ServerProcess::start(dir.path(), &[]).await;
    let health = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .expect("get");
    assert_eq!(health.status(), 200);
    let data = dir.path().join("strongroom-data");
    assert!(data.join("outbox").is_dir() && data.join("objects").is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The data dir holds the outbox (live links) and the database: this user only.
        let dir_mode = std::fs::metadata(&data)
            .expect("data dir")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    if !crate::support::backend_is_postgres() {
        assert!(data.join("strongroom.db").is_file());
    }
    // A service manager's reload (SIGHUP) without TLS configured: logged, and the server serves on.
    #[cfg(unix)]
    {
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(hup.success());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let health = reqwest::get(format!("http://{}/healthz", server.addr))
            .await
            .expect("still serving after SIGHUP");
        assert_eq!(health.status(), 200);
    }
    let (status, lines) = server.stop().await;
    assert!(status.success(), "graceful exit, got {status}");
    assert!(
        lines.iter().any(|l| l.contains("shutdown signal received")),
        "{lines:?}"
    );
    #[cfg(unix)]
    assert!(
        lines.iter().any(|l| l.contains("no certificate to reload")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("generated a new master key")),
        "the generated key is warned about"
    );
}

#[tokio::test]
async fn create_superadmin_needs_a_verified_account() {
    let dir = tempfile::tempdir().expect("tmp");
    let (url, name) = crate::support::fresh_database(dir.path()).await;
    let out = bin()
        .current_dir(dir.path())
        .args([
            "admin",
            "create-superadmin",
            "--email",
            "nobody@example.com",
            "--database-url",
            &url,
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No verified account"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .current_dir(dir.path())
        .args([
            "admin",
            "create-superadmin",
            "--email",
            "not an email",
            "--database-url",
            &url,
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    if let Some(n) = name {
        crate::support::drop_database(n);
    }
}
