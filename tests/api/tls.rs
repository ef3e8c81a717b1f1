//! HTTPS served by the binary itself: `sslscan` (Debian package `sslscan`) finds TLS 1.2 and 1.3
//! only and no cipher suite without forward secrecy or an AEAD; Strict-Transport-Security with
//! `preload` when asked; the plain-HTTP listener only redirects (to the public URL, whatever the
//! Host header says); a new certificate is picked up when its files change, and one that does not
//! load leaves the previous one serving.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::ServerProcess;

const SSLSCAN: &str = "/usr/bin/sslscan";

/// A self-signed certificate for 127.0.0.1 and localhost named `cn`: (certificate PEM, key PEM).
fn certificate(cn: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

fn field(lines: &[String], message: &str, name: &str) -> String {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == message)
        .and_then(|v| v["fields"][name].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no {message:?} line with {name}: {lines:?}"))
}

/// A client that trusts only `cert_pem`.
fn client_trusting(cert_pem: &str) -> reqwest13::Client {
    reqwest13::Client::builder()
        .tls_certs_only([reqwest13::Certificate::from_pem(cert_pem.as_bytes()).expect("pem")])
        .redirect(reqwest13::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn sslscan(addr: &str) -> String {
    assert!(
        Path::new(SSLSCAN).exists(),
        "{SSLSCAN} is missing: install the Debian package sslscan"
    );
    let out = std::process::Command::new(SSLSCAN)
        .args(["--no-colour", "--no-heartbleed", addr])
        .output()
        .expect("run sslscan");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_offers_only_modern_tls_redirects_plain_http_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = certificate("strongroom-test-first");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert).expect("cert");
    std::fs::write(&key_file, &key).expect("key");
    let c = cert_file.to_string_lossy().into_owned();
    let k = key_file.to_string_lossy().into_owned();
    let server = ServerProcess::start(
        dir.path(),
        &[
            ("STRONGROOM_TLS__CERT_FILE", c.as_str()),
            ("STRONGROOM_TLS__KEY_FILE", k.as_str()),
            ("STRONGROOM_TLS__REDIRECT_LISTEN", "127.0.0.1:0"),
            ("STRONGROOM_TLS__RELOAD_INTERVAL_SECS", "1"),
            ("STRONGROOM_TLS__HSTS_PRELOAD", "true"),
        ],
    )
    .await;
    let addr = server.addr.clone();
    let redirect = field(
        &server.seen,
        "plain HTTP redirects to HTTPS",
        "redirect_addr",
    );

    // The scan: TLS 1.2 and 1.3 only; every accepted suite AEAD with ephemeral key exchange.
    let scan = sslscan(&addr);
    for old in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
        let line = scan
            .lines()
            .find(|l| l.trim_start().starts_with(old) && l.contains("abled"))
            .unwrap_or_else(|| panic!("sslscan did not report {old}:\n{scan}"));
        assert!(line.contains("disabled"), "{old} is offered:\n{scan}");
    }
    for new in ["TLSv1.2", "TLSv1.3"] {
        assert!(
            scan.lines()
                .any(|l| l.trim_start().starts_with(new) && l.contains("enabled")),
            "{new} is not offered:\n{scan}"
        );
    }
    let suites: Vec<&str> = scan
        .lines()
        .filter(|l| l.starts_with("Preferred") || l.starts_with("Accepted"))
        .collect();
    assert!(suites.len() >= 3, "{scan}");
    for s in &suites {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let (proto, bits, name) = (parts[1], parts[2], parts[4]);
        assert!(proto == "TLSv1.2" || proto == "TLSv1.3", "{s}");
        assert!(bits.parse::<u32>().expect("bits") >= 128, "{s}");
        assert!(
            name.contains("GCM") || name.contains("CHACHA20"),
            "not AEAD: {s}"
        );
        if proto == "TLSv1.2" {
            assert!(name.starts_with("ECDHE-"), "no forward secrecy: {s}");
        }
        for weak in ["RC4", "DES", "NULL", "EXP", "MD5", "CBC", "anon", "PSK"] {
            assert!(!name.contains(weak), "{weak}: {s}");
        }
    }

    // HTTPS answers, with HSTS preload; plain HTTP on the TLS port does not.
    let https = client_trusting(&cert);
    let r = https
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000; includeSubDomains; preload")
    );
    let plain = reqwest13::Client::builder()
        .redirect(reqwest13::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let r = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(
        r.map(|r| r.status() != 200).unwrap_or(true),
        "plain HTTP served on the TLS port"
    );

    // The redirect listener: to the public HTTPS URL, path and query kept, Host ignored.
    let r = plain
        .get(format!("http://{redirect}/login?next=%2Forgs"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("redirect");
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("https://{addr}/login?next=%2Forgs").as_str())
    );

    // A new certificate is served once its files change, without a restart.
    let (cert2, key2) = certificate("strongroom-test-second");
    std::fs::write(&key_file, &key2).expect("key");
    std::fs::write(&cert_file, &cert2).expect("cert");
    let second = client_trusting(&cert2);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if second
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A certificate that does not load is refused; the working one keeps serving.
    std::fs::write(&cert_file, "not a certificate").expect("cert");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = second
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("still served");
    assert_eq!(r.status(), 200);
    let (status, lines) = server.stop().await;
    assert!(status.success(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("does not load")),
        "the broken certificate was reported"
    );
}
