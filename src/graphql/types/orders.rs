//! Output types for orders, subscriptions and provisioning jobs.
//!
//! Price visibility follows the catalog's: cost for the operator only, wholesale for the
//! operator and the reseller, retail for everyone who may see the object.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

use entity::{customer, customer_vendor_account, order, order_line, reseller, subscription, subscription_change};

use super::catalog::{Money, Offer};
use super::enums::{
    BillingFrequency, JobStatus, OrderLineStatus, OrderStatus, ProvisioningAction, Role, SubscriptionChangeKind,
    SubscriptionStatus, Term, VendorOutcome,
};
use super::parties::Customer;
use rust_decimal::Decimal;

use crate::domain::catalog::direct::Needed;
use crate::domain::customers::CustomerShown;
use crate::domain::orders::OrderShown;
use crate::domain::pricing::ChannelPrices;
use crate::domain::resellers;
use crate::domain::subscriptions::Shown;
use crate::domain::{Actor, fulfilment};
use crate::graphql::{actor, request, snapshot};

/// The offer of an order line or subscription. Ordered offers stay visible to whoever may
/// see the order or subscription, even after the offer is retired.
async fn offer(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<Offer>> {
    let snapshot = snapshot(ctx, Needed::Offers(&[id])).await?;
    Ok(snapshot.offers.get(&id).cloned().map(Offer))
}

/// What a write's answer shows besides the object it returns, read in the write's own
/// transaction (`domain::orders::OrderShown`, `domain::subscriptions::Shown`): nested fields
/// resolve from it, so the answer to a committed write needs no read that could fail after
/// the commit and tell the caller it failed.
#[derive(Default)]
pub struct Written {
    customers: HashMap<i64, customer::Model>,
    resellers: HashMap<i64, reseller::Model>,
    vendor_accounts: HashMap<i64, Vec<customer_vendor_account::Model>>,
    lines: HashMap<i64, Vec<order_line::Model>>,
    subscriptions: HashMap<i64, subscription::Model>,
    histories: HashMap<i64, Vec<subscription_change::Model>>,
}

impl Written {
    fn with_customer(shown: CustomerShown) -> Self {
        let mut written = Self::default();
        written.resellers.insert(shown.reseller.id, shown.reseller);
        written.vendor_accounts.insert(shown.customer.id, shown.vendor_accounts);
        written.customers.insert(shown.customer.id, shown.customer);
        written
    }

    /// The reseller `id` as written, if the caller may see it; `None` when it is not part of
    /// what was written (read it then).
    pub fn reseller(&self, actor: &Actor, id: i64) -> Option<Option<&reseller::Model>> {
        let reseller = self.resellers.get(&id)?;
        Some(resellers::is_visible_to(actor, id).then_some(reseller))
    }

    /// The vendor accounts of the customer `id` as written.
    pub fn vendor_accounts(&self, id: i64) -> Option<&[customer_vendor_account::Model]> {
        self.vendor_accounts.get(&id).map(Vec::as_slice)
    }

    /// What an order's answer shows.
    pub fn order(shown: OrderShown) -> Arc<Self> {
        let mut written = Self::with_customer(shown.customer);
        for line in shown.lines {
            written.lines.entry(line.order_id).or_default().push(line);
        }
        written.subscriptions = shown.subscriptions.into_iter().map(|s| (s.id, s)).collect();
        for change in shown.histories {
            written.histories.entry(change.subscription_id).or_default().push(change);
        }
        Arc::new(written)
    }

    /// What a subscription's answer shows.
    pub fn subscription(subscription: &subscription::Model, shown: Shown) -> Arc<Self> {
        let mut written = Self::with_customer(shown.customer);
        written.histories.insert(subscription.id, shown.history);
        Arc::new(written)
    }
}

/// An order; with what its write left when it is the answer to that write.
pub struct Order(pub order::Model, pub Option<Arc<Written>>);

impl Order {
    /// An order read from the database: its nested fields are read too.
    pub fn read(order: order::Model) -> Self {
        Self(order, None)
    }
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }

    async fn po_number(&self) -> Option<&str> {
        self.0.po_number.as_deref()
    }

    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Sum of line costs: the operator only.
    async fn total_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Cost)
    }

    /// Sum of line wholesale amounts: the operator and the reseller.
    async fn total_wholesale(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Wholesale)
    }

    /// Sum of line retail amounts.
    async fn total_retail(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Retail)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_of(ctx, self.0.customer_id, self.1.as_ref()).await
    }

    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrderLine>> {
        let lines = match self.1.as_ref().map(|w| w.lines.get(&self.0.id)) {
            Some(written) => written.cloned().unwrap_or_default(),
            None => request(ctx)?.order_lines.load_one(self.0.id).await?.unwrap_or_default(),
        };
        Ok(lines.into_iter().map(|line| OrderLine(line, self.1.clone())).collect())
    }
}

