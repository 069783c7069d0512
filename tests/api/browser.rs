//! A real browser for the tests of web pages: headless Chromium driven over the Chrome
//! DevTools Protocol (a WebSocket and JSON; the few commands the tests need, no crate).
//!
//! Chromium is Debian's `chromium` package (`/usr/bin/chromium`, or `SWITCHYARD_CHROMIUM`).
//! `.ci/run` installs it and sets `SWITCHYARD_REQUIRE_BROWSER=1`, so CI fails without it; a
//! developer's `cargo test` on a machine without it prints "SKIPPED" loudly and goes on.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium with one page, killed (and its profile removed) on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    session: String,
    next_id: u64,
}

fn executable() -> PathBuf {
    std::env::var_os("SWITCHYARD_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into())
}

impl Browser {
    /// Starts Chromium, or returns `None` after saying "SKIPPED" when it is not installed and
    /// the environment does not require it.
    pub async fn launch(test: &str) -> Option<Browser> {
        let executable = executable();
        if !executable.exists() {
            assert!(
                std::env::var_os("SWITCHYARD_REQUIRE_BROWSER").is_none(),
                "{test}: SWITCHYARD_REQUIRE_BROWSER is set but {} does not exist (apt-get install chromium)",
                executable.display()
            );
            eprintln!(
                "\n*** SKIPPED {test}: no browser at {} (apt-get install chromium; CI requires it) ***\n",
                executable.display()
            );
            return None;
        }
        let profile =
            std::env::temp_dir().join(format!("switchyard-chromium-{}-{}", std::process::id(), rand_suffix()));
        let mut child = Command::new(&executable)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // Chromium names its DevTools endpoint on stderr; the rest of stderr is drained so
        // the browser never blocks on a full pipe.
        let stderr = child.stderr.take().expect("stderr is piped");
        let (found, endpoint) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        });
        let endpoint = endpoint.recv_timeout(Duration::from_secs(30)).expect("chromium names its DevTools endpoint");
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str()).await.expect("DevTools connects");
        let mut browser = Browser { child, profile, socket, session: String::new(), next_id: 0 };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached =
            browser.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        browser.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        Some(browser)
    }

    /// Sends a command (to the page once attached) and returns its result; a protocol error
    /// fails the test.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(command.to_string())).await.expect("DevTools accepts a command");
        let reply = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(message) = self.socket.next().await {
                let Ok(Message::Text(text)) = message else { continue };
                let reply: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
                if reply["id"] == json!(id) {
                    return reply;
                }
            }
            panic!("DevTools closed while {method} ran");
        })
        .await
        .unwrap_or_else(|_| panic!("{method} answered within 60 s"));
        assert!(reply["error"].is_null(), "{method}: {}", reply["error"]);
        reply["result"].clone()
    }

    /// Opens `url` with these request headers and waits until the page has loaded.
    pub async fn open(&mut self, url: &str, headers: Value) {
        self.call("Network.enable", json!({})).await;
        self.call("Network.setExtraHTTPHeaders", json!({"headers": headers})).await;
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        assert!(navigated["errorText"].is_null(), "{url}: {}", navigated["errorText"]);
        // Until the new document (not the blank one before it) has loaded.
        let loaded = format!("document.readyState === 'complete' && location.href === {}", json!(url));
        for _ in 0..200 {
            if self.eval(&loaded).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{url} did not finish loading");
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        assert!(result["exceptionDetails"].is_null(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// The page printed to PDF on paper of this size (inches), as the print dialog would
    /// with the page's own CSS margins; a page size the CSS sets wins over the paper's, so a
    /// document that forces another size shows it.
    pub async fn print_pdf(&mut self, width: f64, height: f64) -> Vec<u8> {
        use base64::Engine as _;
        let printed = self
            .call(
                "Page.printToPDF",
                json!({"paperWidth": width, "paperHeight": height, "printBackground": true,
                       "displayHeaderFooter": false, "preferCSSPageSize": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD.decode(printed["data"].as_str().expect("PDF data")).expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The pages of a PDF and each one's size in points (width, height), read from its page
/// objects' `/MediaBox`.
pub fn pdf_pages(pdf: &[u8]) -> Vec<(f64, f64)> {
    let text = String::from_utf8_lossy(pdf);
    let mut pages = Vec::new();
    for (at, _) in text.match_indices("/Type /Page") {
        let rest = &text[at + "/Type /Page".len()..];
        if rest.starts_with('s') {
            continue;
        }
        // The page object, up to its `endobj`, holds its MediaBox.
        let dictionary = &rest[..rest.find("endobj").unwrap_or(rest.len())];
        let Some(media) = dictionary.find("/MediaBox") else { continue };
        let numbers: Vec<f64> = dictionary[media + "/MediaBox".len()..]
            .trim_start()
            .trim_start_matches('[')
            .split(|c: char| c == ']' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .take(4)
            .filter_map(|s| s.parse().ok())
            .collect();
        if let [x0, y0, x1, y1] = numbers[..] {
            pages.push((x1 - x0, y1 - y0));
        }
    }
    pages
}
