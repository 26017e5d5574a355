//! The store suite on PostgreSQL (a fresh database per test on the real
//! server; see `pg/mod.rs`), plus what only a database server has: two
//! stores (two Muster processes) on one database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg;
mod suite;

use std::sync::Arc;

use muster_store::postgres::{PostgresOptions, PostgresStore};
use muster_store::{Store, TenantId};
use pg::Database;

/// A store on a fresh database.
async fn fresh() -> (Database, Arc<PostgresStore>) {
    let database = Database::create().await;
    let store = open(&database).await;
    (database, store)
}

/// Another store (another process's pool) on `database`.
async fn open(database: &Database) -> Arc<PostgresStore> {
    let options = PostgresOptions { max_connections: 4 };
    Arc::new(PostgresStore::connect(&database.url, &options).await.unwrap())
}

/// One `#[tokio::test]` per suite function taking `&dyn Store`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (database, store) = fresh().await;
            suite::$name(&*store).await;
            drop(store);
            database.drop_now().await;
        }
    )*};
}

/// One `#[tokio::test]` per suite function taking `Arc<dyn Store>`.
macro_rules! shared_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (database, store) = fresh().await;
            suite::$name(store).await;
            database.drop_now().await;
        }
    )*};
}

/// Custom attributes (issue #5): one test per suite function.
macro_rules! custom_suite {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (database, store) = fresh().await;
            suite::custom::$name(&*store).await;
            drop(store);
            database.drop_now().await;
        }
    )*};
}

suite!(
    create_fills_id_and_meta,
    get_and_delete_unknown_are_not_found,
    update_replaces_and_keeps_created,
    delete_removes_the_resource,
    non_objects_are_refused,
    user_names_are_unique_case_insensitively,
    group_display_names_are_unique,
    versions_and_preconditions,
    update_sees_current_state_without_members,
    membership_add_remove_replace,
    members_must_exist,
    rolled_back_writes_leave_the_index_consistent,
    groups_read_without_members,
    deleting_a_member_updates_its_groups,
    users_see_direct_and_nested_groups,
    only_groups_have_members,
    change_records_follow_writes,
    tokens,
    index_paging,
    cursor_paging,
    sorting,
    filters_of_every_operator,
    membership_filters,
);

custom_suite!(
    schema_records_round_trip,
    schema_rewrite_removes_values,
    failing_rewrite_changes_nothing,
    scan_visits_every_resource,
    unmapped_values_round_trip,
    settings_round_trip,
    attribute_usage_counts_and_attributes,
    unique_attributes_are_enforced,
);

shared_suite!(
    concurrent_member_adds_lose_nothing,
    concurrent_updates_of_one_user_serialise,
    failed_writes_do_not_affect_others,
    failed_jobs_in_one_batch_do_not_affect_others,
    a_panicking_update_fails_alone,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let (database, store) = fresh().await;
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::tenants_are_isolated(&*store, &other).await;
    drop(store);
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_attributes_are_per_tenant() {
    let (database, store) = fresh().await;
    let other = TenantId("acme".to_owned());
    store.ensure_tenant(&other).await.unwrap();
    suite::custom::custom_attributes_are_per_tenant(&*store, &other).await;
    drop(store);
    database.drop_now().await;
}

/// Two stores on one database (two replicas): what one writes, the other
/// reads, and a userName taken through one is refused through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_database() {
    let (database, first) = fresh().await;
    let second = open(&database).await;
    let alice = suite::create(&*first, "User", suite::user("alice")).await;
    assert_eq!(suite::get(&*second, "User", &alice.id).await, alice);
    let clash = second
        .create(
            &suite::tenant(),
            &suite::actor(),
            "User",
            suite::new(suite::user("ALICE"), Vec::new()),
        )
        .await;
    assert!(
        matches!(clash, Err(muster_store::StoreError::Conflict(_))),
        "{clash:?}"
    );
    drop((first, second));
    database.drop_now().await;
}
