//! GraphiQL at `/` and the operations dashboard at `/dashboard`, in a real headless Chromium
//! with the network cut off (`browser`), against a real server loaded with the demo data set
//! and one provisioning worker calling a real vendor HTTP server (`provisioning::FakeVendor`).
//!
//! Each test ends by asserting the page had no console error, no uncaught exception, no failed
//! request, no answer of 400 or more and no request to another origin, and saves screenshots
//! (`SWITCHYARD_SCREENSHOTS`, which `.ci/run` points into its output folder).

use serde_json::{Value, json};
use switchyard::domain::Role;

use crate::browser::Browser;
use crate::helpers::{TestApp, spawn};
use crate::orders::place;
use crate::provisioning::{FakeVendor, SECRET, Script};

const PASSWORD: &str = switchyard::demo::DEMO_PASSWORD;

/// A server with the demo data, one provisioning worker, and Microsoft (vendor 1) provisioning
/// through a real vendor HTTP server the test steers.
async fn demo_app() -> (TestApp, FakeVendor) {
    demo_data(spawn(|_| {}, 1, None).await).await
}

async fn demo_data(app: TestApp) -> (TestApp, FakeVendor) {
    switchyard::demo::seed_if_empty(&app.domain).await.expect("the demo data loads");
    let vendor = FakeVendor::start(Script::FailFirst(0, 200, None)).await;
    app.data(
        &app.operator(),
        "mutation($settings: JSON!) { updateVendor(id: 1, input: {connectorKind: HTTP, connectorSettings: $settings}) { id } }",
        json!({"settings": {"url": vendor.url(), "secret": SECRET}}),
    )
    .await;
    (app, vendor)
}

async fn login(app: &TestApp, email: &str) -> String {
    let (_, body) = app
        .post(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": email, "p": PASSWORD}),
        )
        .await;
    body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("a token: {body}")).to_owned()
}

/// A Microsoft offer billed monthly, and a customer of `reseller` (from its own token).
async fn offer_and_customer(app: &TestApp, reseller_token: &str) -> (String, String) {
    let data = app
        .data(
            reseller_token,
            "{ offers(first: 1, filter: {vendorId: 1, term: P1M}) { nodes { id } } customers(first: 1) { nodes { id name } } }",
            json!({}),
        )
        .await;
    let offer = data["offers"]["nodes"][0]["id"].as_str().expect("an offer").to_owned();
    let customer = data["customers"]["nodes"][0]["id"].as_str().expect("a customer").to_owned();
    (offer, customer)
}

/// Places an order of one line as `token`; its id and its line's subscription id.
async fn order(app: &TestApp, token: &str, offer: &str, customer: &str, key: &str) -> (String, String) {
    let input = json!({"customerId": customer, "lines": [{"offerId": offer, "quantity": 3}]});
    let placed = place(app, token, input, key).await;
    let id = placed["order"]["id"].as_str().unwrap_or_else(|| panic!("an order: {placed}")).to_owned();
    (id, placed["order"]["lines"][0]["subscription"]["id"].as_str().expect("a subscription").to_owned())
}

async fn no_problems(browser: &mut Browser, app: &TestApp, page: &str) {
    let problems = browser.problems(&app.address).await;
    assert!(problems.is_empty(), "{page} had problems:\n{}", problems.join("\n"));
    let requests = browser.requests();
    assert!(!requests.is_empty(), "{page}: the browser's requests were recorded");
}

/// Sets a GraphiQL editor's text (CodeMirror keeps its instance on its wrapper element).
fn set_editor(editor: &str, text: &str) -> String {
    format!("{editor}.CodeMirror.setValue({})", json!(text))
}

const QUERY_EDITOR: &str = "document.querySelector('.graphiql-query-editor .CodeMirror')";

/// The header editor: of the two editors under the query (variables, headers), the one
/// holding the Authorization header.
const HEADER_EDITOR: &str = "Array.from(document.querySelectorAll('.graphiql-editor-tool .CodeMirror')).find(e => e.CodeMirror.getValue().includes('Authorization'))";

const RESULT: &str = "(document.querySelector('.result-window .CodeMirror') || {CodeMirror: {getValue: () => ''}}).CodeMirror.getValue()";

