//! `TenantStore` on every backend: registration, names, counts, removal
//! refused while a tenant holds anything, and removal with `force`
//! erasing every row of the tenant (and nothing of another) in one go.

use muster_store::{Store, StoreError, TenantId, TokenRecord};

use super::{actor, create, get, group, member, new, user};

fn token(name: &str, hash: &str) -> TokenRecord {
    TokenRecord {
        name: name.to_owned(),
        secret_hash: hash.to_owned(),
        scopes: vec!["scim.read".to_owned()],
        created: String::new(),
    }
}

pub async fn tenants_register_and_remove(store: &dyn Store) {
    let acme = TenantId("acme-1".to_owned());
    let default = TenantId::default_tenant();
    assert!(store.tenant_exists(&default).await.unwrap());
    assert!(!store.tenant_exists(&acme).await.unwrap());
    // Writes to a tenant that is not registered are refused.
    assert!(matches!(
        store
            .create_token(&acme, token("early", "early-hash"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.create_tenant(&acme).await.unwrap();
    assert!(matches!(
        store.create_tenant(&acme).await,
        Err(StoreError::Conflict(_))
    ));
    for bad in ["Acme", "", "-a", "a/b", "a b", "é"] {
        assert!(
            matches!(
                store.create_tenant(&TenantId(bad.to_owned())).await,
                Err(StoreError::Scim(_))
            ),
            "{bad:?}"
        );
    }
    // An empty tenant goes without force.
    let empty = TenantId("empty".to_owned());
    store.create_tenant(&empty).await.unwrap();
    assert_eq!(
        store.remove_tenant(&empty, false).await.unwrap(),
        Vec::new()
    );
    assert!(!store.tenant_exists(&empty).await.unwrap());

    // Acme holds a bit of everything.
    let alice = store
        .create(&acme, &actor(), "User", new(user("alice"), Vec::new()))
        .await
        .unwrap();
    store
        .create(
            &acme,
            &actor(),
            "Group",
            new(group("team"), vec![member(&alice.id)]),
        )
        .await
        .unwrap();
    store
        .create_token(&acme, token("acme-token", "acme-hash"))
        .await
        .unwrap();
    store
        .set_setting(&acme, &actor(), "undeclaredAttributes", "capture")
        .await
        .unwrap();
    store.put_target(&acme, &actor(), "t", "{}").await.unwrap();
    store.register_consumer(&acme, "reader", 0).await.unwrap();
    // The default tenant holds a user of the same name.
    let theirs = create(store, "User", user("alice")).await;

    let listed = store.list_tenants().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.tenant.0.as_str()).collect();
    assert_eq!(names, ["acme-1", "default"]);
    let acme_summary = &listed[0];
    assert_eq!(
        (acme_summary.users, acme_summary.groups, acme_summary.tokens),
        (1, 1, 1)
    );
    assert!(!acme_summary.created.is_empty());

    // Refused while it holds anything; default never; unknown: not found.
    let Err(StoreError::Conflict(refusal)) = store.remove_tenant(&acme, false).await else {
        panic!("a tenant holding rows was removed without force");
    };
    for table in ["resources", "tokens", "sync_targets", "settings", "changes"] {
        assert!(refusal.contains(table), "{refusal}");
    }
    assert!(store.tenant_exists(&acme).await.unwrap());
    assert!(matches!(
        store.remove_tenant(&default, true).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .remove_tenant(&TenantId("nobody".to_owned()), true)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // With force: everything of acme goes, nothing of default.
    let erased = store.remove_tenant(&acme, true).await.unwrap();
    let count = |table: &str| {
        erased
            .iter()
            .find(|(name, _)| name == table)
            .map_or(0, |(_, count)| *count)
    };
    assert_eq!(count("resources"), 2, "{erased:?}");
    assert_eq!(count("tokens"), 1, "{erased:?}");
    assert_eq!(count("sync_targets"), 1, "{erased:?}");
    assert!(count("changes") >= 2, "{erased:?}");
    assert!(!store.tenant_exists(&acme).await.unwrap());
    assert!(store.find_token("acme-hash").await.unwrap().is_none());
    assert!(matches!(
        store.get(&acme, "User", &alice.id, false).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .create(&acme, &actor(), "User", new(user("bob"), Vec::new()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(get(store, "User", &theirs.id).await.version, theirs.version);
    // Its audit trail stays and verifies, without personal data.
    let query = muster_store::audit::AuditQuery {
        limit: 1_000,
        ..Default::default()
    };
    let entries = store.audit_entries(&acme, &query).await.unwrap();
    assert!(entries.len() >= 2, "{entries:?}");
    assert!(
        entries.iter().all(|entry| entry.detail.is_none()),
        "{entries:?}"
    );
    assert!(
        !format!("{entries:?}").contains("alice"),
        "a removed tenant's audit entries name its user: {entries:?}"
    );
    assert!(store.verify_audit(&acme).await.unwrap().is_ok());
    // Made again, it starts empty.
    store.create_tenant(&acme).await.unwrap();
    let again = store.list_tenants().await.unwrap();
    assert_eq!(
        again
            .iter()
            .find(|t| t.tenant == acme)
            .map(|t| (t.users, t.groups, t.tokens)),
        Some((0, 0, 0))
    );
    assert!(store.targets(&acme).await.unwrap().is_empty());
    assert_eq!(
        store
            .get_setting(&acme, "undeclaredAttributes")
            .await
            .unwrap(),
        None
    );
}

/// A removal racing a stream of writes to the tenant: each write lands
/// before the removal (and is erased with it) or is refused after it;
/// nothing of the tenant is left behind.
pub async fn removal_races_writes(store: &dyn Store) {
    let racing = TenantId("racing".to_owned());
    store.create_tenant(&racing).await.unwrap();
    let writes = async {
        let mut written = 0;
        for step in 0..200 {
            let created = store
                .create(
                    &racing,
                    &actor(),
                    "User",
                    new(user(&format!("racer-{step}")), Vec::new()),
                )
                .await;
            match created {
                Ok(_) => written += 1,
                Err(StoreError::NotFound(_)) => break,
                Err(other) => panic!("write {step}: {other:?}"),
            }
        }
        written
    };
    let removal = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        store.remove_tenant(&racing, true).await.unwrap()
    };
    let (written, erased) = tokio::join!(writes, removal);
    let erased_users = erased
        .iter()
        .find(|(table, _)| table == "resources")
        .map_or(0, |(_, count)| *count);
    assert_eq!(erased_users, written, "{erased:?}");
    assert!(!store.tenant_exists(&racing).await.unwrap());
    // Made again, it holds nothing at all: a removal without force passes.
    store.create_tenant(&racing).await.unwrap();
    assert_eq!(
        store.remove_tenant(&racing, false).await.unwrap(),
        Vec::new()
    );
}