/// A customer, from what a write left when there is one.
async fn customer_of(
    ctx: &Context<'_>,
    id: i64,
    written: Option<&Arc<Written>>,
) -> async_graphql::Result<Option<Customer>> {
    if let Some(w) = written
        && let Some(customer) = w.customers.get(&id)
    {
        return Ok(Some(Customer(customer.clone(), Some(Arc::clone(w)))));
    }
    Ok(request(ctx)?.customers.load_one(id).await?.map(Customer::read))
}

/// One line of an order, with the prices it used.
pub struct OrderLine(pub order_line::Model, pub Option<Arc<Written>>);

#[Object]
impl OrderLine {
    async fn line_number(&self) -> i32 {
        self.0.line_number
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }

    async fn status(&self) -> OrderLineStatus {
        self.0.status.into()
    }

    async fn offer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Offer>> {
        offer(ctx, self.0.offer_id).await
    }

    async fn unit_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Cost)
    }

    async fn unit_wholesale(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Wholesale)
    }

    async fn unit_retail(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Retail)
    }

    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        let Some(id) = self.0.subscription_id else { return Ok(None) };
        if let Some(subscription) = self.1.as_ref().and_then(|w| w.subscriptions.get(&id)) {
            return Ok(Some(Subscription(subscription.clone(), self.1.clone())));
        }
        Ok(request(ctx)?.subscriptions.load_one(id).await?.map(Subscription::read))
    }
}

/// A customer's subscription to an offer; with what its write left when it is the answer
/// to that write (or part of one).
pub struct Subscription(pub subscription::Model, pub Option<Arc<Written>>);

impl Subscription {
    /// A subscription read from the database: its nested fields are read too.
    pub fn read(subscription: subscription::Model) -> Self {
        Self(subscription, None)
    }
}

#[Object]
impl Subscription {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> SubscriptionStatus {
        self.0.status.into()
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }

    async fn term(&self) -> Term {
        self.0.term.into()
    }

    async fn billing_frequency(&self) -> BillingFrequency {
        self.0.billing_frequency.into()
    }

    async fn term_start(&self) -> Option<DateTime<Utc>> {
        self.0.term_start
    }

    async fn term_end(&self) -> Option<DateTime<Utc>> {
        self.0.term_end
    }

    async fn auto_renew(&self) -> bool {
        self.0.auto_renew
    }

    /// The vendor's id for this subscription, once provisioned.
    async fn vendor_reference(&self) -> Option<&str> {
        self.0.vendor_reference.as_deref()
    }

    /// True while the vendor's state may differ from this one: a change the vendor never
    /// confirmed after every attempt. The operator settles it by retrying the job
    /// (`retryProvisioning`) or abandoning it (`abandonProvisioningJob`); billing holds the
    /// change back until then.
    async fn out_of_sync(&self) -> bool {
        self.0.sync_issue.is_some()
    }

