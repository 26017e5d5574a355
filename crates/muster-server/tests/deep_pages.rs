//! Pages of an unfiltered list (issue 15: SQLite takes their total from
//! kept counts and starts a deep page from landmarks every 128 rows) hold
//! what the same slice of the whole list holds, through every spelling of
//! a list: `GET /Users`, `POST /Users/.search` and the root `/.search`, in
//! two tenants, after Bulk creates, deletes and Bulk deletes at and around
//! the landmarks, and restores.
//!
//! Runs on SQLite, and on PostgreSQL with `MUSTER_TEST_BACKEND=postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails the test on unexpected results"
)]

use muster_core::tokens::{SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use muster_scim::message::{BULK_REQUEST_URN as BULK, SEARCH_REQUEST_URN as SEARCH};
use muster_scim::schema::builtin::{GROUP_SCHEMA, USER_SCHEMA as USER};
use muster_store::TenantId;
use muster_testkit::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Who lists: a token and the root of its tenant's URLs (`""` or `/t/x`).
struct Lister<'a> {
    server: &'a TestServer,
    token: String,
    prefix: String,
}

impl Lister<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("{}{path}", self.prefix);
        let reply = self.server.call_as(&self.token, method, &path, body).await;
        assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
        reply.body
    }

    /// Creates `count` users in one Bulk request.
    async fn bulk_create(&self, tag: &str, count: usize) {
        let operations: Vec<Value> = (0..count)
            .map(|index| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("b{index}"),
                       "data": {"schemas": [USER], "userName": format!("{tag}{index}")}})
            })
            .collect();
        let body = json!({"schemas": [BULK], "Operations": operations});
        let answer = self.call(Method::POST, "/scim/v2/Bulk", Some(body)).await;
        for operation in answer["Operations"].as_array().unwrap() {
            assert_eq!(operation["status"], "201", "{operation}");
        }
    }

    /// Every user id, in list order, read in pages of 1,000 from the start.
    async fn whole(&self) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let path = format!("/scim/v2/Users?startIndex={}&count=1000", all.len() + 1);
            let page = ids(&self.call(Method::GET, &path, None).await);
            let last = page.len() < 1000;
            all.extend(page);
            if last {
                return all;
            }
        }
    }

    /// Checks pages at and around every landmark, at the end and past it,
    /// through `GET` and `.search`, against the whole list; returns it.
    async fn pages_agree(&self, step: &str) -> Vec<String> {
        let all = self.whole().await;
        let len = all.len();
        let starts = [
            1,
            2,
            127,
            128,
            129,
            256,
            257,
            385,
            len - 1,
            len,
            len + 1,
            1 << 40,
        ];
        for start in starts {
            for count in [0, 1, 37, 100] {
                let from = (start - 1).min(len);
                let expected = &all[from..(from + count).min(len)];
                let path = format!("/scim/v2/Users?startIndex={start}&count={count}");
                let got = self.call(Method::GET, &path, None).await;
                assert_eq!(got["totalResults"], len, "{step}: {path}");
                assert_eq!(ids(&got), expected, "{step}: {path}");
                let body = json!({"schemas": [SEARCH], "startIndex": start, "count": count});
                let got = self
                    .call(Method::POST, "/scim/v2/Users/.search", Some(body))
                    .await;
                assert_eq!(got["totalResults"], len, "{step}: .search {start} {count}");
                assert_eq!(ids(&got), expected, "{step}: .search {start} {count}");
            }
        }
        all
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_pages_equal_slices_of_the_whole_list() {
    let server = TestServer::start().await;
    let acme = TenantId("acme".to_owned());
    server.store.create_tenant(&acme).await.unwrap();
    let main = Lister {
        server: &server,
        token: server.token.clone(),
        prefix: String::new(),
    };
    let other = Lister {
        server: &server,
        token: server
            .token_in(&acme, "acme", &[SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE])
            .await,
        prefix: "/t/acme".to_owned(),
    };
    for round in 0..4 {
        main.bulk_create(&format!("main{round}-"), 100).await;
    }
    other.bulk_create("acme-", 150).await;
    let group = json!({"schemas": [GROUP_SCHEMA],
                       "displayName": "not a user"});
    main.call(Method::POST, "/scim/v2/Groups", Some(group))
        .await;

    let all = main.pages_agree("created").await;
    assert_eq!(all.len(), 400);
    assert_eq!(other.pages_agree("the other tenant").await.len(), 150);

    // Deletes at and around the landmarks, one by one and in a Bulk request.
    let victims: Vec<String> = [0, 127, 128, 129, 255, 256, 390]
        .iter()
        .map(|&index| all[index].clone())
        .collect();
    for id in &victims[..4] {
        let reply = server
            .call(Method::DELETE, &format!("/Users/{id}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    let operations: Vec<Value> = victims[4..]
        .iter()
        .map(|id| json!({"method": "DELETE", "path": format!("/Users/{id}")}))
        .collect();
    main.call(
        Method::POST,
        "/scim/v2/Bulk",
        Some(json!({"schemas": [BULK], "Operations": operations})),
    )
    .await;
    let after = main.pages_agree("after deletes").await;
    assert!(victims.iter().all(|id| !after.contains(id)));

    // Two come back, wherever the order puts them; then more users.
    for id in &victims[1..3] {
        let reply = server
            .admin(Method::POST, &format!("/users/{id}/restore"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let restored = main.pages_agree("after restores").await;
    assert!(victims[1..3].iter().all(|id| restored.contains(id)));
    main.bulk_create("late-", 50).await;
    let last = main.pages_agree("after more creates").await;
    assert_eq!(last.len(), 400 - 7 + 2 + 50);
    assert_eq!(
        other.pages_agree("the other tenant, unchanged").await.len(),
        150
    );

    // The root search counts every type of the tenant.
    let body = json!({"schemas": [SEARCH], "startIndex": 440, "count": 10});
    let root = main
        .call(Method::POST, "/scim/v2/.search", Some(body))
        .await;
    assert_eq!(root["totalResults"], last.len() + 1);
    assert_eq!(ids(&root).len(), 7);
}
