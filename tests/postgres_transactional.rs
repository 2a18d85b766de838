//! Transactional emit on PostgreSQL: an event emitted inside the caller's transaction exists if
//! and only if the transaction commits, and is not delivered before the commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use emitter::durable::postgres::tokio_postgres::{self, NoTls};
use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::{Durable, DurableConfig};
use emitter::{listener, listeners, EmitOptions, Emitter, Event, State};
use emitter_tests::servers::Postgres;

#[derive(Event, Debug, Clone)]
#[event(id = "transactional.order_placed")]
pub struct OrderPlaced {
    pub order: i64,
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<i64>>>);

impl Seen {
    fn orders(&self) -> Vec<i64> {
        self.0.lock().unwrap().clone()
    }
}

#[listener(events = [OrderPlaced], name = "transactional.ship")]
async fn ship(order: i64, State(seen): State<Seen>) {
    seen.0.lock().unwrap().push(order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_exist_if_and_only_if_the_transaction_commits() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let store = PostgresConfig::new(server.url())
        .schema("transactional")
        .connect()
        .await
        .unwrap();
    let backend: Durable<PostgresStore> = Durable::with_config(
        store,
        DurableConfig::default().poll_interval(Duration::from_millis(50)),
    );
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![ship])
        .state(seen.clone())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();

    let (mut client, connection) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
        .await
        .unwrap();

    // Rolled back: neither the order nor its event.
    let transaction = client.transaction().await.unwrap();
    transaction
        .execute("INSERT INTO orders (id) VALUES (1)", &[])
        .await
        .unwrap();
    backend
        .emit_in(&transaction, OrderPlaced { order: 1 }, EmitOptions::new())
        .await
        .unwrap();
    transaction.rollback().await.unwrap();

    // Committed, after a pause during which the uncommitted event must not be delivered.
    let transaction = client.transaction().await.unwrap();
    transaction
        .execute("INSERT INTO orders (id) VALUES (2)", &[])
        .await
        .unwrap();
    backend
        .emit_in(&transaction, OrderPlaced { order: 2 }, EmitOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(seen.orders().is_empty(), "delivered before the commit");
    transaction.commit().await.unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.orders().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    backend.wait_settled().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seen.orders(),
        [2],
        "only the committed order's event is delivered, once"
    );
    let orders: Vec<i64> = client
        .query("SELECT id FROM orders", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(orders, [2]);
    assert_eq!(backend.counts().await.unwrap().unfinished(), 0);
    emitter.shutdown().await.unwrap();
}