#[tokio::test]
async fn graphiql_runs_a_query_and_a_subscription_with_a_token_from_the_binary_alone() {
    let Some(mut browser) = Browser::launch("graphiql_runs_a_query_and_a_subscription").await else { return };
    let (app, _vendor) = demo_app().await;
    browser.watch().await;
    browser.open(&format!("{}/", app.address), json!({})).await;
    browser.wait_until("GraphiQL renders", "document.querySelector('.graphiql-execute-button')").await;
    // The header editor is open and prefilled for a bearer token.
    browser.wait_until("the header editor is prefilled", HEADER_EDITOR).await;
    let prefilled = browser.eval(&format!("{HEADER_EDITOR}.CodeMirror.getValue()")).await;
    assert!(prefilled.as_str().unwrap_or_default().contains("\"Authorization\": \"Bearer \""), "{prefilled}");

    let token = login(&app, "operator@switchyard.demo").await;
    browser.eval(&set_editor(HEADER_EDITOR, &json!({"Authorization": format!("Bearer {token}")}).to_string())).await;
    browser.eval(&set_editor(QUERY_EDITOR, "query Me { me { role } vendors { totalCount } }")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await; // GraphiQL reads the editors after a pause
    browser.eval("document.querySelector('.graphiql-execute-button').click()").await;
    browser.wait_until("the query's answer shows", &format!("{RESULT}.includes('\"OPERATOR\"')")).await;
    let answer: Value =
        serde_json::from_str(browser.eval(RESULT).await.as_str().unwrap_or_default()).expect("the result is JSON");
    assert_eq!(answer["data"]["vendors"]["totalCount"], 3, "{answer}");
    browser.screenshot("graphiql-query").await;

    // A subscription over the same /graphql, as a WebSocket, with the same header.
    browser
        .eval(&set_editor(
            QUERY_EDITOR,
            "subscription Live { liveEvents(kinds: [ORDER_PLACED]) { kind status orderId } }",
        ))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    browser.eval("document.querySelector('.graphiql-execute-button').click()").await;
    browser
        .wait_until(
            "the subscription starts",
            "document.querySelector('.graphiql-execute-button[aria-label*=\"Stop\"]')",
        )
        .await;
    let reseller = login(&app, "reseller@northwind.demo").await;
    let (offer, customer) = offer_and_customer(&app, &reseller).await;
    let (order_id, _) = order(&app, &reseller, &offer, &customer, "graphiql-live").await;
    browser
        .wait_until(
            "the placed order arrives over the WebSocket",
            &format!("{RESULT}.includes('ORDER_PLACED') && {RESULT}.includes({})", json!(format!("\"{order_id}\""))),
        )
        .await;
    browser.screenshot("graphiql-subscription").await;
    assert!(
        browser.requests().iter().any(|url| url.starts_with(&app.address.replacen("http", "ws", 1))),
        "the subscription went over a WebSocket: {:?}",
        browser.requests()
    );
    no_problems(&mut browser, &app, "GraphiQL").await;
}

/// Imports a Partner Center statement from Microsoft that charges `subscription` (by its
/// vendor reference) three seats for November, and matches it; the leakage it finds.
async fn import_and_match(app: &TestApp, subscription: &str) -> String {
    let operator = app.operator();
    let seen = app
        .data(
            &operator,
            "query($s: ID!) { subscription(id: $s) { vendorReference unitCost { amount } } }",
            json!({"s": subscription}),
        )
        .await;
    let reference = seen["subscription"]["vendorReference"].as_str().expect("a vendor reference").to_owned();
    let cost: rust_decimal::Decimal =
        seen["subscription"]["unitCost"]["amount"].as_str().expect("a cost").parse().expect("a decimal");
    let (price, subtotal) = (cost.round_dp(2), (cost.round_dp(2) * rust_decimal::Decimal::from(3)).round_dp(2));
    let row = format!(
        "p1,tenant-alpine,\"Alpine Outfitters\",alpine.test,AT,G001,1,5555,o1,2026-11-02,MS-0001,0001,AV01,Basic,Basic,\
         cycleCharge,{price},3,{subtotal},0,{subtotal},USD,{reference},2026-11-02,2026-12-01,1 Month - 1 Month,{price},Licenses,3,Monthly,USD,1"
    );
    let path = std::env::temp_dir().join(format!("switchyard-pages-{}-{subscription}.csv", std::process::id()));
    std::fs::write(&path, format!("{}\n{row}\n", crate::statement_generator::HEADER))
        .expect("the statement is written");
    let imported = switchyard::domain::reconciliation::import::import_statement(
        &app.domain,
        &switchyard::domain::Actor::system(),
        switchyard::domain::ids::VendorId::new(1),
        "microsoft-2026-11.csv",
        None,
        &switchyard::domain::reconciliation::partner_center::PartnerCenter,
        &path,
    )
    .await
    .expect("the statement imports");
    let _ = std::fs::remove_file(&path);
    let matched = app
        .data(
            &operator,
            "mutation($i: ID!) { matchStatement(importId: $i) { status report { leakage { amount currency } categories { category findings amount { amount } } } } }",
            json!({"i": imported.import.id.to_string()}),
        )
        .await;
    let leakage = &matched["matchStatement"]["report"]["leakage"];
    assert_eq!(leakage[0]["currency"], "USD", "{matched}");
    leakage[0]["amount"].as_str().expect("a leakage").to_owned()
}

/// Signs in on the dashboard with the login form.
async fn sign_in(browser: &mut Browser, email: &str) {
    browser.wait_until("the sign-in form shows", "document.querySelector('#login-form')").await;
    browser
        .eval(&format!(
            "document.querySelector('#email').value = {}; document.querySelector('#password').value = {}; \
             document.querySelector('#login-form button').click()",
            json!(email),
            json!(PASSWORD)
        ))
        .await;
}

fn connected() -> &'static str {
    "document.querySelector('#connection').textContent === 'live'"
}

