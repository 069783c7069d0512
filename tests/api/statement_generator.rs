//! A vendor's statement, written the way Partner Center would bill a month, from a
//! database's actual subscriptions and their change history — never from our charges, and
//! never by calling the code under test: the proration, the vendor's ROUNDDOWN and the
//! currency conversion are computed here, from DOMAIN.md, on their own.
//!
//! For a month it writes, per subscription the vendor provisioned (monthly billing, calendar
//! cycles as our engine bills them): a `cycleCharge` for the seats in force on the 1st, and
//! a prorated row for each change in the month — `new`, `addQuantity`, `removeQuantity`
//! (negative), `cancelImmediate` (negative) — from its day to the month's end. Then tests
//! plant discrepancies in the rows (`Row` is plain data) and write the file.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use entity::enums::{SubscriptionChangeKind as K, SubscriptionStatus};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

pub const HEADER: &str = "PartnerId,CustomerId,CustomerName,CustomerDomainName,CustomerCountry,InvoiceNumber,MpnId,\
    ResellerMpnId,OrderId,OrderDate,ProductId,SkuId,AvailabilityId,SkuName,ProductName,ChargeType,UnitPrice,Quantity,\
    Subtotal,TaxTotal,Total,Currency,SubscriptionId,ChargeStartDate,ChargeEndDate,TermAndBillingCycle,\
    EffectiveUnitPrice,UnitType,BillableQuantity,BillingFrequency,PricingCurrency,PCToBCExchangeRate";

/// One row of the statement.
#[derive(Clone, Debug)]
pub struct Row {
    /// Our subscription it was written for (None for a planted stranger).
    pub subscription_id: Option<i64>,
    pub tenant: String,
    pub customer_name: String,
    pub reference: String,
    pub product: String,
    pub sku_id: String,
    pub charge_type: &'static str,
    pub unit_price: Decimal,
    /// Signed: negative for credits.
    pub quantity: Decimal,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Days of the cycle (for the prorated unit price).
    pub days_in_cycle: i64,
    pub pricing_currency: String,
    pub currency: String,
    pub rate: Decimal,
}

fn truncate(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::ToZero)
}

impl Row {
    /// The prorated unit price, to the 10 decimals the file carries.
    pub fn effective(&self) -> Decimal {
        let days = Decimal::from((self.end - self.start).num_days() + 1);
        (self.unit_price * days / Decimal::from(self.days_in_cycle))
            .round_dp_with_strategy(10, RoundingStrategy::MidpointAwayFromZero)
    }

    /// The vendor's rule for seats: ROUNDDOWN(EffectiveUnitPrice × PCToBCExchangeRate, 2) ×
    /// BillableQuantity.
    pub fn subtotal(&self) -> Decimal {
        truncate(self.effective() * self.rate) * self.quantity
    }

    pub fn csv(&self) -> String {
        let subtotal = self.subtotal();
        format!(
            "partner-1,{},\"{}\",example.test,DE,G0001,1,5555,order-1,{},{},{},AV01,Seat,Product,{},{},{},{},0,{},{},{},{},{},\
             1 Year - 1 Month,{},Licenses,{},Monthly,{},{}",
            self.tenant,
            self.customer_name.replace('"', "\"\""),
            self.start,
            self.product,
            self.sku_id,
            self.charge_type,
            self.unit_price,
            self.quantity,
            subtotal,
            subtotal,
            self.currency,
            self.reference,
            self.start,
            self.end,
            self.effective(),
            self.quantity,
            self.pricing_currency,
            self.rate
        )
    }
}

/// The file of `rows`.
pub fn file(rows: &[Row]) -> Vec<u8> {
    let mut out = String::from(HEADER);
    for row in rows {
        out.push('\n');
        out.push_str(&row.csv());
    }
    out.push('\n');
    out.into_bytes()
}

