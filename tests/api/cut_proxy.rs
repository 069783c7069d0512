//! A TCP proxy in front of PostgreSQL that cuts every connection, and refuses new ones, at
//! a chosen moment: right after the server has answered the first `COMMIT` sent once the
//! proxy is armed. The write is then durable and acknowledged to the application, and
//! nothing it reads afterwards reaches the database — what a crash of the network or of
//! PostgreSQL right after a commit looks like to the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct CutProxy {
    pub port: u16,
    armed: Arc<AtomicBool>,
    cut: watch::Sender<bool>,
}

impl CutProxy {
    /// Listens on a free port and forwards to PostgreSQL on `upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(false);
        let proxy = Self { port, armed: Arc::clone(&armed), cut: cut.clone() };
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if *cut.borrow() {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let committing = Arc::new(AtomicBool::new(false));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let to_server =
                    Pump { armed: Arc::clone(&armed), committing: Arc::clone(&committing), cut: cut.clone() };
                let to_client = Pump { armed: Arc::clone(&armed), committing, cut: cut.clone() };
                tokio::spawn(to_server.run(client_read, server_write, Direction::ToServer));
                tokio::spawn(to_client.run(server_read, client_write, Direction::ToClient));
            }
        });
        proxy
    }

    /// The next COMMIT answered cuts everything.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the cut happened.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.cut.send_replace(false);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    ToServer,
    ToClient,
}

struct Pump {
    armed: Arc<AtomicBool>,
    committing: Arc<AtomicBool>,
    cut: watch::Sender<bool>,
}

fn mentions_commit(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"COMMIT")
}

impl Pump {
    async fn run(
        self,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        direction: Direction,
    ) {
        let mut cut = self.cut.subscribe();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = tokio::select! {
                read = from.read(&mut buffer) => read,
                _ = cut.wait_for(|cut| *cut) => return,
            };
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            if direction == Direction::ToServer && self.armed.load(Ordering::SeqCst) && mentions_commit(chunk) {
                self.committing.store(true, Ordering::SeqCst);
            }
            if to.write_all(chunk).await.is_err() {
                return;
            }
            if direction == Direction::ToClient && self.committing.load(Ordering::SeqCst) && mentions_commit(chunk) {
                // The commit is answered and on its way to the application: cut.
                let _ = to.flush().await;
                self.armed.store(false, Ordering::SeqCst);
                self.cut.send_replace(true);
                return;
            }
        }
    }
}
