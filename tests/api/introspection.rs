//! #11, standard introspection: the query graphql-js writes (`getIntrospectionQuery`, what
//! GraphiQL, Apollo, graphql-codegen, Postman and Insomnia send; 15 fields deep) is answered
//! at the default limits, while ordinary queries keep their depth limit of 12 and an
//! introspection deeper than its own bound is refused.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const DEFAULT: &str = include_str!("../fixtures/introspection/graphql-js-16.15-default.graphql");
const ALL_OPTIONS: &str = include_str!("../fixtures/introspection/graphql-js-16.15-all-options.graphql");

fn type_names(body: &Value) -> Vec<&str> {
    body["data"]["__schema"]["types"]
        .as_array()
        .map_or(Vec::new(), |types| types.iter().filter_map(|t| t["name"].as_str()).collect())
}

#[tokio::test]
async fn the_standard_introspection_query_is_answered_at_the_default_limits() {
    let app = spawn_app().await;
    for (name, query) in [("default", DEFAULT), ("all options", ALL_OPTIONS)] {
        // As clients send it: anonymous, with its operation name.
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({"query": query, "operationName": "IntrospectionQuery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{name}: {body}");
        let names = type_names(&body);
        for expected in ["Query", "Mutation", "Subscription", "Offer", "Money", "__Schema"] {
            assert!(names.contains(&expected), "{name}: {expected} missing from {names:?}");
        }
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{name}");
    }
}

#[tokio::test]
async fn ordinary_queries_keep_their_depth_limit_and_introspection_has_its_own() {
    let app = spawn_app().await;
    let token = app.operator();
    // 13 deep beside an introspection: the ordinary field is refused.
    let deep = "{ __schema { queryType { name } } products { edges { node { vendor { products { edges { node { vendor { products { edges { node { vendor { name } } } } } } } } } } } } }";
    let (_, body) = app.post(Some(&token), deep, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().starts_with("Query is nested too deep: depth 13"), "{body}");
    // 12 deep is an ordinary query's limit, answered.
    let twelve = "{ products(first: 1) { edges { node { vendor { products(first: 1) { edges { node { vendor { products(first: 1) { edges { node { name } } } } } } } } } } } }";
    let (_, body) = app.post(Some(&token), twelve, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Introspection past its own bound (20) is refused: __type, 19 levels of ofType and a name.
    let nested = format!("{{ __type(name: \"Offer\") {{ {}name{} }} }}", "ofType { ".repeat(19), " }".repeat(19));
    let (_, body) = app.post(None, &nested, json!({})).await;
    assert!(
        body["errors"][0]["message"].as_str().unwrap().starts_with("Introspection is nested too deep: depth 21"),
        "{body}"
    );
}
