//! The unit of work (`domain::Write`): a write's events and audit row exist only if it
//! commits, and subscribers hear of it only after the commit.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::json;
use switchyard::domain::events::{DomainEvent, EventKind};
use switchyard::domain::{Actor, Audit, Write};

use crate::helpers::{count_rows, spawn_app};

fn event(order_id: i64) -> DomainEvent {
    DomainEvent {
        order_id: Some(order_id),
        ..DomainEvent::new(EventKind::OrderStatusChanged, "COMPLETED", chrono::Utc::now())
    }
}

#[tokio::test]
async fn a_write_publishes_its_events_and_audit_row_only_when_it_commits() {
    let app = spawn_app().await;
    let mut live = app.domain.events.subscribe();
    let (outbox, audit) = (count_rows(&app, "domain_events").await, count_rows(&app, "audit_log").await);

    // Abandoned: dropped without commit. Nothing is kept, published or audited.
    {
        let mut w = Write::begin(&app.domain).await.unwrap();
        w.emit(event(1)).await.unwrap();
        assert!(live.try_recv().is_err(), "nothing is published before the commit");
    }
    // Rolled back explicitly.
    let mut w = Write::begin(&app.domain).await.unwrap();
    w.emit(event(2)).await.unwrap();
    w.rollback().await;
    assert_eq!(count_rows(&app, "domain_events").await, outbox);
    assert_eq!(count_rows(&app, "audit_log").await, audit);

    // Committed: one outbox row, one audit row, and the event reaches subscribers.
    let actor = Actor::system();
    let mut w = Write::begin(&app.domain).await.unwrap();
    w.emit(event(3)).await.unwrap();
    assert!(live.try_recv().is_err(), "nothing is published before the commit");
    w.commit(Audit::action(&actor, "testWrite", "order", 3, json!({"why": "test"}))).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), live.recv()).await.expect("published").unwrap();
    assert_eq!(heard.order_id, Some(3), "only the committed write's event is heard");
    assert_eq!(count_rows(&app, "domain_events").await, outbox + 1);
    assert_eq!(count_rows(&app, "audit_log").await, audit + 1);
    let row = app
        .domain
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.domain.db.get_database_backend(),
            "SELECT action, object_type, object_id FROM audit_log ORDER BY id DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let action: String = row.try_get("", "action").unwrap();
    let object_id: Option<i64> = row.try_get("", "object_id").unwrap();
    assert_eq!((action.as_str(), object_id), ("testWrite", Some(3)));
}
