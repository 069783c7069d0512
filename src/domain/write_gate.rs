//! One writer at a time on SQLite: [`WriteGate`].
//!
//! SQLite takes one write transaction at a time for the whole file. Without a gate, writers
//! of one process race for that lock on separate pool connections and the losers sleep in
//! SQLite's busy handler, which backs off up to 100 ms between tries and wakes in no order:
//! at 32 concurrent orders the slowest waited about a second. The gate queues this
//! process's writers in arrival order (a fair semaphore of one permit) before they touch
//! the database, so each begins the moment the previous one ends; readers never pass
//! through it (WAL lets them read beside the writer). Writers of *other* processes on the
//! same file still meet the busy timeout, as before.
//!
//! On PostgreSQL the gate is open: rows are locked one by one there, and writers run side
//! by side.
//!
//! Every write of the process passes through it: [`super::write::Write::begin`], a bulk
//! [`super::write::Load`], and the job claim (`jobs::claim_jobs_of`). A writer waits at
//! most [`WAIT`] (the busy timeout's length), then gets UNAVAILABLE ("try again"), as a
//! writer timing out on SQLite's lock did.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DbBackend;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{Error, Result};

/// The longest a writer waits for its turn (SQLite's busy timeout, `db::connect`).
pub const WAIT: Duration = Duration::from_secs(30);

/// The turn of one writer: the next one goes when this is dropped.
pub type Turn = Option<OwnedSemaphorePermit>;

/// This process's queue of writers (see the module documentation).
#[derive(Debug)]
pub struct WriteGate {
    /// One permit on SQLite; none (open) on PostgreSQL.
    permit: Option<Arc<Semaphore>>,
}

impl WriteGate {
    /// The gate a database of `backend` needs.
    pub fn for_backend(backend: DbBackend) -> Self {
        Self { permit: (backend == DbBackend::Sqlite).then(|| Arc::new(Semaphore::new(1))) }
    }

    /// Waits for this writer's turn, in arrival order; hold it until the transaction ends.
    pub async fn enter(&self) -> Result<Turn> {
        let Some(permit) = &self.permit else { return Ok(None) };
        match tokio::time::timeout(WAIT, Arc::clone(permit).acquire_owned()).await {
            Ok(Ok(turn)) => Ok(Some(turn)),
            // The semaphore is never closed; a timeout means another writer held it too long.
            Ok(Err(_)) | Err(_) => Err(Error::Unavailable(Box::new(sea_orm::DbErr::Custom(format!(
                "waited {} s for the database's write lock",
                WAIT.as_secs()
            ))))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_take_turns_in_arrival_order_on_sqlite_and_never_wait_on_postgres() {
        let open = WriteGate::for_backend(DbBackend::Postgres);
        let (a, b) = (open.enter().await, open.enter().await);
        assert!(matches!((a, b), (Ok(None), Ok(None))), "PostgreSQL's writers never queue");

        let gate = Arc::new(WriteGate::for_backend(DbBackend::Sqlite));
        let first = gate.enter().await;
        assert!(matches!(first, Ok(Some(_))));
        let (sender, mut passed) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for n in 0..5 {
            let (gate, sender) = (Arc::clone(&gate), sender.clone());
            waiting.push(tokio::spawn(async move {
                let turn = gate.enter().await;
                let _ = sender.send((n, turn.is_ok()));
            }));
            // Each arrives after the one before.
            tokio::task::yield_now().await;
        }
        drop(sender);
        tokio::task::yield_now().await;
        assert!(passed.try_recv().is_err(), "nobody passes while the first writer is in");
        drop(first);
        let mut order = Vec::new();
        while let Some(writer) = passed.recv().await {
            order.push(writer);
        }
        assert_eq!(order, (0..5).map(|n| (n, true)).collect::<Vec<_>>());
    }
}
