//! Money storage: decimals round-trip exactly on both backends (SQLite stores them as text).

use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, EntityTrait, NotSet, Set};
use serde_json::json;
use switchyard::domain::Role;
use switchyard::domain::clock::Clock;

use crate::helpers::{Fixture, dec, spawn_app};

#[tokio::test]
async fn extreme_decimals_round_trip_exactly() {
    let app = spawn_app().await;
    let f = Fixture::build(&app).await;
    let values = ["99999999999999.9999", "123456789012345.1234", "0.0000000001", "-42.4200", "0"];
    let now = app.clock.now();
    let mut ids = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let row = entity::price_point::ActiveModel {
            id: NotSet,
            offer_id: Set(f.offers_a[0]),
            currency: Set("USD".into()),
            cost: Set(entity::DbDecimal(dec(value))),
            list_price: Set(entity::DbDecimal(dec(value))),
            usage_unit_cost: Set(Some(entity::DbDecimal(dec(value)))),
            usage_unit_list_price: Set(None),
            effective_from: Set(now + chrono::Duration::days(400 + index as i64)),
            created_at: Set(now),
        }
        .insert(&app.domain.db)
        .await
        .unwrap();
        ids.push(row.id);
    }
    for (id, value) in ids.iter().zip(values) {
        let row = entity::price_point::Entity::find_by_id(*id).one(&app.domain.db).await.unwrap().unwrap();
        let expected: Decimal = value.parse().unwrap();
        assert_eq!(row.cost.0, expected, "{value}");
        assert_eq!(row.cost.0.to_string(), expected.normalize().to_string(), "{value}");
        assert_eq!(row.usage_unit_cost.map(|d| d.0), Some(expected));
        assert_eq!(row.usage_unit_list_price, None);
    }
    // And through the API, as strings.
    let vendor = app.token(Role::Vendor, Some(f.vendor_a));
    let data = app
        .data(
            &vendor,
            "query($id: ID!) { offer(id: $id) { pricePoints { cost } } }",
            json!({"id": f.offers_a[0].to_string()}),
        )
        .await;
    let costs: Vec<&str> =
        data["offer"]["pricePoints"].as_array().unwrap().iter().map(|p| p["cost"].as_str().unwrap()).collect();
    assert!(costs.contains(&"99999999999999.9999"), "{costs:?}");
    assert!(costs.contains(&"123456789012345.1234"), "{costs:?}");
}
