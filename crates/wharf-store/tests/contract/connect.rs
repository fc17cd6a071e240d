//! PostgreSQL only: how `connect` fails. The message names host, port, database and user,
//! never the password.

use wharf_store::{PostgresMetadataStore, StoreError};
use wharf_testbed::postgres::PostgresCluster;

async fn refusal(url: &str) -> String {
    match PostgresMetadataStore::connect(url).await {
        Ok(_) => panic!("connected to {url}"),
        Err(StoreError::Unavailable(m)) => m,
        Err(e) => panic!("wrong error for {url}: {e:?}"),
    }
}

#[tokio::test]
async fn unreachable_server_is_named_without_the_password() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = refusal(&format!("postgres://wharf:s3cret-pw@127.0.0.1:{port}/db")).await;
    assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
    assert!(m.contains("database db, user wharf"), "{m}");
    assert!(!m.contains("s3cret-pw"), "{m}");
}

#[tokio::test]
async fn refused_login_is_named_without_the_password() {
    let cluster = PostgresCluster::shared();
    let port = cluster.port();
    let m = refusal(&format!(
        "postgres://wharf:s3cret-pw@127.0.0.1:{port}/no_such_database"
    ))
    .await;
    assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
    assert!(m.contains("\"no_such_database\" does not exist"), "{m}");
    assert!(!m.contains("s3cret-pw"), "{m}");
}

/// `sslmode` comes from the URL and TLS is built in: against the test cluster, which has no
/// certificate, `require` fails for want of server TLS, not for want of TLS support.
#[tokio::test]
async fn sslmode_comes_from_the_url() {
    let url = PostgresCluster::shared().fresh_database();
    let m = refusal(&format!("{url}?sslmode=require")).await;
    assert!(!m.to_lowercase().contains("without tls"), "{m}");
    PostgresMetadataStore::connect(&format!("{url}?sslmode=prefer"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_echoing_it() {
    let m = refusal("postgres://wharf:s3cret-pw@127.0.0.1:notaport/db").await;
    assert!(m.starts_with("invalid PostgreSQL URL"), "{m}");
    assert!(!m.contains("s3cret-pw"), "{m}");
}
