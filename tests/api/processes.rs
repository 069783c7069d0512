//! Real `switchyard` processes, spawned from the binary Cargo built for these tests, on a
//! test's database: for what only a process can show (signals, kill -9, exit codes).

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TEST_SECRET;

/// A running `switchyard` process; killed when dropped.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:port` for `serve`.
    pub address: String,
}

/// A port free right now (the process binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Process {
    /// Starts `switchyard <command>` on `database_url` with the test secret and `env`; for
    /// `serve`, waits until `/readyz` answers.
    pub async fn start(command: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        Self::start_logging(command, database_url, env, Stdio::inherit()).await
    }

    /// As [`Process::start`], with the process's logs (stderr) going to `logs`.
    pub async fn start_logging(command: &str, database_url: &str, env: &[(&str, &str)], logs: Stdio) -> Self {
        Self::start_on(free_port(), command, database_url, env, logs).await
    }

    /// As [`Process::start_logging`], on `port` (another process's, after it exited, say).
    pub async fn start_on(port: u16, command: &str, database_url: &str, env: &[(&str, &str)], logs: Stdio) -> Self {
        let mut process = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        process
            .arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("SWITCHYARD_JWT_SECRET", TEST_SECRET)
            .env("SWITCHYARD_BIND", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_HTTP_WORKERS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(logs);
        for (name, value) in env {
            process.env(name, value);
        }
        let child = process.spawn().expect("spawn switchyard");
        let mut process = Self { child, address: format!("http://127.0.0.1:{port}") };
        if command == "serve" {
            process.wait_ready().await;
        }
        process
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("switchyard exited before it was ready: {status}");
            }
            let ready = client.get(format!("{}/readyz", self.address)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("switchyard was not ready within 60 s");
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with the system's `kill`.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; its status and how long it took, or `None` past `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
