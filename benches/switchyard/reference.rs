//! The reference the catalog page is measured against: a minimal async-graphql 7 + actix-web
//! 4 server answering the same page from memory (no database, no caller, no limits, no
//! cache), typed objects resolved by async-graphql and the response serialized by serde.
//! What Switchyard does beyond it — the caller's token, limits, scopes, visibility, prices —
//! is what the ratio between the two costs.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use async_graphql::{EmptyMutation, EmptySubscription, Enum, ID, Object, Schema, SimpleObject};
use serde_json::Value;

#[derive(SimpleObject, Clone)]
struct Amount {
    amount: String,
}

#[derive(SimpleObject, Clone)]
struct Price {
    currency: String,
    list_price: Amount,
    wholesale: Option<Amount>,
    retail: Option<Amount>,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum Term {
    #[graphql(name = "P1M")]
    P1m,
    #[graphql(name = "P1Y")]
    P1y,
    #[graphql(name = "P3Y")]
    P3y,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum BillingFrequency {
    Monthly,
    Annual,
    Upfront,
}

#[derive(SimpleObject, Clone)]
struct Offer {
    id: ID,
    sku: String,
    name: String,
    term: Term,
    billing_frequency: BillingFrequency,
    prices: Vec<Price>,
}

#[derive(SimpleObject)]
struct Edge {
    node: Offer,
}

#[derive(SimpleObject)]
struct OfferConnection {
    total_count: usize,
    edges: Vec<Edge>,
}

struct Query {
    offers: Vec<Offer>,
    total_count: usize,
}

#[Object]
impl Query {
    async fn offers(&self, first: Option<i32>) -> OfferConnection {
        let first = first.unwrap_or(20).max(0) as usize;
        OfferConnection {
            total_count: self.total_count,
            edges: self.offers.iter().take(first).cloned().map(|node| Edge { node }).collect(),
        }
    }
}

type ReferenceSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Starts the reference server on `listener` (one worker), serving the offers of `page`:
/// the `data` of Switchyard's own answer to the same query. Returns its handle.
pub fn serve(listener: TcpListener, page: &Value) -> actix_web::dev::ServerHandle {
    let amount = |value: &Value| value["amount"].as_str().map(|a| Amount { amount: a.to_owned() });
    let offers: Vec<Offer> = page["offers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| {
            let node = &edge["node"];
            Offer {
                id: ID(node["id"].as_str().expect("id").to_owned()),
                sku: node["sku"].as_str().expect("sku").to_owned(),
                name: node["name"].as_str().expect("name").to_owned(),
                term: match node["term"].as_str() {
                    Some("P1M") => Term::P1m,
                    Some("P1Y") => Term::P1y,
                    _ => Term::P3y,
                },
                billing_frequency: match node["billingFrequency"].as_str() {
                    Some("MONTHLY") => BillingFrequency::Monthly,
                    Some("ANNUAL") => BillingFrequency::Annual,
                    _ => BillingFrequency::Upfront,
                },
                prices: node["prices"]
                    .as_array()
                    .expect("prices")
                    .iter()
                    .map(|price| Price {
                        currency: price["currency"].as_str().expect("currency").to_owned(),
                        list_price: amount(&price["listPrice"]).expect("list price"),
                        wholesale: amount(&price["wholesale"]),
                        retail: amount(&price["retail"]),
                    })
                    .collect(),
            }
        })
        .collect();
    let total_count = page["offers"]["totalCount"].as_u64().expect("totalCount") as usize;
    let schema = Schema::build(Query { offers, total_count }, EmptyMutation, EmptySubscription).finish();
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(schema.clone())).route("/graphql", web::post().to(graphql))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

async fn graphql(schema: web::Data<ReferenceSchema>, body: web::Bytes) -> HttpResponse {
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return HttpResponse::BadRequest().body(error.to_string()),
    };
    let response = schema.execute(request).await;
    HttpResponse::Ok().content_type("application/json").body(serde_json::to_vec(&response).expect("serialize"))
}