    /// Why it is out of sync: for the operator (and the vendor) as the connector reported it;
    /// for resellers and customers that a change awaits the vendor's confirmation.
    async fn sync_issue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(fulfilment::vendor_error_for(actor(ctx)?, "OUT_OF_SYNC", self.0.sync_issue.as_deref()))
    }

    /// Changes so far (the vendor refuses more than 1,200).
    async fn update_count(&self) -> i32 {
        self.0.update_count
    }

    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Locked unit cost: the operator only.
    async fn unit_cost(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Cost)
    }

    /// Locked unit wholesale price: the operator and the reseller.
    async fn unit_wholesale(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Wholesale)
    }

    /// Locked unit retail price (vendors do not see it).
    async fn unit_retail(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        self.seen(ctx, Part::Retail)
    }

    async fn offer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Offer>> {
        offer(ctx, self.0.offer_id).await
    }

    async fn order_id(&self) -> Option<ID> {
        self.0.order_id.map(|id| ID(id.to_string()))
    }

    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_of(ctx, self.0.customer_id, self.1.as_ref()).await
    }

    /// Every recorded change, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SubscriptionChange>> {
        let rows = match self.1.as_ref().and_then(|w| w.histories.get(&self.0.id)) {
            Some(written) => written.clone(),
            None => request(ctx)?.histories.load_one(self.0.id).await?.unwrap_or_default(),
        };
        Ok(rows.into_iter().map(SubscriptionChange).collect())
    }
}

/// One recorded change of a subscription.
pub struct SubscriptionChange(pub subscription_change::Model);

