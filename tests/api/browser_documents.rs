//! Documents in a real browser (headless Chromium): a file uploaded with the script's progress bar,
//! another dropped on the upload box, a password share link created in the share dialog, then
//! opened signed out, unlocked and downloaded; the downloaded file is the uploaded one. Every page
//! is checked with axe-core at 1280 and 390 px (`browser_product::shots`); screenshots land in
//! `target/e2e-screenshots/product-documents-*.png`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::browser::{click, expect_heading, fill, find, goto, path, sign_out};
use crate::browser_mfa::{sign_up_and_in, wait_for, wait_for_text, with_browser, Ctx};
use crate::browser_product::shots;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_uploads_shares_and_downloads_through_a_link_signed_out() {
    with_browser("documents", documents_flow).await;
}

/// Lets the browser save downloads into `dir` (through chromedriver's DevTools bridge).
async fn downloads_into(cx: &Ctx, dir: &std::path::Path) {
    let url = format!(
        "{}/session/{}/goog/cdp/execute",
        cx.driver_url, cx.session_id
    );
    let res = reqwest::Client::new()
        .post(&url)
        .json(&json!({
            "cmd": "Browser.setDownloadBehavior",
            "params": { "behavior": "allow", "downloadPath": dir.to_string_lossy() }
        }))
        .send()
        .await
        .expect("POST goog/cdp/execute");
    assert!(
        res.status().is_success(),
        "allow downloads: {}",
        res.status()
    );
}

/// The file `name` in `dir` once the browser has finished writing it.
async fn downloaded(dir: &std::path::Path, name: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let file = dir.join(name);
        let partial = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
        if file.exists() && !partial {
            return std::fs::read(&file).expect("read the download");
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            panic!("{name} was not downloaded within 20 s; the folder holds {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn documents_flow(cx: Ctx) {
    let (b, base) = (&cx.b, cx.base.clone());
    sign_up_and_in(&cx, "dora@example.com", "Dora Dealmaker").await;
    goto(b, &format!("{base}/orgs")).await;
    fill(b, "#org-name", "Northwind").await;
    click(b, "#create-org").await;
    expect_heading(b, "Northwind").await;
    fill(b, "#ws-name", "Project Falcon").await;
    click(b, "#create-workspace").await;
    expect_heading(b, "Project Falcon").await;
    click(b, "#documents-tab").await;
    expect_heading(b, "Documents").await;
    find(b, "#no-documents").await;
    shots(b, "documents-empty").await;

    // Chosen in the file input and sent by the script, with its progress bar.
    let files = tempfile::tempdir().expect("files");
    let content: Vec<u8> = "Board pack: strictly confidential.\n"
        .repeat(20_000)
        .into_bytes();
    let local = files.path().join("board-pack.txt");
    std::fs::write(&local, &content).expect("write the file");
    let input = find(b, "#file").await;
    input
        .send_keys(&local.to_string_lossy())
        .await
        .expect("choose the file");
    click(b, "#upload").await;
    wait_for_text(b, "#notice", "The file was uploaded and encrypted.").await;
    expect_heading(b, "board-pack.txt").await;
    let doc_path = path(b).await;
    assert!(doc_path.contains("/documents/"), "{doc_path}");
    shots(b, "documents-document").await;

    // Dropped on the upload box of the list.
    click(b, "#docs-link").await;
    expect_heading(b, "Documents").await;
    b.execute(
        "const dt = new DataTransfer();\
         dt.items.add(new File(['dropped in the browser'], 'dropped.txt', { type: 'text/plain' }));\
         const zone = document.querySelector('#dropzone');\
         zone.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: dt }));\
         zone.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));\
         return true;",
        vec![],
    )
    .await
    .expect("drop a file");
    wait_for_text(b, "#notice", "The file was uploaded and encrypted.").await;
    expect_heading(b, "dropped.txt").await;
    click(b, "#docs-link").await;
    expect_heading(b, "Documents").await;
    let listed = crate::browser::text(b, "#documents").await;
    assert!(
        listed.contains("board-pack.txt") && listed.contains("dropped.txt"),
        "{listed}"
    );
    shots(b, "documents-list").await;

    // A password link from the share dialog, shown once.
    goto(b, &format!("{base}{doc_path}")).await;
    click(b, "#share-dialog summary").await;
    fill(b, "#link-password", "falcon lands at dawn").await;
    fill(b, "#max-downloads", "2").await;
    click(b, "#create-link").await;
    wait_for(b, "#new-link").await;
    let url = find(b, "#new-link")
        .await
        .prop("value")
        .await
        .expect("link value")
        .expect("a link");
    assert!(url.starts_with(&format!("{base}/s/")), "{url}");
    shots(b, "documents-new-link").await;

    // Opened signed out: the password first, then the download.
    sign_out(b).await;
    let saved = tempfile::tempdir().expect("downloads");
    downloads_into(&cx, saved.path()).await;
    goto(b, &url).await;
    expect_heading(b, "A file shared with you").await;
    shots(b, "documents-share-password").await;
    fill(b, "#password", "not the password").await;
    click(b, "#submit").await;
    wait_for_text(b, "#error", "That password is not right.").await;
    fill(b, "#password", "falcon lands at dawn").await;
    click(b, "#submit").await;
    wait_for(b, "#download").await;
    shots(b, "documents-share-ready").await;
    click(b, "#download").await;
    assert_eq!(downloaded(saved.path(), "board-pack.txt").await, content);

    // The access is on the record: one download by link, one refused password.
    let org = doc_path.split('/').nth(2).expect("org id").to_string();
    let events = crate::support::chain_of(&cx.app, &org).await;
    assert!(
        events.iter().any(|a| a == "share_link.downloaded"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|a| a == "share_link.refused"),
        "{events:?}"
    );
}
