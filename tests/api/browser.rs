//! A real browser for the tests of web pages: headless Chromium driven over the Chrome
//! DevTools Protocol (a WebSocket and JSON; the few commands the tests need, no crate).
//!
//! Chromium is Debian's `chromium` package (`/usr/bin/chromium`, or `SWITCHYARD_CHROMIUM`).
//! `.ci/run` installs it and sets `SWITCHYARD_REQUIRE_BROWSER=1`, so CI fails without it; a
//! developer's `cargo test` on a machine without it prints "SKIPPED" loudly and goes on.
//!
//! The browser runs with the network cut off: every host name but 127.0.0.1 fails to resolve,
//! so a page that needs anything from outside (a CDN) fails its test. What the page does is
//! recorded from the protocol's events: [`Browser::problems`] lists console errors, uncaught
//! exceptions, failed requests, answers of 400 and up, and requests to another origin.

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
    /// Every protocol event received so far (console messages, network activity…).
    events: Vec<Value>,
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
                "--window-size=1280,900",
                // The network cut off: only the test's own servers on 127.0.0.1 resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
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
        let mut browser = Browser { child, profile, socket, session: String::new(), next_id: 0, events: Vec::new() };
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
        let events = &mut self.events;
        let socket = &mut self.socket;
        let reply = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(message) = socket.next().await {
                let Ok(Message::Text(text)) = message else { continue };
                let reply: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
                if reply["id"] == json!(id) {
                    return reply;
                }
                if reply["method"].is_string() {
                    events.push(reply);
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

    /// Starts recording what the page does: console messages, exceptions, log entries and
    /// network requests (see [`Browser::problems`]).
    pub async fn watch(&mut self) {
        for domain in ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"] {
            self.call(domain, json!({})).await;
        }
    }

    /// Everything that went wrong in the page since [`Browser::watch`]: console errors and
    /// failed assertions, uncaught exceptions, log entries of level error
    /// (a Content-Security-Policy violation, a failed load), requests that failed or were
    /// answered with a status of 400 or more, and any request to another origin than
    /// `origin` (the page must need nothing from outside).
    pub async fn problems(&mut self, origin: &str) -> Vec<String> {
        self.eval("1").await; // reads the events sent until now
        let mut problems = Vec::new();
        let mut urls = std::collections::HashMap::new();
        for event in &self.events {
            let params = &event["params"];
            match event["method"].as_str().unwrap_or_default() {
                "Runtime.exceptionThrown" => problems.push(format!("exception: {}", params["exceptionDetails"])),
                "Runtime.consoleAPICalled" if matches!(params["type"].as_str(), Some("error" | "assert")) => {
                    problems.push(format!("console.{}: {}", params["type"], params["args"]))
                }
                "Log.entryAdded" if params["entry"]["level"] == "error" => {
                    problems.push(format!("log: {}", params["entry"]))
                }
                "Network.requestWillBeSent" => {
                    let url = params["request"]["url"].as_str().unwrap_or_default().to_owned();
                    urls.insert(params["requestId"].as_str().unwrap_or_default().to_owned(), url.clone());
                    let local = url.starts_with(&format!("{origin}/"))
                        || url.starts_with(&format!("{}/", origin.replacen("http", "ws", 1)))
                        || url.starts_with("data:")
                        || url.starts_with("blob:")
                        || url == "about:blank";
                    if !local {
                        problems.push(format!("request to another origin: {url}"));
                    }
                }
                "Network.webSocketCreated" => {
                    let url = params["url"].as_str().unwrap_or_default();
                    if !url.starts_with(&format!("{}/", origin.replacen("http", "ws", 1))) {
                        problems.push(format!("WebSocket to another origin: {url}"));
                    }
                }
                "Network.webSocketFrameError" => problems.push(format!("WebSocket error: {}", params["errorMessage"])),
                "Network.responseReceived" if params["response"]["status"].as_u64().unwrap_or(0) >= 400 => {
                    problems.push(format!("{} answered {}", params["response"]["url"], params["response"]["status"]))
                }
                "Network.loadingFailed" if params["canceled"] != json!(true) => {
                    let url = urls.get(params["requestId"].as_str().unwrap_or_default()).cloned().unwrap_or_default();
                    problems.push(format!("request failed: {url} {}", params["errorText"]))
                }
                _ => {}
            }
        }
        problems
    }

    /// Every request the page made (its URL; WebSockets too), in order, but `data:` URLs.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str() {
                Some("Network.requestWillBeSent") => e["params"]["request"]["url"].as_str(),
                Some("Network.webSocketCreated") => e["params"]["url"].as_str(),
                _ => None,
            })
            .filter(|url| !url.starts_with("data:"))
            .map(str::to_owned)
            .collect()
    }

    /// Waits (up to 20 s) until the JavaScript expression is true in the page; fails the test
    /// naming `what` (with the page's text) if it never is.
    pub async fn wait_until(&mut self, what: &str, expression: &str) {
        for _ in 0..400 {
            // Thrown while the page is between documents (a reload) counts as not yet.
            if self
                .eval(&format!("(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"))
                .await
                == json!(true)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = self.eval("document.body ? document.body.innerText : ''").await;
        panic!("{what}: `{expression}` never became true; the page reads:\n{}", text.as_str().unwrap_or_default());
    }

    /// Saves a PNG of the whole page as `name`.png in the screenshots folder
    /// (`SWITCHYARD_SCREENSHOTS`; `.ci/run` points it into its output folder).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("PNG data")).expect("base64");
        let folder = screenshots();
        std::fs::create_dir_all(&folder).expect("the screenshots folder can be made");
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
        path
    }

    /// Shows the page as a phone of `width` × `height` CSS pixels would (None: back to the
    /// window's own size).
    pub async fn phone(&mut self, size: Option<(u32, u32)>) {
        match size {
            Some((width, height)) => {
                self.call(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
                )
                .await
            }
            None => self.call("Emulation.clearDeviceMetricsOverride", json!({})).await,
        };
    }

    /// Clicks the element `selector` names as a person would: with a user gesture, so the
    /// page may open a window.
    pub async fn click_as_user(&mut self, selector: &str) {
        let expression = format!("document.querySelector({}).click()", json!(selector));
        let result = self
            .call("Runtime.evaluate", json!({"expression": expression, "userGesture": true, "returnByValue": true}))
            .await;
        assert!(result["exceptionDetails"].is_null(), "{selector}: {}", result["exceptionDetails"]);
    }

    /// The URLs of the browser's pages (tabs and windows).
    pub async fn pages(&mut self) -> Vec<String> {
        let targets = self.call("Target.getTargets", json!({})).await;
        targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "page")
            .filter_map(|t| t["url"].as_str().map(str::to_owned))
            .collect()
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

/// Where screenshots go: `SWITCHYARD_SCREENSHOTS`, else a folder in cargo's target dir.
fn screenshots() -> PathBuf {
    let backend = if crate::helpers::is_postgres() { "postgres" } else { "sqlite" };
    std::env::var_os("SWITCHYARD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"))
        .join(backend)
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