#[Object]
impl SubscriptionChange {
    async fn kind(&self) -> SubscriptionChangeKind {
        self.0.kind.into()
    }
    async fn actor_role(&self) -> Role {
        self.0.actor_role.into()
    }
    async fn quantity_before(&self) -> i32 {
        self.0.quantity_before
    }
    async fn quantity_after(&self) -> i32 {
        self.0.quantity_after
    }
    async fn status_before(&self) -> SubscriptionStatus {
        self.0.status_before.into()
    }
    async fn status_after(&self) -> SubscriptionStatus {
        self.0.status_after.into()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// What the vendor did with it, for a change that needed a call to the vendor: PENDING
    /// until its job ends; a REFUSED change was reverted and is never billed; an UNCONFIRMED
    /// one is held from billing until an operator settles it.
    async fn vendor_outcome(&self) -> Option<VendorOutcome> {
        self.0.vendor_outcome.map(Into::into)
    }
}

/// A provisioning job.
pub struct ProvisioningJob(pub fulfilment::ProvisioningJob);

#[Object]
impl ProvisioningJob {
    async fn id(&self) -> ID {
        ID(self.0.job.id.to_string())
    }
    async fn action(&self) -> ProvisioningAction {
        self.0.subject.action.into()
    }
    async fn status(&self) -> JobStatus {
        self.0.job.status.into()
    }
    async fn subscription_id(&self) -> ID {
        ID(self.0.subject.subscription_id.to_string())
    }
    async fn order_id(&self) -> Option<ID> {
        self.0.subject.order_id.map(|id| ID(id.to_string()))
    }
    /// Sent to the vendor on every attempt of this job, for deduplication.
    async fn request_id(&self) -> &str {
        &self.0.job.request_id
    }
    async fn attempts(&self) -> i32 {
        self.0.job.attempts
    }
    async fn max_attempts(&self) -> i32 {
        self.0.job.max_attempts
    }
    /// When the next attempt may run.
    async fn run_after(&self) -> DateTime<Utc> {
        self.0.job.run_after
    }
    /// The last failure: for the operator (and the vendor) as the vendor or the connector
    /// reported it; for resellers and customers its reason, without the message.
    async fn last_error(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let status = crate::domain::jobs::job_status_name(self.0.job.status);
        Ok(crate::domain::fulfilment::vendor_error_for(actor(ctx)?, status, self.0.job.last_error.as_deref()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.job.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.job.finished_at
    }
}

/// Which of the channel's prices a field shows.
#[derive(Clone, Copy)]
enum Part {
    Cost,
    Wholesale,
    Retail,
}

/// A stored price triple in one currency, shown as the caller may see it
/// (`ChannelPrices::as_seen_by` holds the rule).
trait PricedView {
    fn prices(&self) -> (ChannelPrices, &str);

    fn seen(&self, ctx: &Context<'_>, part: Part) -> async_graphql::Result<Option<Money>> {
        let (prices, currency) = self.prices();
        let visible = prices.as_seen_by(actor(ctx)?);
        let amount = match part {
            Part::Cost => visible.cost,
            Part::Wholesale => visible.wholesale,
            Part::Retail => visible.retail,
        };
        Ok(amount.and_then(|amount| Money::from_code(amount, currency)))
    }
}

impl PricedView for Order {
    fn prices(&self) -> (ChannelPrices, &str) {
        let o = &self.0;
        (ChannelPrices { cost: o.total_cost.0, wholesale: o.total_wholesale.0, retail: o.total_retail.0 }, &o.currency)
    }
}

impl PricedView for OrderLine {
    fn prices(&self) -> (ChannelPrices, &str) {
        let l = &self.0;
        (ChannelPrices { cost: l.unit_cost.0, wholesale: l.unit_wholesale.0, retail: l.unit_retail.0 }, &l.currency)
    }
}

impl PricedView for Subscription {
    fn prices(&self) -> (ChannelPrices, &str) {
        let s = &self.0;
        (ChannelPrices { cost: s.unit_cost.0, wholesale: s.unit_wholesale.0, retail: s.unit_retail.0 }, &s.currency)
    }
}

/// A priced line of a quote.
#[derive(SimpleObject)]
pub struct QuoteLine {
    pub line_number: i32,
    pub offer_id: ID,
    pub sku: String,
    pub quantity: i32,
    /// The operator only (never set for resellers and customers).
    pub unit_cost: Option<Money>,
    /// The reseller's price (not shown to customers).
    pub unit_wholesale: Option<Money>,
    pub unit_retail: Money,
    pub amount_wholesale: Option<Money>,
    pub amount_retail: Money,
}

/// Priced lines and totals, as `placeOrder` would write them.
#[derive(SimpleObject)]
pub struct Quote {
    pub currency: String,
    pub lines: Vec<QuoteLine>,
    pub total_wholesale: Option<Money>,
    pub total_retail: Money,
}

impl Quote {
    /// The caller's view of a domain quote.
    pub fn view(actor: &Actor, quote: crate::domain::orders::Quote) -> Self {
        let currency = quote.currency;
        let money = move |amount: Option<Decimal>| amount.map(|amount| Money::new(amount, currency));
        let totals =
            ChannelPrices { cost: Decimal::ZERO, wholesale: quote.total_wholesale, retail: quote.total_retail };
        Self {
            currency: currency.code().to_owned(),
            total_wholesale: money(totals.as_seen_by(actor).wholesale),
            total_retail: Money::new(quote.total_retail, currency),
            lines: quote
                .lines
                .into_iter()
                .map(|line| {
                    let unit = ChannelPrices {
                        cost: line.unit_cost,
                        wholesale: line.unit_wholesale,
                        retail: line.unit_retail,
                    }
                    .as_seen_by(actor);
                    let amount = ChannelPrices {
                        cost: Decimal::ZERO,
                        wholesale: line.amount_wholesale,
                        retail: line.amount_retail,
                    }
                    .as_seen_by(actor);
                    QuoteLine {
                        line_number: line.line_number,
                        offer_id: ID(line.offer.id.to_string()),
                        sku: line.offer.sku,
                        quantity: line.quantity,
                        unit_cost: money(unit.cost),
                        unit_wholesale: money(unit.wholesale),
                        unit_retail: Money::new(line.unit_retail, currency),
                        amount_wholesale: money(amount.wholesale),
                        amount_retail: Money::new(line.amount_retail, currency),
                    }
                })
                .collect(),
        }
    }
}
