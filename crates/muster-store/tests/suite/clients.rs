//! `ClientStore` on every backend: OAuth clients, rotation, revocation,
//! access tokens (expiry, sweep, tied to their client's id) and the
//! options of bearer tokens.

use muster_store::clients::{AccessTokenRecord, ClientRecord, CredentialOptions};
use muster_store::{Store, StoreError, TenantId, TokenRecord};

use super::tenant;

fn client(name: &str, client_id: &str) -> ClientRecord {
    ClientRecord {
        name: name.to_owned(),
        client_id: client_id.to_owned(),
        secret_hash: format!("$argon2id$hash-of-{name}"),
        previous_secret_hash: None,
        previous_valid_until: None,
        scopes: vec!["scim.read".to_owned(), "scim.write".to_owned()],
        options: CredentialOptions {
            matching: vec!["externalId".to_owned(), "userName".to_owned()],
            rate_limit: Some(25),
        },
        created: String::new(),
    }
}

/// An access token for a client verified with the secret `client()` gave
/// the client named `okta`.
fn access(hash: &str, client_id: &str, expires_at: i64) -> AccessTokenRecord {
    AccessTokenRecord {
        secret_hash: hash.to_owned(),
        client_id: client_id.to_owned(),
        scopes: vec!["scim.read".to_owned()],
        expires_at,
        verified_with: "$argon2id$hash-of-okta".to_owned(),
    }
}

pub async fn clients_round_trip_and_rotate(store: &dyn Store) {
    store
        .create_client(&tenant(), client("okta", "mcl_1"))
        .await
        .unwrap();
    store
        .create_client(&tenant(), client("entra", "mcl_2"))
        .await
        .unwrap();
    let taken_name = store
        .create_client(&tenant(), client("okta", "mcl_3"))
        .await
        .unwrap_err();
    assert!(
        matches!(taken_name, StoreError::Conflict(ref d) if d.contains("okta")),
        "{taken_name:?}"
    );
    let taken_id = store
        .create_client(&tenant(), client("other", "mcl_1"))
        .await
        .unwrap_err();
    assert!(matches!(taken_id, StoreError::Conflict(_)), "{taken_id:?}");
    let unknown_tenant = store
        .create_client(&TenantId("nowhere".to_owned()), client("x", "mcl_9"))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown_tenant, StoreError::NotFound(_)),
        "{unknown_tenant:?}"
    );

    let listed = store.list_clients(&tenant()).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["entra", "okta"]);
    assert!(!listed[1].created.is_empty());
    assert_eq!(listed[1].options.rate_limit, Some(25));
    assert_eq!(listed[1].options.matching, ["externalId", "userName"]);
    let (owner, found) = store.find_client("mcl_1").await.unwrap().unwrap();
    assert_eq!((owner, found.name.as_str()), (tenant(), "okta"));
    assert!(store.find_client("mcl_none").await.unwrap().is_none());

    // Rotation keeps the old hash during the grace, drops it without one.
    let rotated = store
        .rotate_client_secret(&tenant(), "okta", "$argon2id$new".to_owned(), Some(1_000))
        .await
        .unwrap();
    assert_eq!(rotated.secret_hash, "$argon2id$new");
    assert_eq!(
        rotated.previous_secret_hash.as_deref(),
        Some("$argon2id$hash-of-okta")
    );
    assert_eq!(rotated.previous_valid_until, Some(1_000));
    let rotated = store
        .rotate_client_secret(&tenant(), "okta", "$argon2id$newer".to_owned(), None)
        .await
        .unwrap();
    assert_eq!(rotated.previous_secret_hash, None);
    assert_eq!(rotated.previous_valid_until, None);
    assert_eq!(
        store.find_client("mcl_1").await.unwrap().unwrap().1,
        rotated
    );
    let missing = store
        .rotate_client_secret(&tenant(), "nobody", "h".to_owned(), None)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
}

