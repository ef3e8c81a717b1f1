//! The isolation matrix, generated from the router's own route table (the OpenAPI document that
//! utoipa-axum builds from the registered routes): every tenant route × every kind of caller gets
//! the status its required role says. A tenant route added without an entry here fails the test.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use strongroom::config::Limit;

use crate::support::{Req, TestApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OrgNeed {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum WsNeed {
    Viewer,
    Editor,
    Owner,
}

#[derive(Debug, Clone, Copy)]
enum Need {
    Org(OrgNeed),
    Ws(WsNeed),
    /// The platform superadmin's bypass: nobody in this matrix is one.
    Superadmin,
    /// Owners and admins; to members the route does not exist (the audit trail).
    OrgHidden(OrgNeed),
}

/// What each tenant route requires (API.md, "Tenancy and work").
fn needs() -> BTreeMap<(&'static str, &'static str), Need> {
    use Need::*;
    let o = "/api/v1/orgs/{org_id}";
    let w = "/api/v1/orgs/{org_id}/workspaces/{ws_id}";
    let mut m = BTreeMap::new();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for (method, path, need) in [
        ("get", o.to_string(), Org(OrgNeed::Member)),
        ("patch", o.to_string(), Org(OrgNeed::Admin)),
        ("delete", o.to_string(), Org(OrgNeed::Owner)),
        ("get", format!("{o}/members"), Org(OrgNeed::Member)),
        (
            "patch",
            format!("{o}/members/{{user_id}}"),
            Org(OrgNeed::Admin),
        ),
        (
            "delete",
            format!("{o}/members/{{user_id}}"),
            Org(OrgNeed::Admin),
        ),
        ("post", format!("{o}/invitations"), Org(OrgNeed::Admin)),
        ("get", format!("{o}/invitations"), Org(OrgNeed::Admin)),
        (
            "delete",
            format!("{o}/invitations/{{id}}"),
            Org(OrgNeed::Admin),
        ),
        ("post", format!("{o}/workspaces"), Org(OrgNeed::Admin)),
        ("get", format!("{o}/workspaces"), Org(OrgNeed::Member)),
        ("get", w.to_string(), Ws(WsNeed::Viewer)),
        ("patch", w.to_string(), Ws(WsNeed::Editor)),
        ("delete", w.to_string(), Ws(WsNeed::Owner)),
        ("get", format!("{w}/members"), Ws(WsNeed::Viewer)),
        ("put", format!("{w}/members/{{user_id}}"), Ws(WsNeed::Owner)),
        (
            "delete",
            format!("{w}/members/{{user_id}}"),
            Ws(WsNeed::Owner),
        ),
        ("post", format!("{w}/items"), Ws(WsNeed::Editor)),
        ("get", format!("{w}/items"), Ws(WsNeed::Viewer)),
        ("get", format!("{w}/items/{{item_id}}"), Ws(WsNeed::Viewer)),
        (
            "patch",
            format!("{w}/items/{{item_id}}"),
            Ws(WsNeed::Editor),
        ),
        (
            "delete",
            format!("{w}/items/{{item_id}}"),
            Ws(WsNeed::Editor),
        ),
        (
            "post",
            format!("{w}/items/{{item_id}}/updates"),
            Ws(WsNeed::Editor),
        ),
        (
            "get",
            format!("{w}/items/{{item_id}}/updates"),
            Ws(WsNeed::Viewer),
        ),
        (
            "post",
            "/api/v1/admin/orgs/{org_id}".to_string(),
            Superadmin,
        ),
        ("get", format!("{o}/search"), Org(OrgNeed::Member)),
        ("put", format!("{w}/statuses"), Ws(WsNeed::Editor)),
        (
            "post",
            format!("{w}/items/{{item_id}}/move"),
            Ws(WsNeed::Editor),
        ),
        (
            "get",
            format!("{o}/audit-events"),
            OrgHidden(OrgNeed::Admin),
        ),
        (
            "get",
            format!("{o}/audit-events/export"),
            OrgHidden(OrgNeed::Admin),
        ),
        (
            "get",
            format!("{o}/audit-events/verify"),
            OrgHidden(OrgNeed::Admin),
        ),
        (
            "post",
            "/api/v1/admin/orgs/{org_id}/members".to_string(),
            Superadmin,
        ),
        ("post", format!("{w}/documents"), Ws(WsNeed::Editor)),
        ("get", format!("{w}/documents"), Ws(WsNeed::Viewer)),
        (
            "get",
            format!("{w}/documents/{{doc_id}}"),
            Ws(WsNeed::Viewer),
        ),
        (
            "patch",
            format!("{w}/documents/{{doc_id}}"),
            Ws(WsNeed::Editor),
        ),
        (
            "delete",
            format!("{w}/documents/{{doc_id}}"),
            Ws(WsNeed::Editor),
        ),
        (
            "post",
            format!("{w}/documents/{{doc_id}}/versions"),
            Ws(WsNeed::Editor),
        ),
        (
            "get",
            format!("{w}/documents/{{doc_id}}/content"),
            Ws(WsNeed::Viewer),
        ),
        (
            "post",
            format!("{w}/documents/{{doc_id}}/links"),
            Ws(WsNeed::Editor),
        ),
        (
            "get",
            format!("{w}/documents/{{doc_id}}/links"),
            Ws(WsNeed::Editor),
        ),
        (
            "delete",
            format!("{w}/documents/{{doc_id}}/links/{{link_id}}"),
            Ws(WsNeed::Editor),
        ),
        (
            "get",
            format!("{w}/documents/{{doc_id}}/links/{{link_id}}/accesses"),
            Ws(WsNeed::Editor),
        ),
        ("post", format!("{w}/folders"), Ws(WsNeed::Editor)),
        ("get", format!("{w}/folders"), Ws(WsNeed::Viewer)),
        (
            "delete",
            format!("{w}/folders/{{folder_id}}"),
            Ws(WsNeed::Editor),
        ),
        ("post", format!("{o}/api-keys"), Org(OrgNeed::Admin)),
        ("get", format!("{o}/api-keys"), Org(OrgNeed::Admin)),
        (
            "delete",
            format!("{o}/api-keys/{{id}}"),
            Org(OrgNeed::Admin),
        ),
        ("get", format!("{o}/billing"), Org(OrgNeed::Admin)),
        ("post", format!("{o}/exports"), Org(OrgNeed::Owner)),
        ("get", format!("{o}/exports/{{id}}"), Org(OrgNeed::Owner)),
        (
            "get",
            format!("{o}/exports/{{id}}/download"),
            Org(OrgNeed::Owner),
        ),
        ("post", format!("{o}/webhooks"), Org(OrgNeed::Admin)),
        ("get", format!("{o}/webhooks"), Org(OrgNeed::Admin)),
        (
            "delete",
            format!("{o}/webhooks/{{id}}"),
            Org(OrgNeed::Admin),
        ),
        (
            "get",
            format!("{o}/webhooks/{{id}}/deliveries"),
            Org(OrgNeed::Admin),
        ),
        (
            "post",
            format!("{o}/webhooks/{{id}}/test"),
            Org(OrgNeed::Admin),
        ),
        (
            "post",
            format!("{o}/webhooks/{{id}}/deliveries/{{delivery_id}}/redeliver"),
            Org(OrgNeed::Admin),
        ),
        (
            "post",
            format!("{o}/webhooks/{{id}}/rotate-secret"),
            Org(OrgNeed::Admin),
        ),
        (
            "post",
            format!("{o}/webhooks/{{id}}/enable"),
            Org(OrgNeed::Admin),
        ),
    ] {
        m.insert((method, leak(path)), need);
    }
    m
}

/// The scope an API key needs for each tenant route (API.md, "Integrations"); None: no key may
/// use it (the org's management, the operator's routes). Written out here, apart from the server's
/// own rule, so that the two must agree.
fn key_scope(method: &str, template: &str) -> Option<&'static str> {
    let read = method == "get";
    let rw = |r: &'static str, w: &'static str| Some(if read { r } else { w });
    let rest = template.strip_prefix("/api/v1/orgs/{org_id}")?;
    if rest.is_empty() || rest == "/members" {
        return if read { Some("workspaces:read") } else { None };
    }
    if rest.starts_with("/members/")
        || rest.starts_with("/invitations")
        || rest.starts_with("/api-keys")
    {
        return None;
    }
    if rest == "/search" {
        // Items and comments alike: no single scope is enough (see `api_keys.rs` for both).
        return Some("items:read+updates:read");
    }
    if rest.starts_with("/audit-events") {
        return Some("audit:read");
    }
    let ws = rest.strip_prefix("/workspaces")?;
    let ws = ws.strip_prefix("/{ws_id}").unwrap_or(ws);
    if ws.ends_with("/updates") {
        rw("updates:read", "updates:write")
    } else if ws.starts_with("/items") || ws.starts_with("/statuses") {
        rw("items:read", "items:write")
    } else if ws.starts_with("/documents") || ws.starts_with("/folders") {
        rw("documents:read", "documents:write")
    } else {
        rw("workspaces:read", "workspaces:write")
    }
}

const SCOPES: [&str; 9] = [
    "workspaces:read",
    "workspaces:write",
    "items:read",
    "items:write",
    "updates:read",
    "updates:write",
    "documents:read",
    "documents:write",
    "audit:read",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    /// An API key of the owner's with the one scope `SCOPES[i]`.
    Key(usize),
    /// An API key of the other org's owner with every scope.
    ForeignKey,
    Anonymous,
    Outsider,
    OtherOrgOwner,
    Member,
    WsViewer,
    WsEditor,
    WsOwner,
    Admin,
    Owner,
}

const ACTORS: [Actor; 9] = [
    Actor::Anonymous,
    Actor::Outsider,
    Actor::OtherOrgOwner,
    Actor::Member,
    Actor::WsViewer,
    Actor::WsEditor,
    Actor::WsOwner,
    Actor::Admin,
    Actor::Owner,
];

/// What a key gets: 403 where no key may go or its scope is not the route's; 404 in another org;
/// otherwise what its creator (the owner) gets.
fn expected_for_key(actor: Actor, need: Need, scope: Option<&str>) -> Option<StatusCode> {
    match (actor, scope) {
        (_, None) => Some(StatusCode::FORBIDDEN),
        (Actor::ForeignKey, Some(_)) => Some(StatusCode::NOT_FOUND),
        (Actor::Key(i), Some(sc)) if SCOPES[i] == sc => expected(Actor::Owner, need),
        _ => Some(StatusCode::FORBIDDEN),
    }
}

fn expected(actor: Actor, need: Need) -> Option<StatusCode> {
    use Actor::*;
    match actor {
        Key(_) | ForeignKey => unreachable!("keys: expected_for_key"),
        Anonymous => return Some(StatusCode::UNAUTHORIZED),
        Outsider | OtherOrgOwner => return Some(StatusCode::NOT_FOUND),
        _ => {}
    }
    let org = match actor {
        Owner => OrgNeed::Owner,
        Admin => OrgNeed::Admin,
        _ => OrgNeed::Member,
    };
    let ws = match actor {
        Owner | Admin | WsOwner => Some(WsNeed::Owner),
        WsEditor => Some(WsNeed::Editor),
        WsViewer => Some(WsNeed::Viewer),
        _ => None,
    };
    match need {
        Need::Superadmin => Some(StatusCode::NOT_FOUND),
        Need::OrgHidden(n) if org >= n => None,
        Need::OrgHidden(_) => Some(StatusCode::NOT_FOUND),
        Need::Org(n) if org >= n => None,
        Need::Org(_) => Some(StatusCode::FORBIDDEN),
        Need::Ws(n) => match ws {
            None => Some(StatusCode::NOT_FOUND),
            Some(r) if r >= n => None,
            Some(_) => Some(StatusCode::FORBIDDEN),
        },
    }
}

struct World {
    keys: BTreeMap<String, String>,
    org: String,
    ws: String,
    item: String,
    doc: String,
    link: String,
    cookies: BTreeMap<&'static str, String>,
    owner: String,
    n: std::cell::Cell<u32>,
}

impl World {
    fn cookie(&self, a: Actor) -> Option<&String> {
        self.cookies.get(format!("{a:?}").as_str())
    }
    fn key(&self, a: Actor) -> Option<&String> {
        self.keys.get(&format!("{a:?}"))
    }
    fn next(&self) -> u32 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }
}