fn line_trail(subscription: &str) -> String {
    format!("(document.querySelector('li[data-subscription=\"{subscription}\"]') || {{innerText: ''}}).innerText")
}

#[tokio::test]
async fn the_dashboard_shows_an_order_going_live_and_retries_a_dead_job() {
    let Some(mut browser) = Browser::launch("the_dashboard_shows_an_order_going_live").await else { return };
    let (app, vendor) = demo_app().await;
    let operator = app.operator();
    app.data(&operator, "mutation { runBilling(period: \"2026-10\") { period } }", json!({})).await;
    browser.watch().await;
    browser.open(&format!("{}/dashboard", app.address), json!({})).await;
    // A wrong password is refused on the page, without a failed request.
    browser
        .eval(
            "document.querySelector('#email').value = 'operator@switchyard.demo'; \
             document.querySelector('#password').value = 'wrong'; document.querySelector('#login-form button').click()",
        )
        .await;
    browser
        .wait_until("a wrong password is refused", "document.querySelector('#sign-in-error').textContent.length > 0")
        .await;
    sign_in(&mut browser, "operator@switchyard.demo").await;
    browser.wait_until("the operator's panels show, live", connected()).await;
    browser.wait_until("queue health shows", "!document.querySelector('#queue-panel').hidden").await;
    browser.wait_until("the billing run shows", "document.querySelector('#runs tbody tr')").await;

    // An order placed through the API appears, and its line goes PENDING → PROVISIONING → ACTIVE.
    let reseller = login(&app, "reseller@northwind.demo").await;
    let (offer, customer) = offer_and_customer(&app, &reseller).await;
    let (order_id, subscription) = order(&app, &reseller, &offer, &customer, "dashboard-live").await;
    browser
        .wait_until(
            "the order's line goes PENDING → PROVISIONING → ACTIVE live",
            &format!("{}.includes('PENDING → PROVISIONING → ACTIVE')", line_trail(&subscription)),
        )
        .await;
    assert!(browser.eval(&format!("!!document.querySelector('tr[data-order=\"{order_id}\"]')")).await == json!(true));
    browser
        .wait_until(
            "the feed shows the order",
            &format!("document.querySelector('#feed').innerText.includes('order {order_id}')"),
        )
        .await;
    browser.screenshot("dashboard-order-live").await;

    // The vendor fails every call: the next order's job goes DEAD and shows with its reason.
    vendor.set_script(Script::Always(500, "vendor exploded"));
    let (_, failing) = order(&app, &reseller, &offer, &customer, "dashboard-dead").await;
    browser.wait_until("the dead job shows", "document.querySelector('#dead-jobs tbody tr[data-job]')").await;
    let reason = browser.eval("document.querySelector('#dead-jobs tbody tr').innerText").await;
    assert!(reason.as_str().unwrap_or_default().contains("vendor exploded"), "{reason}");
    assert!(reason.as_str().unwrap_or_default().contains(&format!("#{failing}")), "{reason}");
    browser
        .wait_until("the chart shows finished jobs", "document.querySelectorAll('#throughput rect').length > 0")
        .await;
    browser.screenshot("dashboard-dead-job").await;

    // The vendor recovers; the operator retries from the page; the line becomes ACTIVE.
    vendor.set_script(Script::FailFirst(0, 200, None));
    browser.eval("document.querySelector('#dead-jobs button[data-retry]').click()").await;
    browser
        .wait_until("the retried line becomes ACTIVE", &format!("{}.includes('ACTIVE')", line_trail(&failing)))
        .await;
    browser.wait_until("no dead job is left", "!document.querySelector('#dead-jobs tbody tr')").await;
    let state = app.data(&operator, "query($s: ID!) { subscription(id: $s) { status } }", json!({"s": failing})).await;
    assert_eq!(state["subscription"]["status"], "ACTIVE");

    // The connection drops; the page reconnects by itself and resumes after the last event it
    // saw: an order placed meanwhile shows once.
    browser.eval("window.switchyardDashboard.holdReconnect(); window.switchyardDashboard.dropConnection()").await;
    browser
        .wait_until("the page is disconnected", "document.querySelector('#connection').textContent !== 'live'")
        .await;
    let (dropped, dropped_line) = order(&app, &reseller, &offer, &customer, "dashboard-reconnect").await;
    app.wait_for(&operator, "query($s: ID!) { subscription(id: $s) { status } }", json!({"s": dropped_line}), |d| {
        d["subscription"]["status"] == "ACTIVE"
    })
    .await;
    assert_eq!(browser.eval("window.switchyardDashboard.connections()").await, json!(1), "still disconnected");
    browser.eval("window.switchyardDashboard.releaseReconnect()").await;
    browser.wait_until("the page reconnects", "window.switchyardDashboard.connections() >= 2").await;
    browser
        .wait_until(
            "the order placed while disconnected goes live",
            &format!("{}.includes('ACTIVE')", line_trail(&dropped_line)),
        )
        .await;
    let placed_once = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll('#feed li[data-kind=\"ORDER_PLACED\"]')).filter(li => li.innerText.includes('order {dropped}')).length"
        ))
        .await;
    assert_eq!(placed_once, json!(1), "the order placed while disconnected is in the feed once");

    // Microsoft's November statement charges the first order's subscription, not billed yet:
    // unbilled, a leakage. Then billing runs. After a reload (the session survives it) the
    // import's leakage, the run and the draft invoices show.
    let leak = import_and_match(&app, &subscription).await;
    app.data(&operator, "mutation { runBilling(period: \"2026-11\") { period } }", json!({})).await;
    browser.eval("location.reload()").await;
    browser.wait_until("the page signs in again after a reload", connected()).await;
    browser.wait_until("draft invoices show", "document.querySelector('#invoices a[data-invoice]')").await;
    browser.wait_until("the billing runs show", "document.querySelectorAll('#runs tbody tr').length === 2").await;
    browser
        .wait_until(
            "the import shows with its leakage",
            &format!("document.querySelector('#imports tbody').innerText.includes('{leak} USD')"),
        )
        .await;
    browser
        .wait_until(
            "the leakage chart shows Microsoft",
            "document.querySelector('#leakage').textContent.includes('Microsoft')",
        )
        .await;
    assert_eq!(browser.eval("document.querySelectorAll('#leakage rect').length").await, json!(1));
    // An invoice's link opens its printable page in a new window, read with the token and
    // opened from memory: the window's address is a blob:, never a URL carrying the token.
    browser.click_as_user("#invoices a[data-invoice]").await;
    let mut opened = Vec::new();
    for _ in 0..100 {
        opened = browser.pages().await;
        if opened.iter().any(|url| url.starts_with("blob:")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(opened.iter().any(|url| url.starts_with("blob:")), "the printable invoice opened: {opened:?}");
    assert!(opened.iter().all(|url| !url.contains("token") && !url.contains("eyJ")), "{opened:?}");
    browser.screenshot("dashboard-operator").await;
    no_problems(&mut browser, &app, "the operator's dashboard").await;
}

#[tokio::test]
async fn a_reseller_sees_only_its_own_orders_on_the_dashboard_signed_in_with_an_api_key() {
    let Some(mut browser) = Browser::launch("a_reseller_sees_only_its_own_orders").await else { return };
    let (app, _vendor) = demo_app().await;
    let northwind = login(&app, "reseller@northwind.demo").await;
    let key = app
        .data(
            &northwind,
            "mutation { createApiKey(name: \"dashboard\", scopes: [\"orders:write\", \"subscriptions:write\", \"customers:write\", \"catalog:read\", \"billing:read\"]) { secret } }",
            json!({}),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("a key")
        .to_owned();
    let other = app.token(Role::Reseller, Some(2));
    let (offer, own_customer) = offer_and_customer(&app, &northwind).await;
    let (_, other_customer) = offer_and_customer(&app, &other).await;
    let (before_other, _) = order(&app, &other, &offer, &other_customer, "other-before").await;
    let (before_own, _) = order(&app, &northwind, &offer, &own_customer, "own-before").await;
    let other_name = app
        .data(&other, "query($c: ID!) { customer(id: $c) { name } }", json!({"c": other_customer}))
        .await["customer"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();

    browser.watch().await;
    browser.phone(Some((390, 844))).await;
    browser.open(&format!("{}/dashboard", app.address), json!({})).await;
    browser
        .eval(&format!(
            "document.querySelector('details').open = true; document.querySelector('#api-key').value = {}; \
             document.querySelector('#key-form button').click()",
            json!(key)
        ))
        .await;
    browser.wait_until("the reseller's dashboard is live", connected()).await;
    browser
        .wait_until("its own order shows", &format!("document.querySelector('tr[data-order=\"{before_own}\"]')"))
        .await;
    // Another reseller's order, placed now, and then one of its own: the page sees its own
    // (so it has seen everything committed before it) and never the other's.
    let (after_other, _) = order(&app, &other, &offer, &other_customer, "other-after").await;
    let (after_own, own_line) = order(&app, &northwind, &offer, &own_customer, "own-after").await;
    browser.wait_until("its new order goes live", &format!("{}.includes('ACTIVE')", line_trail(&own_line))).await;
    let text = browser.eval("document.body.innerText").await.as_str().unwrap_or_default().to_owned();
    for foreign in [&before_other, &after_other] {
        let shown = format!(
            "!!document.querySelector('tr[data-order=\"{foreign}\"]') || /order {foreign}\\b/.test(document.querySelector('#feed').innerText)"
        );
        assert_eq!(browser.eval(&shown).await, json!(false), "another reseller's order {foreign} shows:\n{text}");
    }
    assert!(!text.contains(&other_name), "another reseller's customer shows:\n{text}");
    assert!(text.contains(&format!("#{after_own}")), "{text}");
    for operator_only in ["#queue-panel", "#recon-panel"] {
        assert_eq!(browser.eval(&format!("document.querySelector('{operator_only}').hidden")).await, json!(true));
    }
    // Usable on a phone: nothing wider than the screen, every field labelled.
    assert_eq!(browser.eval("document.documentElement.scrollWidth <= window.innerWidth").await, json!(true));
    assert_eq!(
        browser.eval("Array.from(document.querySelectorAll('input')).every(i => i.labels.length > 0)").await,
        json!(true)
    );
    browser.screenshot("dashboard-reseller-phone").await;
    browser.phone(None).await;
    browser.screenshot("dashboard-reseller-laptop").await;
    no_problems(&mut browser, &app, "the reseller's dashboard").await;
}

/// A deploy: the server the dashboard talks to shuts down (SIGTERM: its streams end, its
/// WebSockets close with 1001) and a new one starts on the same address. The page keeps its
/// session, subscribes again after the last event it saw, and shows what committed while it
/// was away. (Its requests fail while no server listens, so this test does not ask for a
/// clean console.)
#[tokio::test]
async fn the_dashboard_keeps_its_session_and_resumes_across_a_server_restart() {
    let Some(mut browser) = Browser::launch("the_dashboard_resumes_across_a_server_restart").await else { return };
    let (app, _vendor) = demo_app().await;
    // The demo's events carry the tests' clock (early November); a real clock's 7-day
    // retention would prune them as soon as the process starts.
    let env = [("SWITCHYARD_EVENT_RETENTION", "3650d")];
    let logs = || std::process::Stdio::null();
    let port = crate::processes::free_port();
    let mut server = crate::processes::Process::start_on(port, "serve", app.database_url(), &env, logs()).await;
    browser.watch().await;
    browser.open(&format!("{}/dashboard", server.address), json!({})).await;
    sign_in(&mut browser, "operator@switchyard.demo").await;
    browser.wait_until("the dashboard is live", connected()).await;
    let reseller = login(&app, "reseller@northwind.demo").await;
    let (offer, customer) = offer_and_customer(&app, &reseller).await;
    let (before, _) = order(&app, &reseller, &offer, &customer, "before-restart").await;
    browser
        .wait_until("the first order shows", &format!("document.querySelector('tr[data-order=\"{before}\"]')"))
        .await;

    server.signal("TERM");
    assert!(server.wait_exit(std::time::Duration::from_secs(30)).await.is_some(), "the server stops");
    browser.wait_until("the page notices", "document.querySelector('#connection').textContent !== 'live'").await;
    let (during, _) = order(&app, &reseller, &offer, &customer, "during-restart").await;
    let _server = crate::processes::Process::start_on(port, "serve", app.database_url(), &env, logs()).await;
    browser.wait_until("the page is live again", connected()).await;
    browser
        .wait_until(
            "the order placed while the server was away shows",
            &format!("document.querySelector('tr[data-order=\"{during}\"]')"),
        )
        .await;
    assert_eq!(browser.eval("document.querySelector('#sign-in').hidden").await, json!(true), "still signed in");
    let placed = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll('#feed li[data-kind=\"ORDER_PLACED\"]')).filter(li => /order {during}\\b/.test(li.innerText)).length"
        ))
        .await;
    assert_eq!(placed, json!(1), "the order placed meanwhile is in the feed once");
    browser.screenshot("dashboard-after-restart").await;
}