pub async fn access_tokens_expire_and_die_with_their_client(store: &dyn Store) {
    store
        .create_client(&tenant(), client("okta", "mcl_1"))
        .await
        .unwrap();
    let now = 1_000_000;
    store
        .issue_access_token(&tenant(), access("t1", "mcl_1", now + 500), now)
        .await
        .unwrap();
    store
        .issue_access_token(&tenant(), access("t2", "mcl_1", now + 50), now)
        .await
        .unwrap();
    let found = store.find_credential("t1", now).await.unwrap().unwrap();
    assert_eq!(found.tenant, tenant());
    assert_eq!(found.name, "okta");
    assert_eq!(found.scopes, ["scim.read"]);
    assert_eq!(found.expires_at, Some(now + 500));
    assert_eq!(found.options.rate_limit, Some(25));
    // Expired: not found, and swept.
    assert!(store
        .find_credential("t2", now + 50)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_credential("t2", now + 49)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.sweep_access_tokens(now + 100).await.unwrap(), 1);
    assert_eq!(store.sweep_access_tokens(now + 100).await.unwrap(), 0);
    // A token for a client of another tenant, or none, is refused.
    let other = store
        .issue_access_token(
            &TenantId("acme".to_owned()),
            access("t3", "mcl_1", now + 500),
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(other, StoreError::NotFound(_)), "{other:?}");
    let unknown = store
        .issue_access_token(&tenant(), access("t4", "mcl_none", now + 500), now)
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown:?}");
    // Revoking the client ends its tokens; a client re-created under the
    // same name does not revive them.
    store.revoke_client(&tenant(), "okta").await.unwrap();
    assert!(store.find_credential("t1", now).await.unwrap().is_none());
    store
        .create_client(&tenant(), client("okta", "mcl_5"))
        .await
        .unwrap();
    assert!(store.find_credential("t1", now).await.unwrap().is_none());
    assert!(store.list_clients(&tenant()).await.unwrap().len() == 1);
    let again = store.revoke_client(&tenant(), "nobody").await.unwrap_err();
    assert!(matches!(again, StoreError::NotFound(_)), "{again:?}");
}

pub async fn rotation_without_grace_ends_access_tokens(store: &dyn Store) {
    store
        .create_client(&tenant(), client("okta", "mcl_1"))
        .await
        .unwrap();
    store
        .create_client(&tenant(), client("entra", "mcl_2"))
        .await
        .unwrap();
    let now = 1_000_000;
    let entra = AccessTokenRecord {
        verified_with: "$argon2id$hash-of-entra".to_owned(),
        ..access("e1", "mcl_2", now + 500)
    };
    store
        .issue_access_token(&tenant(), entra, now)
        .await
        .unwrap();
    store
        .issue_access_token(&tenant(), access("t1", "mcl_1", now + 500), now)
        .await
        .unwrap();
    // With a grace, tokens got with the old secret live on, and the old
    // secret still gets tokens.
    store
        .rotate_client_secret(
            &tenant(),
            "okta",
            "$argon2id$new".to_owned(),
            Some(i64::MAX),
        )
        .await
        .unwrap();
    assert!(store.find_credential("t1", now).await.unwrap().is_some());
    store
        .issue_access_token(&tenant(), access("t2", "mcl_1", now + 500), now)
        .await
        .unwrap();
    // Without one, every token of the client ends (not another client's),
    // and the dropped secret gets no new token (an issue that raced the
    // rotation).
    store
        .rotate_client_secret(&tenant(), "okta", "$argon2id$newer".to_owned(), None)
        .await
        .unwrap();
    assert!(store.find_credential("t1", now).await.unwrap().is_none());
    assert!(store.find_credential("t2", now).await.unwrap().is_none());
    assert!(store.find_credential("e1", now).await.unwrap().is_some());
    let raced = store
        .issue_access_token(&tenant(), access("t3", "mcl_1", now + 500), now)
        .await
        .unwrap_err();
    assert!(matches!(raced, StoreError::NotFound(_)), "{raced:?}");
    assert!(store.find_credential("t3", now).await.unwrap().is_none());
    let current = AccessTokenRecord {
        verified_with: "$argon2id$newer".to_owned(),
        ..access("t4", "mcl_1", now + 500)
    };
    store
        .issue_access_token(&tenant(), current, now)
        .await
        .unwrap();
    assert!(store.find_credential("t4", now).await.unwrap().is_some());
}

pub async fn bearer_tokens_carry_options(store: &dyn Store) {
    store
        .create_token(
            &tenant(),
            TokenRecord {
                name: "entra".to_owned(),
                secret_hash: "h1".to_owned(),
                scopes: vec!["scim.write".to_owned()],
                created: String::new(),
            },
        )
        .await
        .unwrap();
    let found = store.find_credential("h1", 0).await.unwrap().unwrap();
    assert_eq!(found.name, "entra");
    assert_eq!(found.expires_at, None);
    assert_eq!(found.options, CredentialOptions::default());
    let options = CredentialOptions {
        matching: vec!["emails".to_owned()],
        rate_limit: Some(0),
    };
    store
        .set_token_options(&tenant(), "entra", options.clone())
        .await
        .unwrap();
    assert_eq!(
        store
            .find_credential("h1", 0)
            .await
            .unwrap()
            .unwrap()
            .options,
        options
    );
    assert_eq!(
        store.token_options(&tenant()).await.unwrap(),
        [("entra".to_owned(), options)]
    );
    let missing = store
        .set_token_options(&tenant(), "nobody", CredentialOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
    assert!(store.find_credential("h2", 0).await.unwrap().is_none());
}