async fn signup_login(t: &TestApp, email: &str) -> String {
    t.verified_user(email, "Matrix User").await;
    t.login(email).await
}

async fn add_member(
    t: &TestApp,
    owner: &str,
    org: &str,
    email: &str,
    role: &str,
) -> (String, String) {
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                .cookie(owner)
                .json(json!({"email": email, "role": role})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let token = t.mail_to(email).await.token("/invitations/accept");
    let cookie = signup_login(t, email).await;
    let r = t
        .send(
            Req::post("/api/v1/invitations/accept")
                .cookie(&cookie)
                .json(json!({ "token": token })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = t.me(&cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    (cookie, id)
}

async fn ok(t: &TestApp, r: Req) -> Value {
    let r = t.send(r).await;
    assert!(r.status.is_success(), "{}", r.text());
    r.json()
}

async fn new_doc(t: &TestApp, w: &World, ws: &str) -> String {
    let d = ok(
        t,
        Req::post(&format!("/api/v1/orgs/{}/workspaces/{ws}/documents", w.org))
            .cookie(&w.owner)
            .file("matrix.txt", b"matrix document"),
    )
    .await;
    d["id"].as_str().expect("id").to_string()
}

async fn new_link(t: &TestApp, w: &World, ws: &str, doc: &str) -> String {
    ok(
        t,
        Req::post(&format!(
            "/api/v1/orgs/{}/workspaces/{ws}/documents/{doc}/links",
            w.org
        ))
        .cookie(&w.owner)
        .json(json!({"expires_in_seconds": 3600})),
    )
    .await;
    let links = ok(
        t,
        Req::get(&format!(
            "/api/v1/orgs/{}/workspaces/{ws}/documents/{doc}/links",
            w.org
        ))
        .cookie(&w.owner),
    )
    .await;
    links[0]["id"].as_str().expect("id").to_string()
}

async fn new_hook(t: &TestApp, w: &World) -> String {
    let h = ok(
        t,
        Req::post(&format!("/api/v1/orgs/{}/webhooks", w.org))
            .cookie(&w.owner)
            .json(json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})),
    )
    .await;
    h["id"].as_str().expect("id").to_string()
}

async fn new_ws(t: &TestApp, w: &World, roles: &BTreeMap<&'static str, String>) -> String {
    let ws = ok(
        t,
        Req::post(&format!("/api/v1/orgs/{}/workspaces", w.org))
            .cookie(&w.owner)
            .json(json!({"name": "Room", "kind": "deal"})),
    )
    .await;
    let ws = ws["id"].as_str().expect("id").to_string();
    for (uid, role) in [
        ("WsViewer", "viewer"),
        ("WsEditor", "editor"),
        ("WsOwner", "owner"),
    ] {
        let path = format!(
            "/api/v1/orgs/{}/workspaces/{ws}/members/{}",
            w.org, roles[uid]
        );
        ok(
            t,
            Req::new(Method::PUT, &path)
                .cookie(&w.owner)
                .json(json!({ "role": role })),
        )
        .await;
    }
    ws
}

#[tokio::test]
async fn every_tenant_route_answers_every_kind_of_caller_as_its_role_says() {
    let t = TestApp::with(|c| {
        c.rate_limits.signup_per_ip = Limit::new(10_000, 60);
        c.rate_limits.auth_per_ip = Limit::new(100_000, 60);
        c.rate_limits.recovery_per_email = Limit::new(10_000, 60);
        c.rate_limits.api_keys_per_org = Limit::new(10_000, 60);
        // Webhook endpoints on loopback (nothing listens there: deliveries fail to connect).
        c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
        c.webhooks.allow_http = true;
    })
    .await;
    // The route table, from the router itself.
    let (_, doc) = strongroom::http::api(&t.app);
    let doc = serde_json::to_value(&doc).expect("doc");
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.contains("{org_id}") {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.push((method.to_string(), path.clone()));
            }
        }
    }
    let table = needs();
    for (m, p) in &routes {
        assert!(
            table.contains_key(&(m.as_str(), p.as_str())),
            "no matrix entry for {m} {p}: add one"
        );
    }
    assert_eq!(
        routes.len(),
        table.len(),
        "every matrix entry is a real route"
    );
    // Deleting the org goes last: it ends the world.
    routes.sort_by_key(|(m, p)| {
        (
            m == "delete" && p == "/api/v1/orgs/{org_id}",
            p.clone(),
            m.clone(),
        )
    });

    // The world: one org with a member of every kind, a workspace and an item; another org.
    let owner = signup_login(&t, "owner@example.com").await;
    let org = ok(
        &t,
        Req::post("/api/v1/orgs")
            .cookie(&owner)
            .json(json!({"name": "Target"})),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut cookies = BTreeMap::new();
    let mut ids = BTreeMap::new();
    cookies.insert("Owner", owner.clone());
    for (name, role) in [
        ("Admin", "admin"),
        ("Member", "member"),
        ("WsViewer", "member"),
        ("WsEditor", "member"),
        ("WsOwner", "member"),
    ] {
        let (c, id) = add_member(
            &t,
            &owner,
            &org,
            &format!("{}@example.com", name.to_lowercase()),
            role,
        )
        .await;
        cookies.insert(name, c);
        ids.insert(name, id);
    }
    // The user that member-management routes act on: an org member who is none of the callers.
    let target = add_member(&t, &owner, &org, "target@example.com", "member")
        .await
        .1;
    cookies.insert("Outsider", signup_login(&t, "outsider@example.com").await);
    let other = signup_login(&t, "other@example.com").await;
    let other_org = ok(
        &t,
        Req::post("/api/v1/orgs")
            .cookie(&other)
            .json(json!({"name": "Elsewhere"})),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    // API keys: the owner's, one per scope; the other org's owner's, with every scope.
    let mut keys = BTreeMap::new();
    for (i, sc) in SCOPES.iter().enumerate() {
        let k = ok(
            &t,
            Req::post(&format!("/api/v1/orgs/{org}/api-keys"))
                .cookie(&owner)
                .json(json!({"name": format!("only {sc}"), "scopes": [sc]})),
        )
        .await;
        keys.insert(
            format!("{:?}", Actor::Key(i)),
            k["key"].as_str().expect("key").to_string(),
        );
    }
    let k = ok(
        &t,
        Req::post(&format!("/api/v1/orgs/{other_org}/api-keys"))
            .cookie(&other)
            .json(json!({"name": "everything", "scopes": SCOPES})),
    )
    .await;
    keys.insert(
        format!("{:?}", Actor::ForeignKey),
        k["key"].as_str().expect("key").to_string(),
    );
    cookies.insert("OtherOrgOwner", other);
    let mut w = World {
        keys,
        org: org.clone(),
        ws: String::new(),
        item: String::new(),
        doc: String::new(),
        link: String::new(),
        cookies,
        owner: owner.clone(),
        n: 0.into(),
    };
    w.ws = new_ws(&t, &w, &ids).await;
    let item = ok(
        &t,
        Req::post(&format!("/api/v1/orgs/{org}/workspaces/{}/items", w.ws))
            .cookie(&owner)
            .json(json!({"title": "Item"})),
    )
    .await;
    w.item = item["id"].as_str().expect("id").to_string();
    w.doc = new_doc(&t, &w, &w.ws).await;
    w.link = new_link(&t, &w, &w.ws, &w.doc).await;
    // A webhook endpoint with one failed delivery in its log.
    let hook = new_hook(&t, &w).await;
    ok(
        &t,
        Req::post(&format!("/api/v1/orgs/{org}/webhooks/{hook}/test")).cookie(&owner),
    )
    .await;
    strongroom::tenancy::webhooks::run_once(&t.app)
        .await
        .expect("delivery loop");
    let log = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/webhooks/{hook}/deliveries")).cookie(&owner),
    )
    .await;
    let delivery = log["items"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_string();
    // An export of the org, built and ready.
    let export = ok(
        &t,
        Req::post(&format!("/api/v1/orgs/{org}/exports")).cookie(&owner),
    )
    .await["id"]
        .as_str()
        .expect("export")
        .to_string();
    for _ in 0..100 {
        strongroom::exports::run_once(&t.app).await.expect("export");
        let v = ok(
            &t,
            Req::get(&format!("/api/v1/orgs/{org}/exports/{export}")).cookie(&owner),
        )
        .await;
        if v["status"] == "ready" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut checked = 0;
    let mut actors: Vec<Actor> = (0..SCOPES.len()).map(Actor::Key).collect();
    actors.push(Actor::ForeignKey);
    actors.extend(ACTORS);
    for (method, template) in &routes {
        let need = table[&(method.as_str(), template.as_str())];
        for &actor in &actors {
            // Fresh targets for destructive calls, so every caller meets the same situation.
            let mut ws = w.ws.clone();
            let mut item = w.item.clone();
            let mut user = target.clone();
            let mut invitation = String::new();
            if method == "delete" && template.ends_with("{ws_id}") {
                ws = new_ws(&t, &w, &ids).await;
            }
            let mut doc = w.doc.clone();
            let mut link = w.link.clone();
            let mut folder = String::new();
            if method == "delete" && template.ends_with("{doc_id}") {
                doc = new_doc(&t, &w, &ws).await;
            }
            if method == "delete" && template.ends_with("{link_id}") {
                link = new_link(&t, &w, &ws, &doc).await;
            }
            if template.contains("{folder_id}") {
                let f = ok(
                    &t,
                    Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/folders"))
                        .cookie(&owner)
                        .json(json!({"name": format!("Folder {}", w.next())})),
                )
                .await;
                folder = f["id"].as_str().expect("id").to_string();
            }
            if method == "delete" && template.ends_with("{item_id}") {
                let it = ok(
                    &t,
                    Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
                        .cookie(&owner)
                        .json(json!({"title": "Doomed"})),
                )
                .await;
                item = it["id"].as_str().expect("id").to_string();
            }
            if method == "delete"
                && template.ends_with("/members/{user_id}")
                && !template.contains("{ws_id}")
            {
                let n = w.next();
                user = add_member(&t, &owner, &org, &format!("extra{n}@example.com"), "member")
                    .await
                    .1;
            }
            if template.contains("{ws_id}/members/{user_id}") && method == "delete" {
                ok(
                    &t,
                    Req::new(
                        Method::PUT,
                        &format!("/api/v1/orgs/{org}/workspaces/{ws}/members/{user}"),
                    )
                    .cookie(&owner)
                    .json(json!({"role": "viewer"})),
                )
                .await;
            }
            if template.contains("/webhooks/{id}") {
                invitation = if method == "delete" {
                    new_hook(&t, &w).await
                } else {
                    hook.clone()
                };
            }
            if template.contains("/exports/{id}") {
                invitation = export.clone();
            }
            if template.ends_with("/api-keys/{id}") {
                let k = ok(
                    &t,
                    Req::post(&format!("/api/v1/orgs/{org}/api-keys"))
                        .cookie(&owner)
                        .json(json!({"name": "doomed", "scopes": ["items:read"]})),
                )
                .await;
                invitation = k["id"].as_str().expect("id").to_string();
            }
            if template.ends_with("/invitations/{id}") {
                let n = w.next();
                let inv = ok(
                    &t,
                    Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                        .cookie(&owner)
                        .json(json!({"email": format!("inv{n}@example.com"), "role": "member"})),
                )
                .await;
                invitation = inv["id"].as_str().expect("id").to_string();
            }
            let path = template
                .replace("{org_id}", &org)
                .replace("{ws_id}", &ws)
                .replace("{item_id}", &item)
                .replace("{doc_id}", &doc)
                .replace("{link_id}", &link)
                .replace("{folder_id}", &folder)
                .replace("{user_id}", &user)
                .replace("{delivery_id}", &delivery)
                .replace("{id}", &invitation);
            let n = w.next();
            let body = match (method.as_str(), template.rsplit('/').next().unwrap_or("")) {
                ("patch", "{org_id}") => json!({"name": "Renamed"}),
                ("patch", "{user_id}") => json!({"role": "member"}),
                ("put", "{user_id}") => json!({"role": "viewer"}),
                ("post", "invitations") => {
                    json!({"email": format!("new{n}@example.com"), "role": "member"})
                }
                ("post", "workspaces") => json!({"name": "New", "kind": "board"}),
                ("patch", "{ws_id}") => json!({"name": "Renamed"}),
                ("post", "items") => json!({"title": "New item"}),
                ("patch", "{item_id}") => json!({"title": "Renamed"}),
                ("post", "updates") => json!({"body": "A comment"}),
                ("put", "statuses") => json!({"statuses": [
                    {"key": "todo", "name": "To do"}, {"key": "doing", "name": "Doing"},
                    {"key": "done", "name": "Done"}]}),
                ("post", "move") => json!({"status": "doing"}),
                ("patch", "{doc_id}") => json!({"name": "Renamed.txt"}),
                ("post", "links") => json!({"expires_in_seconds": 3600}),
                ("post", "folders") => json!({"name": "New folder"}),
                ("post", "api-keys") => json!({"name": "Matrix key", "scopes": ["items:read"]}),
                ("post", "webhooks") => json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
                ("post", "{org_id}") | ("post", "members") => {
                    json!({"reason": "matrix bypass attempt"})
                }
                _ => Value::Null,
            };
            let mut req = Req::new(method.to_uppercase().parse().expect("method"), &path);
            if !body.is_null() {
                req = req.json(body);
            }
            if method == "post"
                && (template.ends_with("/documents") || template.ends_with("/versions"))
            {
                req = req.file("matrix.txt", b"matrix upload");
            }
            if let Some(c) = w.cookie(actor) {
                req = req.cookie(c);
            }
            let want = match w.key(actor) {
                Some(k) => {
                    req = req.header("authorization", &format!("Bearer {k}"));
                    expected_for_key(actor, need, key_scope(method, template))
                }
                None => expected(actor, need),
            };
            let r = t.send(req).await;
            match want {
                Some(status) => assert_eq!(
                    r.status,
                    status,
                    "{method} {template} as {actor:?}: {}",
                    r.text()
                ),
                None => assert!(
                    r.status.is_success(),
                    "{method} {template} as {actor:?} should succeed: {} {}",
                    r.status,
                    r.text()
                ),
            }
            if method == "delete" && template == "/api/v1/orgs/{org_id}" && want.is_none() {
                // The org is gone; nothing follows it in the route order.
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * actors.len());
    assert!(checked >= 26 * 9);
    let _ = &mut w;
}
