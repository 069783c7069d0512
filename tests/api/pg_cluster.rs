//! A throwaway PostgreSQL cluster for fault tests: `initdb` in a temporary directory, the
//! server on a free port, stopped (or killed) by the test and removed when dropped. Runs
//! as the `postgres` user when the tests run as root (PostgreSQL refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // The effective uid, from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn run(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let program = bin.join(tool);
    if is_root() {
        Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(&program).args(args).output()
    } else {
        Command::new(&program).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

impl Cluster {
    /// Creates and starts a cluster with trust authentication for `postgres`.
    pub fn start() -> Self {
        let bin = postgres_bin();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("switchyard-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(&dir).status().unwrap();
            assert!(status.success(), "chown the cluster's directory");
        }
        let data = dir.join("data");
        let init = run(&bin, "initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let cluster = Self { bin, dir, port };
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    /// Starts (again) the stopped server, waiting until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_str().unwrap().to_owned();
        let started = run(&self.bin, "pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
        assert!(started.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&started.stderr));
    }

    /// Stops the server at once (connections are cut, as in a crash or a restart).
    pub fn stop(&self) {
        let stopped = run(&self.bin, "pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        assert!(stopped.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&stopped.stderr));
    }

    pub fn url(&self, database: &str) -> String {
        self.url_as("postgres", database)
    }

    /// The url of `database` for the role `user` (trust authentication: no password).
    pub fn url_as(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(&self.bin, "pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
