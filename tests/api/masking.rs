//! No email that Strongroom sends, and no notification it shows, carries another person's full
//! email address, even when that person chose their address as their display name. Every kind
//! of mail is set off (verification, address taken, password changed, password reset,
//! invitation, each notification kind by email, a share link's code and its first-access notice)
//! and every in-app notification kind is listed; each is read for the other people's addresses.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::documents::{code_id_in, grant_in, link, mailed_code, path_of, upload, Room};
use crate::support::{parse_eml, Mail, Req, TestApp, PASSWORD};

const OWNER: &str = "olivia.owner@corp.example";
const MIA: &str = "mia.member@corp.example";
const LATER: &str = "lars.later@corp.example";
const PARTNER: &str = "pat.partner@partner.example";

/// Every message in the outbox (delivered first), read or not before.
async fn all_mail(t: &TestApp) -> Vec<Mail> {
    t.new_mail().await;
    std::fs::read_dir(t.dir.path().join("outbox"))
        .expect("outbox")
        .filter_map(|e| e.ok())
        .map(|e| parse_eml(&std::fs::read_to_string(e.path()).expect("eml")))
        .collect()
}

async fn me_id(t: &TestApp, cookie: &str) -> String {
    t.send(Req::get("/api/v1/me").cookie(cookie)).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn created(res: &crate::support::TestResponse) -> Value {
    assert!(res.status.is_success(), "{}", res.text());
    res.json()
}

#[tokio::test]
async fn no_mail_or_notification_shows_another_persons_full_email() {
    let t = TestApp::new().await;
    // The owner chose their address as their display name: it must be masked wherever it shows.
    t.verified_user(OWNER, OWNER).await;
    let owner = t.login(OWNER).await;
    t.verified_user(MIA, "Mia").await;
    let mia = t.login(MIA).await;
    // Address taken (the signup of an existing address tells its owner) and a reset.
    t.signup(OWNER, "Someone else").await;
    let reset = t
        .send(Req::post("/api/v1/auth/password-reset").json(json!({ "email": MIA })))
        .await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{}", reset.text());
    t.new_mail().await;

    // An org, a workspace; Mia invited (an existing account: the invitation mail and an
    // "invited" notification) and Lars (no account yet).
    let org = created(
        &t.send(
            Req::post("/api/v1/orgs")
                .cookie(&owner)
                .json(json!({ "name": "Deal Co" })),
        )
        .await,
    )["id"]
        .as_str()
        .expect("org")
        .to_string();
    let ws = created(
        &t.send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&owner)
                .json(json!({ "name": "Data room", "kind": "deal" })),
        )
        .await,
    )["id"]
        .as_str()
        .expect("ws")
        .to_string();
    t.join(&owner, &org, MIA, "member", &mia).await;
    created(
        &t.send(
            Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                .cookie(&owner)
                .json(json!({ "email": LATER, "role": "member" })),
        )
        .await,
    );
    // Mia added to the workspace, assigned an item, mentioned in a comment.
    let mia_id = me_id(&t, &mia).await;
    let base = format!("/api/v1/orgs/{org}/workspaces/{ws}");
    let added = t
        .send(
            Req::put(&format!("{base}/members/{mia_id}"))
                .cookie(&owner)
                .json(json!({ "role": "editor" })),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.text());
    let item = created(
        &t.send(
            Req::post(&format!("{base}/items"))
                .cookie(&owner)
                .json(json!({ "title": "Review the NDA", "assignee_id": mia_id })),
        )
        .await,
    );
    let item_id = item["id"].as_str().expect("item").to_string();
    created(
        &t.send(
            Req::post(&format!("{base}/items/{item_id}/updates"))
                .cookie(&owner)
                .json(json!({ "body": "@Mia please look" })),
        )
        .await,
    );
    // A document shared with a partner: the code mail, and the first-access notice.
    let r = Room {
        owner: owner.clone(),
        org: org.clone(),
        base: base.clone(),
    };
    let doc = upload(&t, &r, &owner, "nda.bin", b"for partners").await;
    let url = link(
        &t,
        &r,
        doc["id"].as_str().expect("doc"),
        json!({"expires_in_seconds": 3600, "recipient_email": PARTNER, "notify_on_first_access": true}),
    )
    .await;
    let path = path_of(&url);
    t.new_mail().await;
    let post = |pairs: &[(&str, &str)]| {
        Req::post(&path)
            .header("origin", "http://strongroom.test")
            .form(pairs)
    };
    let page = t
        .send(post(&[("step", "email"), ("email", PARTNER)]))
        .await
        .text();
    let code_id = code_id_in(&page);
    let code = mailed_code(&t, PARTNER).await;
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", &code),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let got = t
        .send(Req::get(&path).header("cookie", &grant_in(&res)))
        .await;
    assert_eq!(got.body, b"for partners");

    // Last, the owner's password changed (it ends the owner's other sessions).
    let changed = t
        .send(Req::post("/api/v1/me/password").cookie(&owner).json(
            json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase for olivia" }),
        ))
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text());

    // Every mail: to whom, and that no one else's address is in it.
    let people = [OWNER, MIA, LATER, PARTNER];
    let mails = all_mail(&t).await;
    let mut kinds = Vec::new();
    // Read as a person would: a name quoted in a mail has its dots and at-signs defanged
    // (`olivia[.]owner[at]corp[.]example`), which still spells the address out.
    let undefanged = |s: &str| s.replace("[.]", ".").replace("[at]", "@");
    for m in &mails {
        let (body, subject) = (undefanged(&m.body), undefanged(&m.subject));
        for other in people.iter().filter(|p| **p != m.to) {
            assert!(
                !body.contains(other) && !subject.contains(other),
                "a mail to {} ({}) shows {other}:\n{}",
                m.to,
                m.subject,
                m.body
            );
        }
        kinds.push(format!("{} <- {}", m.to, m.subject));
    }
    kinds.sort();
    // Each kind set off above is among them (so the scan is not vacuous).
    for (to, words) in [
        (OWNER, "confirm your email"),
        (MIA, "confirm your email"),
        (OWNER, "your strongroom account"),
        (MIA, "reset your"),
        (OWNER, "password was changed"),
        // (The "invited" notification's mail is the invitation itself.)
        (MIA, "invited to an organization"),
        (LATER, "invited to an organization"),
        (MIA, "assigned an item"),
        (MIA, "mentioned you"),
        (MIA, "access to a workspace"),
        (PARTNER, "code"),
        (OWNER, "was opened"),
    ] {
        assert!(
            mails
                .iter()
                .any(|m| m.to == to && m.subject.to_lowercase().contains(words)),
            "no mail to {to} about {words:?}: {kinds:#?}"
        );
    }

    // Every in-app notification kind Mia got shows the owner masked.
    let notes = t
        .send(Req::get("/api/v1/me/notifications").cookie(&mia))
        .await
        .json();
    let text = notes.to_string();
    let mut seen: Vec<&str> = notes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    seen.sort();
    seen.dedup();
    for kind in ["assigned", "invited", "mentioned", "workspace_added"] {
        assert!(seen.contains(&kind), "{kind} in {seen:?}");
    }
    assert!(!text.contains(OWNER), "{text}");
    assert!(
        text.contains("o***@c***"),
        "the owner is shown masked: {text}"
    );
}