/// When the session ends (here a token's expiry; a revoked key the same), the server ends the
/// page's stream and closes with 4403: the page finds the session gone, signs out and says
/// why, rather than reconnecting forever.
#[tokio::test]
async fn the_dashboard_signs_out_when_its_token_expires() {
    let Some(mut browser) = Browser::launch("the_dashboard_signs_out_when_its_token_expires").await else { return };
    let (app, _vendor) = demo_data(crate::helpers::spawn_with_auth(|auth| auth.jwt_leeway_seconds = 0, 0).await).await;
    let actor = switchyard::domain::Actor::from_role(None, Role::Operator, None).expect("an operator");
    let short = app.state.auth.issue(&actor, std::time::Duration::from_secs(4)).expect("a token");
    browser.watch().await;
    browser.open(&format!("{}/dashboard", app.address), json!({})).await;
    browser
        .eval(&format!(
            "document.querySelector('details').open = true; document.querySelector('#api-key').value = {}; \
             document.querySelector('#key-form button').click()",
            json!(short)
        ))
        .await;
    browser.wait_until("the dashboard is live", connected()).await;
    browser
        .wait_until(
            "the page signs out when the token expires",
            "!document.querySelector('#sign-in').hidden && document.querySelector('#sign-in-error').textContent.includes('session ended')",
        )
        .await;
    assert_eq!(browser.eval("sessionStorage.length").await, json!(0), "the token is forgotten");
    browser.screenshot("dashboard-session-ended").await;
}
