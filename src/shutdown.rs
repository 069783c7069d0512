//! The process's shutdown: SIGTERM or SIGINT asks it to stop, and every part that holds
//! work in flight hears it through one [`Shutdown`] signal — the HTTP server stops accepting
//! and finishes its requests, WebSocket connections close with 1001 ("going away"), workers
//! stop claiming and finish (or, past the grace period, release) the jobs they run, and the
//! scheduler stops. The order is [`crate::startup::Application::shut_down`]'s.

use std::sync::Arc;

use tokio::sync::watch;

/// A signal every part of the process can wait for; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self { sender: Arc::new(watch::Sender::new(false)) }
    }

    /// Gives the signal (again is harmless).
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether it was given.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Waits until it is given (at once if it was).
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = receiver.wait_for(|given| *given).await;
    }
}

/// Waits for SIGTERM or SIGINT; names the one that came.
pub async fn signalled() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => Ok("SIGTERM"),
            result = tokio::signal::ctrl_c() => result.map(|()| "SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "SIGINT")
    }
}
