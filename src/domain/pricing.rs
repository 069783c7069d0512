//! The price cascade of DOMAIN.md, as pure functions over dated price rows.
//!
//! - cost: the offer's price point in force;
//! - wholesale: the operator's explicit price for the reseller, else for its tier,
//!   else cost × (1 + tier markup);
//! - retail: the reseller's explicit price, else wholesale × (1 + its default markup),
//!   else the list price.
//!
//! Unit prices keep full precision; rounding happens on invoice lines, not here.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// The three prices of the channel on an order, a subscription or a quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelPrices {
    /// Vendor → operator.
    pub cost: Decimal,
    /// Operator → reseller.
    pub wholesale: Decimal,
    /// Reseller → customer.
    pub retail: Decimal,
}

/// [`ChannelPrices`] as one caller may see them; `None` is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VisiblePrices {
    /// The operator only (a vendor sees cost in its catalog, not on the channel's orders).
    pub cost: Option<Decimal>,
    /// The operator and resellers; never customers.
    pub wholesale: Option<Decimal>,
    /// Everyone who buys or sells: not vendors.
    pub retail: Option<Decimal>,
}

impl ChannelPrices {
    /// The prices `actor` may see.
    pub fn as_seen_by(self, actor: &super::Actor) -> VisiblePrices {
        VisiblePrices {
            cost: actor.sees_order_cost().then_some(self.cost),
            wholesale: actor.sees_order_wholesale().then_some(self.wholesale),
            retail: actor.vendor_id().is_none().then_some(self.retail),
        }
    }
}

/// A price row that takes effect at a point in time.
pub trait Dated {
    /// When this price takes effect.
    fn effective_from(&self) -> DateTime<Utc>;
}

/// The row in force at `at`: the latest whose `effective_from` is not after `at`.
pub fn in_force<T: Dated>(rows: &[T], at: DateTime<Utc>) -> Option<&T> {
    rows.iter().filter(|row| row.effective_from() <= at).max_by_key(|row| row.effective_from())
}

/// A dated explicit price (wholesale or retail override).
#[derive(Clone, Debug, PartialEq)]
pub struct DatedPrice {
    /// When it takes effect.
    pub effective_from: DateTime<Utc>,
    /// The unit price.
    pub price: Decimal,
}

impl Dated for DatedPrice {
    fn effective_from(&self) -> DateTime<Utc> {
        self.effective_from
    }
}

/// Where a resolved price came from, for audit and display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    /// An explicit price for this reseller.
    ResellerPrice,
    /// An explicit price for the reseller's tier.
    TierPrice,
    /// Computed from a markup.
    Markup,
    /// The vendor's list price (MSRP).
    ListPrice,
}

/// The wholesale unit price and its source.
pub fn wholesale_price(
    cost: Decimal,
    tier_markup: Decimal,
    reseller_price: Option<&DatedPrice>,
    tier_price: Option<&DatedPrice>,
) -> (Decimal, PriceSource) {
    if let Some(explicit) = reseller_price {
        (explicit.price, PriceSource::ResellerPrice)
    } else if let Some(explicit) = tier_price {
        (explicit.price, PriceSource::TierPrice)
    } else {
        (cost * (Decimal::ONE + tier_markup), PriceSource::Markup)
    }
}

/// The retail unit price and its source.
pub fn retail_price(
    wholesale: Decimal,
    list_price: Decimal,
    default_markup: Option<Decimal>,
    explicit: Option<&DatedPrice>,
) -> (Decimal, PriceSource) {
    if let Some(explicit) = explicit {
        (explicit.price, PriceSource::ResellerPrice)
    } else if let Some(markup) = default_markup {
        (wholesale * (Decimal::ONE + markup), PriceSource::Markup)
    } else {
        (list_price, PriceSource::ListPrice)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).single().unwrap_or_default()
    }

    fn dated(day: u32, price: Decimal) -> DatedPrice {
        DatedPrice { effective_from: at(day), price }
    }

    #[test]
    fn in_force_picks_the_latest_row_not_in_the_future() {
        let rows = [dated(1, dec!(10)), dated(10, dec!(12)), dated(20, dec!(15))];
        assert_eq!(in_force(&rows, at(9)).map(|r| r.price), Some(dec!(10)));
        assert_eq!(in_force(&rows, at(10)).map(|r| r.price), Some(dec!(12)));
        assert_eq!(in_force(&rows, at(25)).map(|r| r.price), Some(dec!(15)));
        assert_eq!(in_force(&rows[1..], at(2)), None);
    }

    #[test]
    fn wholesale_prefers_reseller_then_tier_then_markup() {
        let reseller = dated(1, dec!(9));
        let tier = dated(1, dec!(9.5));
        assert_eq!(
            wholesale_price(dec!(8), dec!(0.15), Some(&reseller), Some(&tier)),
            (dec!(9), PriceSource::ResellerPrice)
        );
        assert_eq!(wholesale_price(dec!(8), dec!(0.15), None, Some(&tier)), (dec!(9.5), PriceSource::TierPrice));
        assert_eq!(wholesale_price(dec!(8), dec!(0.15), None, None), (dec!(9.20), PriceSource::Markup));
    }

    #[test]
    fn retail_prefers_explicit_then_markup_then_list() {
        let explicit = dated(1, dec!(12));
        assert_eq!(
            retail_price(dec!(10), dec!(14), Some(dec!(0.2)), Some(&explicit)),
            (dec!(12), PriceSource::ResellerPrice)
        );
        assert_eq!(retail_price(dec!(10), dec!(14), Some(dec!(0.2)), None), (dec!(12.0), PriceSource::Markup));
        assert_eq!(retail_price(dec!(10), dec!(14), None, None), (dec!(14), PriceSource::ListPrice));
    }
}