/// The vendor's conversion: each pricing currency to the statement's billing currency.
pub struct Billing {
    pub currency: &'static str,
    pub rates: HashMap<&'static str, Decimal>,
}

fn last_day(year: i32, month: u32) -> NaiveDate {
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    next.unwrap().pred_opt().unwrap()
}

/// The rows the vendor bills for `(year, month)`: for every subscription of `vendor_id` that
/// has the vendor's id, except those in `omit`.
pub async fn month_rows(
    db: &DatabaseConnection,
    vendor_id: i64,
    (year, month): (i32, u32),
    billing: &Billing,
    omit: &HashSet<i64>,
) -> Vec<Row> {
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
    let last = last_day(year, month);
    let days_in_cycle = (last - first).num_days() + 1;
    let offers: HashMap<i64, String> = entity::offer::Entity::find()
        .filter(entity::offer::Column::VendorId.eq(vendor_id))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.sku))
        .collect();
    let tenants: HashMap<i64, String> = entity::customer_vendor_account::Entity::find()
        .filter(entity::customer_vendor_account::Column::VendorId.eq(vendor_id))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.customer_id, a.external_id))
        .collect();
    let names: HashMap<i64, String> =
        entity::customer::Entity::find().all(db).await.unwrap().into_iter().map(|c| (c.id, c.name)).collect();
    let subscriptions = entity::subscription::Entity::find()
        .filter(entity::subscription::Column::VendorId.eq(vendor_id))
        .order_by_asc(entity::subscription::Column::Id)
        .all(db)
        .await
        .unwrap();
    let mut rows = Vec::new();
    for s in subscriptions.iter().filter(|s| !omit.contains(&s.id)) {
        let Some(reference) = s.vendor_reference.clone() else { continue };
        let history = entity::subscription_change::Entity::find()
            .filter(entity::subscription_change::Column::SubscriptionId.eq(s.id))
            .order_by_asc(entity::subscription_change::Column::Id)
            .all(db)
            .await
            .unwrap();
        let sku = &offers[&s.offer_id];
        let (product, sku_id) = sku.split_once(':').unwrap_or((sku.as_str(), "0001"));
        let rate = billing.rates[s.currency.as_str()];
        let row = |charge_type, quantity: i32, start: NaiveDate| Row {
            subscription_id: Some(s.id),
            tenant: tenants[&s.customer_id].clone(),
            customer_name: names[&s.customer_id].clone(),
            reference: reference.clone(),
            product: product.to_owned(),
            sku_id: sku_id.to_owned(),
            charge_type,
            unit_price: s.unit_cost.0,
            quantity: Decimal::from(quantity),
            start,
            end: last,
            days_in_cycle,
            pricing_currency: s.currency.clone(),
            currency: billing.currency.to_owned(),
            rate,
        };
        // The seats in force on the 1st: the last change before it.
        let before = history.iter().rfind(|c| c.occurred_at.date_naive() < first);
        if let Some(c) = before {
            let ended = matches!(
                c.status_after,
                SubscriptionStatus::Cancelled | SubscriptionStatus::Expired | SubscriptionStatus::Failed
            );
            if !ended && c.quantity_after > 0 {
                rows.push(row("cycleCharge", c.quantity_after, first));
            }
        }
        for c in history.iter().filter(|c| {
            let day = c.occurred_at.date_naive();
            day >= first && day <= last
        }) {
            let day = c.occurred_at.date_naive();
            match c.kind {
                K::Purchase => rows.push(row("new", c.quantity_after, day)),
                K::QuantityIncrease => rows.push(row("addQuantity", c.quantity_after - c.quantity_before, day)),
                K::QuantityDecrease => rows.push(row("removeQuantity", c.quantity_after - c.quantity_before, day)),
                K::Cancel => rows.push(row("cancelImmediate", -c.quantity_before, day)),
                _ => {}
            }
        }
    }
    assert!(rows.iter().all(|r| r.start.year() == year && r.start.month() == month));
    rows
}
