//! Test support: a fresh database per test on either store, and the `both_stores!` macro that runs
//! one test body against SQLite and against Postgres.

pub mod browser;
pub mod fixtures;
pub mod http;
pub mod inspect;
pub mod keys;
pub mod postgres;
pub mod process;
pub mod python;
pub mod softhsm;
pub mod tools;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use brevet::config::{Backend, Config, DatabaseUrl};
use brevet::http::{build_app, AppState, Limits};
use brevet::store::{self, SharedStore};
use futures::FutureExt;

/// Defines, for each `async fn name(db: TestDb) { … }`, a module `name` with two tests,
/// `sqlite` and `postgres`, that run the body against a fresh database of that store.
macro_rules! both_stores {
    ($( $(#[$meta:meta])* async fn $name:ident($db:ident : $ty:ty) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    $crate::support::with_db(brevet::config::Backend::Sqlite, |$db: $ty| async move $body).await
                }

                #[tokio::test]
                async fn postgres() {
                    $crate::support::with_db(brevet::config::Backend::Postgres, |$db: $ty| async move $body).await
                }
            }
        )*
    };
}

/// A fresh, empty database of one store, for one test.
#[derive(Clone)]
pub struct TestDb {
    /// Which store.
    pub backend: Backend,
    /// Its URL.
    pub url: DatabaseUrl,
    /// Directory for files the test needs (the SQLite file lives here too).
    pub dir: std::path::PathBuf,
}

impl TestDb {
    /// A configuration that uses this database and otherwise the defaults.
    pub fn config(&self) -> Config {
        Config {
            database_url: Some(self.url.clone()),
            data_dir: self.dir.clone(),
            ..Config::default()
        }
    }

    /// The store, connected and migrated.
    pub async fn store(&self) -> SharedStore {
        store::connect(&self.url, 5)
            .await
            .expect("connect to the test store")
    }

    /// The whole HTTP app over this database, with default limits.
    pub async fn app(&self) -> http::TestApp {
        self.app_with(self.config()).await
    }

    /// The whole HTTP app over this database, with `config`'s settings.
    pub async fn app_with(&self, config: Config) -> http::TestApp {
        let store = self.store().await;
        let router = build_app(
            AppState::new(store.clone(), &config),
            Limits::from_config(&config),
        );
        http::TestApp { router, store }
    }
}

/// Runs `body` against a fresh database of `backend`, then drops the database, even if `body` panics.
pub async fn with_db<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::Builder::new()
        .prefix("brevet-test-")
        .tempdir()
        .expect("temp dir");
    let (url, pg_name) = match backend {
        Backend::Sqlite => (
            DatabaseUrl::sqlite_file(&dir.path().join("brevet.db")),
            None,
        ),
        Backend::Postgres => {
            let name = postgres::create_database().await;
            (postgres::database_url(&name), Some(name))
        }
    };
    let db = TestDb {
        backend,
        url,
        dir: dir.path().to_owned(),
    };
    let outcome = AssertUnwindSafe(body(db)).catch_unwind().await;
    if let Some(name) = pg_name {
        postgres::drop_database(&name).await;
    }
    drop(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
