//! Fresh PostgreSQL databases for tests, on the real server at
//! 127.0.0.1:5432 (user `postgres`, trust auth; `MUSTER_TEST_POSTGRES`
//! overrides the URL of the maintenance database). A server that cannot be
//! reached fails the test: it never skips.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The maintenance database's URL.
pub fn maintenance_url() -> String {
    std::env::var("MUSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A plain connection (its connection task spawned on the current runtime).
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!("PostgreSQL at {url} is needed by this test and cannot be reached: {error}")
        });
    tokio::spawn(connection);
    client
}

/// A fresh database of the test's own; [`Database::drop_now`] removes it.
pub struct Database {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl Database {
    /// Creates an empty database with a name no other test uses.
    pub async fn create() -> Database {
        let name = format!(
            "muster_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&maintenance_url()).await;
        // One statement each: a multi-statement string is one transaction.
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&statement).await.unwrap();
        }
        let base = maintenance_url();
        let root = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(root, _)| root);
        Database {
            url: format!("{root}/{name}"),
            name,
        }
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_now(self) {
        let admin = connect(&maintenance_url()).await;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}
