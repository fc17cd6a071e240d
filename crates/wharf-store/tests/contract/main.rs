//! The metadata-store contract: every test here is written once against the public API and
//! runs unchanged on both databases, SQLite (a temporary file) and PostgreSQL (a fresh
//! database in the throw-away cluster of `wharf-testbed`). `contracts!` emits one test per
//! contract per backend: `sqlite::NAME` and `postgres::NAME`.

mod connect;
mod garbage;
mod identity;
mod locks;
mod registry;
mod schema;
mod settings;
mod shared_state;
mod trust;
mod uploads;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::Connection;
use wharf_store::{
    AuditRecord, BlobLinkOutcome, BlobReservation, Digest, MetadataStore, PostgresMetadataStore,
    SqliteMetadataStore, StoreError, StoreResult,
};
use wharf_testbed::postgres::PostgresCluster;

/// One backend's database for one test: where it lives, so a contract can open it (again).
pub enum Db {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { url: String },
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Db::Sqlite { _dir: dir, path }
    }

    pub fn postgres() -> Db {
        Db::Postgres {
            url: PostgresCluster::shared().fresh_database(),
        }
    }

    /// Open (and migrate) the store as a server would.
    pub async fn open(&self) -> StoreResult<Arc<dyn MetadataStore>> {
        Ok(match self {
            Db::Sqlite { path, .. } => Arc::new(SqliteMetadataStore::open(path).await?),
            Db::Postgres { url } => Arc::new(PostgresMetadataStore::connect(url).await?),
        })
    }

    pub async fn store(&self) -> Arc<dyn MetadataStore> {
        self.open().await.unwrap()
    }

    /// Run raw SQL on a connection of its own, outside the store: how a contract reaches
    /// under the API (to break the audit table, to fake a newer schema).
    pub async fn execute(&self, sqlite: &str, postgres: &str) {
        match self {
            Db::Sqlite { path, .. } => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
                let mut c = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Db::Postgres { url } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(postgres))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres { .. })
    }
}

/// An audit record with `action` (the rest is what no contract looks at).
pub fn rec(action: &str) -> AuditRecord {
    AuditRecord {
        at: 1,
        actor: "tester".into(),
        action: action.into(),
        target: "t".into(),
        detail: String::new(),
    }
}

/// Record a blob (as an upload does before committing its bytes) and link it to
/// `repository`, as a finished upload does.
pub async fn link(
    s: &dyn MetadataStore,
    repository: &str,
    digest: &Digest,
    size: u64,
    now: i64,
) -> StoreResult<()> {
    match s.reserve_blob(digest, size, now).await? {
        BlobReservation::Reserved => {}
        BlobReservation::Deleting => return Err(StoreError::Conflict(format!("{digest} is being deleted"))),
    }
    match s.link_blob(repository, digest, None, now).await? {
        BlobLinkOutcome::Linked { size: linked } if linked == size => Ok(()),
        other => Err(StoreError::Conflict(format!("linking {digest}: {other:?}"))),
    }
}

/// The actions of every audit record, newest first.
pub async fn audit_actions(s: &dyn MetadataStore) -> Vec<String> {
    s.list_audit(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect()
}

macro_rules! contracts {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(crate::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(crate::Db::postgres()).await
                }
            )*
        }
    };
}

contracts! {
    registry::tag_lookups_follow_every_write,
    registry::untagged_clock_and_retention_deletions_check_again,
    registry::catalog_and_tag_pages_come_in_byte_order_after_last,
    registry::catalog_filter_is_a_plain_substring,
    registry::manifests_need_their_references_and_report_sizes_and_referrers,
    registry::blob_links_are_idempotent_and_unlinks_audited_once,
    registry::delete_repository_takes_manifests_tags_and_links,
    registry::concurrent_pushes_and_repository_deletion_stay_consistent,
    locks::locks_are_set_per_attribute_and_audited,
    locks::writes_and_deletions_are_refused_under_locks,
    locks::a_new_repository_of_the_same_name_has_no_locks,
    locks::deletions_recheck_the_trust_data,
    locks::concurrent_pushes_and_a_lock_serialise,
    locks::retention_deletions_respect_locks,
    uploads::uploads_advance_only_from_the_expected_offset,
    uploads::concurrent_advances_from_one_offset_one_wins,
    identity::assignments_tokens_and_revocation_cascade_with_the_principal,
    identity::changes_and_their_audit_records_commit_together,
    identity::refresh_tokens_are_used_and_revoked_on_secret_change,
    identity::principals_and_assignments_list_in_order,
    identity::concurrent_claims_of_one_login_name_one_wins,
    identity::the_last_owner_is_kept_even_under_races,
    settings::settings_update_only_while_the_guard_holds,
    settings::concurrent_guarded_updates_one_wins,
    settings::init_setting_returns_the_first_value,
    trust::trust_update_commits_whole_or_nothing_and_conflicts_on_versions,
    trust::concurrent_identical_updates_one_wins,
    trust::concurrent_publishers_from_one_state_one_wins,
    trust::concurrent_publishers_of_different_versions_never_go_backwards,
    trust::versions_must_rise,
    trust::the_head_is_the_newest_version,
    trust::deletes_are_scoped_and_disable_wipes_everything_atomically,
    trust::concurrent_key_creations_return_the_winner,
    shared_state::upload_leases_admit_one_writer,
    shared_state::concurrent_claims_one_lease,
    shared_state::portal_sessions_expire_end_and_are_bounded,
    shared_state::login_failures_count_lock_and_prune,
    shared_state::revocations_are_read_after_an_id_and_pruned,
    garbage::garbage_is_found_exactly,
    garbage::the_grace_period_counts_from_the_last_touch,
    garbage::reading_a_link_renews_it_when_old,
    garbage::tombstoned_blobs_cannot_be_linked,
    garbage::the_gc_lease_admits_one_runner,
    garbage::pushes_racing_a_collection_never_dangle,
    garbage::postgres_interleavings_are_safe,
    usage::usage_counts_shared_blobs_once_and_exclusive_per_repository,
    usage::usage_pages_come_in_name_order_after_last,
    usage::scope_usage_counts_shared_blobs_once_within_a_prefix,
    schema::reopening_keeps_data_and_runs_no_migration_twice,
    schema::concurrent_opens_migrate_once,
    schema::a_newer_schema_is_refused,
}
