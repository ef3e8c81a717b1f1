//! The document pages without a browser: the documents list (empty state, upload form, folders),
//! an upload through the plain form, the document page (versions, share dialog, link list,
//! revocation, deletion), a link's activity page, and the public link page with its password
//! form. Every page is free of inline script and style; a failed form shows its error.

use axum::http::StatusCode;

use crate::org_pages::{assert_clean, page, submit, submit_ok, user};
use crate::support::{Req, TestApp};

async fn room(t: &TestApp, c: &str) -> (String, String) {
    let org = submit_ok(t, c, "/orgs", &[("name", "Acme")]).await;
    let org = crate::org_pages::id_in(&org, "/orgs/");
    let ws = submit_ok(
        t,
        c,
        &format!("/orgs/{org}/workspaces"),
        &[("name", "Deal room"), ("kind", "deal"), ("description", "")],
    )
    .await;
    let ws = crate::org_pages::id_in(&ws, &format!("/orgs/{org}/workspaces/"));
    (org, ws)
}

#[tokio::test]
async fn documents_are_uploaded_shared_revoked_and_deleted_through_the_pages() {
    let t = TestApp::new().await;
    let owner = user(&t, "olga@example.com", "Olga").await;
    let (org, ws) = room(&t, &owner).await;
    let base = format!("/orgs/{org}/workspaces/{ws}");

    // The workspace links to its documents; the list starts empty, with an upload form that a
    // script enhances and a plain form that works without it.
    let html = page(&t, &owner, &base).await;
    assert!(html.contains(&format!("href=\"{base}/documents\"")));
    let html = page(&t, &owner, &format!("{base}/documents")).await;
    assert!(html.contains("id=\"no-documents\""));
    assert!(html.contains(&format!("action=\"{base}/documents/upload\"")));
    assert!(html.contains("enctype=\"multipart/form-data\""));
    assert!(html.contains(&format!(
        "data-upload=\"/api/v1/orgs/{org}/workspaces/{ws}/documents\""
    )));
    assert!(html.contains("src=\"/static/documents.js\""));
    let js = t.send(Req::get("/static/documents.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/javascript")));

    // A folder, then an upload into it through the plain form.
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{base}/folders"),
        &[("name", "Financials"), ("parent_id", "")],
    )
    .await;
    let folder = loc
        .split("folder=")
        .nth(1)
        .expect("folder")
        .split('&')
        .next()
        .expect("id")
        .to_string();
    let html = page(&t, &owner, &format!("{base}/documents?folder={folder}")).await;
    assert!(html.contains("Files in Financials"));
    let r = t
        .send(
            Req::post(&format!("{base}/documents/upload?folder={folder}"))
                .cookie(&owner)
                .file("Q3 results.txt", b"revenue up"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let loc = r.header("location").expect("location");
    let doc = crate::org_pages::id_in(&loc, &format!("{base}/documents/"));
    assert!(loc.ends_with("?done=uploaded"), "{loc}");
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("Q3 results.txt"));
    assert!(html.contains("The file was uploaded and encrypted."));
    assert!(html.contains("id=\"versions\""));
    assert!(html.contains("id=\"share-form\""));
    assert!(html.contains("id=\"no-links\""));
    assert!(html.contains(&format!(
        "href=\"/api/v1/orgs/{org}/workspaces/{ws}/documents/{doc}/content\""
    )));
    assert!(html.contains("10 bytes"), "a human size");

    // A new version through the plain form.
    let r = t
        .send(
            Req::post(&format!("{base}/documents/{doc}/versions/upload"))
                .cookie(&owner)
                .file("Q3 results v2.txt", b"revenue up, again"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let html = page(&t, &owner, &r.header("location").expect("location")).await;
    assert!(html.contains("Version 2"));

    // A link with bad terms shows the error on the form; a good one is shown once.
    let r = submit(
        &t,
        &owner,
        &format!("{base}/documents/{doc}/links"),
        &[
            ("expires_in_days", "90"),
            ("max_downloads", ""),
            ("password", ""),
            ("recipient_email", ""),
            ("version_id", ""),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("role=\"alert\""));
    assert_clean("link form", &r.text());
    let r = submit(
        &t,
        &owner,
        &format!("{base}/documents/{doc}/links"),
        &[
            ("expires_in_days", "7"),
            ("max_downloads", "3"),
            ("password", "a good password"),
            ("recipient_email", ""),
            ("version_id", ""),
            ("watermark", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert_clean("new link", &html);
    // (Attribute values are HTML-escaped, slashes included.)
    let html = html.replace("&#x2f;", "/");
    let url =
        regex::Regex::new(r#"id="new-link" value="(http://strongroom.test/s/[A-Za-z0-9_-]+)""#)
            .expect("re")
            .captures(&html)
            .expect("the new link")[1]
            .to_string();
    assert!(html.contains("0 of 3"));
    // Shown once: the page afterwards lists the link, not its secret.
    let html = page(&t, &owner, &format!("{base}/documents/{doc}")).await;
    let token = url.rsplit('/').next().expect("token");
    assert!(!html.contains(token));
    assert!(html.contains("password"));

    // The public page asks for the password, in the design system, with no session.
    let share = url.trim_start_matches("http://strongroom.test").to_string();
    let r = t.send(Req::get(&share)).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert_clean("share page", &html);
    assert!(html.contains("Q3 results v2.txt"));
    assert!(html.contains("<label for=\"password\">"));
    assert!(!html.contains("Sign out"));
    let r = t
        .send(Req::post(&share).form(&[("step", "password"), ("password", "nope nope nope")]))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("That password is not right."));
    assert!(r.text().contains("aria-invalid=\"true\""));
    let r = t
        .send(Req::post(&share).form(&[("step", "password"), ("password", "a good password")]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("id=\"download\""));

    // The link's activity page, then revocation from the list.
    let link = regex::Regex::new(r#"data-link-id="([0-9a-f-]+)""#)
        .expect("re")
        .captures(&page(&t, &owner, &format!("{base}/documents/{doc}")).await)
        .expect("link row")[1]
        .to_string();
    let html = page(&t, &owner, &format!("{base}/documents/{doc}/links/{link}")).await;
    assert!(html.contains("Refused: wrong password"), "{html}");
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{base}/documents/{doc}/links/{link}/revoke"),
        &[],
    )
    .await;
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("stopped working at once"));
    assert!(html.contains("state-revoked"));
    let r = t.send(Req::get(&share)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_clean("gone page", &r.text());
    assert!(r.text().contains("This link does not work"));

    // A viewer sees and downloads, but gets no upload, share or delete forms.
    let vera = user(&t, "vera@example.com", "Vera").await;
    t.join(&owner, &org, "vera@example.com", "member", &vera)
        .await;
    let vid = crate::org_pages::user_id(&t, &vera).await;
    let r = t
        .send(
            Req::new(
                axum::http::Method::PUT,
                &format!("/api/v1/orgs/{org}/workspaces/{ws}/members/{vid}"),
            )
            .cookie(&owner)
            .json(serde_json::json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let html = page(&t, &vera, &format!("{base}/documents?folder={folder}")).await;
    assert!(!html.contains("id=\"upload-form\""));
    let html = page(&t, &vera, &format!("{base}/documents/{doc}")).await;
    assert!(html.contains("id=\"download\""));
    assert!(!html.contains("id=\"share-form\"") && !html.contains("id=\"delete-document\""));
    let r = submit(
        &t,
        &vera,
        &format!("{base}/documents/{doc}/delete"),
        &[("confirm", "on")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Deleted from its page: back to the list, which says so.
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{base}/documents/{doc}/delete"),
        &[("confirm", "on")],
    )
    .await;
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("The document was deleted"));
    let r = t
        .send(Req::get(&format!("{base}/documents/{doc}")).cookie(&owner))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An outsider gets the 404 page for all of it.
    let oscar = user(&t, "oscar@example.com", "Oscar").await;
    let r = t
        .send(Req::get(&format!("{base}/documents")).cookie(&oscar))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
