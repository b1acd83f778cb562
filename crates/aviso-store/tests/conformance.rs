//! The storage story every backend must tell: one generic case per behaviour,
//! instantiated per backend by `conformance!`. A new backend adds one line.

#[path = "conformance/deliveries.rs"]
mod deliveries;
#[path = "conformance/dispatching.rs"]
mod dispatching;
#[path = "conformance/operations.rs"]
mod operations;
#[path = "conformance/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "conformance/publishing.rs"]
mod publishing;
#[path = "conformance/resources.rs"]
mod resources;
#[path = "conformance/retention.rs"]
mod retention;
#[path = "conformance/support.rs"]
mod support;

use aviso_store::sqlite::SqliteStore;
use aviso_store::Store;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;
use support::*;

/// Runs every case against the store a constructor expression builds
/// (an `Option<Fixture>`: `None` skips the backend).
macro_rules! conformance {
    ($backend:ident => $make:expr) => {
        mod $backend {
            use super::*;
            conformance!(@backend_cases $make;
                dispatching::release_and_recover_claims,
                dispatching::record_outcomes_moves_deliveries_on,
            );
            conformance!(@cases $make;
                resources::ping_answers,
                resources::event_types_crud_and_pages,
                resources::tenants_crud_conflicts_and_pages,
                resources::endpoints_round_trip_update_and_pages,
                resources::api_keys,
                resources::tenants_cannot_see_each_other,
                resources::delete_tenant_cascades,
                publishing::publish_routes_by_type,
                publishing::publish_applies_payload_filter,
                publishing::publish_is_idempotent_per_tenant,
                publishing::list_events_by_seq_and_type,
                publishing::concurrent_publishes_all_commit_in_order,
                dispatching::claim_due_honours_time_claims_and_exclude,
                dispatching::publish_claims_for_the_given_node,
                dispatching::ordered_deliveries_are_claimed_in_turn,
                dispatching::a_wide_fan_out_stores_and_claims_each_delivery,
                dispatching::replayed_deliveries_join_their_line,
                dispatching::outcomes_for_cancelled_and_deleted_deliveries,
                deliveries::resend_rules,
                deliveries::disabling_an_endpoint_cancels_pending,
                deliveries::list_deliveries_newest_first,
                deliveries::deleting_an_endpoint_removes_its_deliveries,
                retention::purge_removes_old_finished_work_only,
                operations::partners_scope_endpoints_and_routes,
                operations::audit_filters_stats_latest_and_tests,
                operations::tasks_run_in_batches_and_are_idempotent,
                operations::disabling_a_partner_endpoint_races_no_publish,
            );
        }
    };
    (@cases $make:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fx) = $make else { return };
                $module::$case(fx.db.clone()).await;
                fx.finish().await;
            }
        )*
    };
    (@backend_cases $make:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fx) = $make else { return };
                $module::$case(fx.db.clone(), fx.backend).await;
                fx.finish().await;
            }
        )*
    };
}

conformance!(sqlite => Some(Fixture::sqlite().await));
conformance!(postgres => Fixture::postgres().await);

/// A store under test, what its backend promises, and what to clean up.
struct Fixture {
    db: Db,
    backend: Backend,
    schema: Option<pg::TestSchema>,
}

impl Fixture {
    async fn sqlite() -> Self {
        Self {
            db: fresh_store().await,
            backend: Backend { shared: false },
            schema: None,
        }
    }

    /// A PostgreSQL store in its own schema, or `None` when no test database is configured.
    async fn postgres() -> Option<Self> {
        let schema = pg::TestSchema::create(&pg::admin_url()?).await;
        // The contract is about claims; endpoint ownership (on by default,
        // one node per endpoint) has its own tests in tests/postgres.rs.
        let opts = aviso_store::OpenOptions {
            exclusive_endpoints: false,
            ..Default::default()
        };
        let db = aviso_store::open_with(&schema.url, opts).await.unwrap();
        Some(Self {
            db,
            backend: Backend { shared: true },
            schema: Some(schema),
        })
    }

    async fn finish(self) {
        drop(self.db);
        if let Some(schema) = self.schema {
            schema.drop_now().await;
        }
    }
}

/// A unique database file for one test, in a directory swept of old runs' files.
fn temp_db_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: Once = Once::new();
    let dir = std::env::temp_dir().join("aviso-store-tests");
    std::fs::create_dir_all(&dir).unwrap();
    SWEEP.call_once(|| sweep_older_than(&dir, Duration::from_secs(600)));
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{}-{n}-{}.db",
        std::process::id(),
        aviso_core::TenantId::new()
    ))
}

/// Removes files left by earlier runs (a store gives no hook to delete its own).
fn sweep_older_than(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A SQLite store on a fresh file.
async fn fresh_store() -> Arc<dyn Store> {
    let url = format!("sqlite://{}", temp_db_path().display());
    aviso_store::open(&url).await.unwrap()
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let path = temp_db_path();
    let url = format!("sqlite:{}", path.display());
    let (t, p) = {
        let db: Db = Arc::new(SqliteStore::open(&url).await.unwrap());
        let t = tenant(&db, "t").await;
        endpoint(&db, &t, &[]).await;
        let p = db
            .publish(
                event(&t, "A.X", serde_json::json!({"k": "v"}), 0),
                Some("n1"),
            )
            .await
            .unwrap();
        (t, p)
    };
    let db: Db = Arc::new(SqliteStore::open(&url).await.unwrap());
    assert_eq!(db.get_tenant("t").await.unwrap(), t);
    let (event, deliveries) = db.get_event(&t.id, &p.event.id).await.unwrap();
    assert_eq!(event, p.event);
    assert_eq!(deliveries, p.deliveries);
    assert_eq!(
        db.recover_claims("n9").await.unwrap(),
        1,
        "claims survive until recovered"
    );
    let next = db.publish(event_for(&t), None).await.unwrap();
    assert!(next.event.seq > p.event.seq);
    assert_eq!(
        next.deliveries.len(),
        1,
        "routes load from the reopened file"
    );
}

fn event_for(t: &aviso_core::model::Tenant) -> aviso_core::model::NewEvent {
    event(t, "A.Y", serde_json::json!({}), 1)
}

#[tokio::test]
async fn sqlite_open_rejects_bad_urls() {
    assert!(aviso_store::open("sqlite://").await.is_err());
    assert!(aviso_store::open("mysql://localhost/x").await.is_err());
    let missing_dir = std::env::temp_dir()
        .join("aviso-no-such-dir")
        .join("x")
        .join("a.db");
    assert!(
        aviso_store::open(&format!("sqlite://{}", missing_dir.display()))
            .await
            .is_err()
    );
}
