//! Matching an imported statement (operator only): its rows are summed per vendor
//! subscription, charge cycle (the cycle's last day: every row of a cycle — new,
//! cycleCharge, addQuantity, removeQuantity, cancelImmediate, renew — ends on it) and kind
//! of unit; each sum is matched to our subscription by the vendor's id (our vendor
//! reference), else by the customer's tenant id + SKU + a term in force on the first day
//! charged; our charges for the same cycle are summed beside it, and `matching` judges the
//! two. Cycles we charged in the import's period that no statement of the vendor charged are
//! judged too. Rows and charges are read in pages and summed as they come, so memory grows
//! with the number of subscriptions, not of rows. The findings replace the import's earlier
//! ones in one transaction; matching again is refused once a finding was resolved.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use entity::{DbDecimal, reconciliation_finding, reconciliation_import};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, Set};

use super::matching::{Category, Judgement, OurSide, Tolerances, judge_charged, judge_uncharged};
use super::sides::{
    Line, OurGroup, OurKey, Ours, Resolver, VendorGroup, VendorKey, add_line, kind_name, kind_of, load_our_groups,
    load_subscriptions, load_vendor_groups, matched_elsewhere, midnight,
};
use super::statement::format_named;
use crate::domain::Domain;
use crate::domain::actor::Actor;
use crate::domain::billing::terms::Period;
use crate::domain::error::{Error, Result};
use crate::domain::write::{Audit, Write};

/// Findings written per statement.
const BATCH: usize = 500;

/// The largest tolerance accepted.
fn max_tolerance() -> Decimal {
    Decimal::from(1_000_000)
}

/// Checks tolerances an operator gives.
pub fn check_tolerances(tolerances: Tolerances) -> Result<Tolerances> {
    for (value, field) in [(tolerances.amount, "amountTolerance"), (tolerances.quantity, "quantityTolerance")] {
        if value.is_sign_negative() || value > max_tolerance() || value.scale() > 10 {
            return Err(Error::validation(field, "must be between 0 and 1000000, with at most 10 decimals"));
        }
    }
    Ok(tolerances)
}

/// Matches import `import_id` with `tolerances` (the import's own when None), replacing its
/// findings. Refused (CONFLICT) when a finding of it was resolved.
pub async fn match_import(
    domain: &Domain,
    actor: &Actor,
    import_id: i64,
    tolerances: Option<Tolerances>,
) -> Result<reconciliation_import::Model> {
    actor.require_operator()?;
    let import =
        reconciliation_import::Entity::find_by_id(import_id).one(&domain.db).await?.ok_or(Error::NotFound("import"))?;
    let tolerances = check_tolerances(
        tolerances.unwrap_or(Tolerances { amount: import.amount_tolerance.0, quantity: import.quantity_tolerance.0 }),
    )?;
    let format = format_named(&import.format).ok_or_else(|| Error::internal(format!("format {}", import.format)))?;
    let subscriptions = load_subscriptions(domain, import.vendor_id).await?;
    let by_reference: HashMap<&str, usize> =
        subscriptions.iter().enumerate().filter_map(|(i, s)| s.vendor_reference.as_deref().map(|r| (r, i))).collect();
    let by_id: HashMap<i64, usize> = subscriptions.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let vendor_groups = load_vendor_groups(domain, import.id).await?;
    let resolver = Resolver::load(domain, import.vendor_id, &subscriptions).await?;
    let (lo, hi) = vendor_groups
        .keys()
        .fold(None, |range: Option<(NaiveDate, NaiveDate)>, k| {
            Some(range.map_or((k.last_day, k.last_day), |(lo, hi)| (lo.min(k.last_day), hi.max(k.last_day))))
        })
        .unwrap_or_default();
    // A stray date in the file widens the window no further than a year and a month around
    // the statement's period (an annual cycle's end is inside it).
    let around = Period::parse(&import.period)?;
    let (lo, hi) =
        (lo.max(around.start - chrono::Duration::days(400)), hi.min(around.end() + chrono::Duration::days(400)));
    let mut our_groups = load_our_groups(domain, import.vendor_id, &import.period, (lo, hi)).await?;
    let elsewhere = matched_elsewhere(domain, &import, (lo, hi)).await?;

    // In a set order: each (subscription, cycle, kind) is claimed once — by the vendor's id
    // first, then by tenant and SKU among the subscriptions the file names no id of.
    let mut vendor_groups: Vec<(VendorKey, VendorGroup)> = vendor_groups.into_iter().collect();
    vendor_groups.sort_by(|(a, _), (b, _)| {
        (&a.reference, &a.tenant, &a.sku, a.last_day, a.usage).cmp(&(
            &b.reference,
            &b.tenant,
            &b.sku,
            b.last_day,
            b.usage,
        ))
    });
    let named: HashSet<&str> =
        vendor_groups.iter().map(|(k, _)| k.reference.as_str()).filter(|r| !r.is_empty()).collect();
    let mut claimed: HashSet<OurKey> = HashSet::new();
    let mut matches: Vec<Option<(usize, String)>> = vendor_groups
        .iter()
        .map(|(key, _)| {
            let found = by_reference
                .get(key.reference.as_str())
                .map(|&i| (i, "matched by the vendor's subscription id".to_owned()));
            if let Some((i, _)) = &found {
                claimed.insert((subscriptions[*i].id, key.last_day, key.usage));
            }
            found
        })
        .collect();
    for ((key, group), found) in vendor_groups.iter().zip(matches.iter_mut()) {
        if found.is_none()
            && let Some((i, how)) = resolver.by_tenant_and_sku(group, &subscriptions, &named)
            && claimed.insert((subscriptions[i].id, key.last_day, key.usage))
        {
            *found = Some((i, how));
        }
    }
    drop(named);
    // Lag is not leakage: where the statement is above what we charged, what the next run
    // bills (planned, written nowhere yet) counts as billed.
    let short: Vec<i64> = vendor_groups
        .iter()
        .zip(&matches)
        .filter_map(|((key, group), found)| {
            let id = subscriptions[found.as_ref()?.0].id;
            let ours = our_groups.get(&(id, key.last_day, key.usage)).map(|o| &o.side);
            let judgement = judge_charged(format, &group.side, Some(""), ours, tolerances);
            (judgement.category != Category::Matched).then_some(id)
        })
        .collect::<std::collections::BTreeSet<i64>>()
        .into_iter()
        .collect();
    let now = domain.clock.now().date_naive();
    let next_run = Period::containing(now).max(Period::parse(&import.period)?);
    for (id, lines) in crate::domain::billing::pending_charges(domain, &short, next_run).await? {
        let Some(currency) = by_id.get(&id).map(|&i| subscriptions[i].currency.clone()) else { continue };
        for planned in lines {
            let line = Line {
                key: &planned.key,
                kind: planned.kind,
                quantity: planned.quantity,
                cycle_unit_cost: planned.cycle_unit.0,
                days: planned.days_used.zip(planned.days_in_period),
                service: (planned.service_start.date_naive(), planned.service_end.date_naive()),
                amounts: planned.amount,
            };
            let group = add_line(&mut our_groups, id, &currency, line)?;
            group.side.pending = group
                .side
                .pending
                .checked_add(planned.amount.1)
                .ok_or_else(|| Error::validation("amount", "too large"))?;
        }
    }

    // Judged and written a batch at a time, in one transaction: nothing is held per finding.
    let mut out = Findings::begin(domain, &import).await?;
    for ((key, group), matched) in vendor_groups.into_iter().zip(matches) {
        let ours =
            matched.as_ref().and_then(|(i, _)| our_groups.remove(&(subscriptions[*i].id, key.last_day, key.usage)));
        let judgement = judge_charged(
            format,
            &group.side,
            matched.as_ref().map(|(_, how)| how.as_str()),
            ours.as_ref().map(|o| &o.side),
            tolerances,
        );
        let subscription = matched.map(|(i, _)| &subscriptions[i]);
        out.push(finding(&import, &key, &group, subscription, ours.as_ref(), judgement)).await?;
    }
    let mut uncharged: Vec<(OurKey, OurGroup)> =
        our_groups.into_iter().filter(|(key, group)| group.in_period && !elsewhere.contains(key)).collect();
    uncharged.sort_by_key(|(key, _)| *key);
    for ((subscription_id, last_day, usage), group) in uncharged {
        let Some(s) = by_id.get(&subscription_id).map(|&i| &subscriptions[i]) else { continue };
        let Some(judgement) = judge_uncharged(format, kind_of(usage), &group.side, s.vendor_reference.is_some()) else {
            continue;
        };
        out.push(uncharged_finding(&import, s, (last_day, usage), &group, judgement)).await?;
    }
    out.finish(actor, import, tolerances).await
}

fn finding(
    import: &reconciliation_import::Model,
    key: &VendorKey,
    group: &VendorGroup,
    subscription: Option<&Ours>,
    ours: Option<&OurGroup>,
    judgement: Judgement,
) -> reconciliation_finding::ActiveModel {
    let side = &group.side;
    let our_side = ours.map(|o| &o.side);
    let group_key = if key.reference.is_empty() {
        format!("t:{}|{}|{}|{}", key.tenant, key.sku, key.last_day, kind_name(key.usage))
    } else {
        format!("v:{}|{}|{}", key.reference, key.last_day, kind_name(key.usage))
    };
    new_finding(import, group_key, judgement, subscription, (side.first_day, key.last_day), key.usage, our_side)
        .with_vendor(key, group)
}

fn uncharged_finding(
    import: &reconciliation_import::Model,
    subscription: &Ours,
    (last_day, usage): (NaiveDate, bool),
    ours: &OurGroup,
    judgement: Judgement,
) -> reconciliation_finding::ActiveModel {
    let group_key = format!("s:{}|{last_day}|{}", subscription.id, kind_name(usage));
    let mut model = new_finding(
        import,
        group_key,
        judgement,
        Some(subscription),
        (ours.first_day, last_day),
        usage,
        Some(&ours.side),
    );
    model.subscription_reference = Set(subscription.vendor_reference.clone().unwrap_or_default());
    model.currency = Set(ours.side.currency.clone());
    model
}

trait WithVendor {
    fn with_vendor(self, key: &VendorKey, group: &VendorGroup) -> Self;
}

impl WithVendor for reconciliation_finding::ActiveModel {
    fn with_vendor(mut self, key: &VendorKey, group: &VendorGroup) -> Self {
        self.subscription_reference = Set(key.reference.clone());
        self.customer_external_id = Set(group.tenant.clone());
        self.sku = Set(group.sku.clone());
        self.vendor_rows = Set(i32::try_from(group.side.rows).unwrap_or(i32::MAX));
        self.currency = Set(group.side.currency.clone());
        self.pricing_currency = Set(group.side.pricing_currency.clone());
        self.exchange_rate = Set(DbDecimal(group.side.rate()));
        self.vendor_amount = Set(DbDecimal(group.side.amount));
        self.vendor_quantity = Set(Some(DbDecimal(group.side.quantity)));
        self
    }
}

fn new_finding(
    import: &reconciliation_import::Model,
    group_key: String,
    judgement: Judgement,
    subscription: Option<&Ours>,
    (first_day, last_day): (NaiveDate, NaiveDate),
    usage: bool,
    ours: Option<&OurSide>,
) -> reconciliation_finding::ActiveModel {
    let zero = DbDecimal(Decimal::ZERO);
    reconciliation_finding::ActiveModel {
        id: NotSet,
        import_id: Set(import.id),
        group_key: Set(group_key),
        category: Set(judgement.category.as_str().to_owned()),
        subscription_id: Set(subscription.map(|s| s.id)),
        customer_id: Set(subscription.map(|s| s.customer_id)),
        reseller_id: Set(subscription.map(|s| s.reseller_id)),
        offer_id: Set(subscription.map(|s| s.offer_id)),
        subscription_reference: Set(String::new()),
        customer_external_id: Set(String::new()),
        sku: Set(String::new()),
        unit_kind: Set(kind_name(usage).to_owned()),
        charge_start: Set(midnight(first_day)),
        charge_end: Set(midnight(last_day)),
        vendor_rows: Set(0),
        currency: Set(String::new()),
        pricing_currency: Set(ours.map(|o| o.currency.clone()).unwrap_or_default()),
        exchange_rate: Set(DbDecimal(Decimal::ONE)),
        vendor_amount: Set(zero),
        expected_amount: Set(judgement.expected.map(DbDecimal)),
        vendor_quantity: Set(None),
        our_quantity: Set(ours.map(|o| DbDecimal(o.charges.iter().map(|c| c.quantity).sum()))),
        billed_currency: Set(ours.map(|o| o.currency.clone())),
        cost_billed: Set(ours.map_or(zero, |o| DbDecimal(o.cost))),
        wholesale_billed: Set(ours.map_or(zero, |o| DbDecimal(o.wholesale))),
        retail_billed: Set(ours.map_or(zero, |o| DbDecimal(o.retail))),
        amount: Set(DbDecimal(judgement.amount)),
        rule: Set(judgement.rule),
        status: Set("OPEN".to_owned()),
        note: Set(None),
        resolved_by_user_id: Set(None),
        resolved_at: Set(None),
        recovery_charge_id: Set(None),
        recovery_customer_charge: Set(false),
    }
}

/// Findings being written: the import's earlier ones gone, new ones a batch at a time.
struct Findings<'d> {
    w: Write<'d>,
    batch: Vec<reconciliation_finding::ActiveModel>,
    count: usize,
}

impl<'d> Findings<'d> {
    /// Refused (CONFLICT) when a finding of the import was resolved.
    async fn begin(domain: &'d Domain, import: &reconciliation_import::Model) -> Result<Self> {
        let w = Write::begin(domain).await?;
        super::resolution::lock_import(&w, import.id).await?;
        let resolved = reconciliation_finding::Entity::find()
            .filter(reconciliation_finding::Column::ImportId.eq(import.id))
            .filter(reconciliation_finding::Column::Status.ne("OPEN"))
            .count(w.db())
            .await?;
        if resolved > 0 {
            w.rollback().await;
            return Err(Error::conflict(
                "FINDINGS_RESOLVED",
                "findings of this import were resolved: it cannot be matched again",
            ));
        }
        reconciliation_finding::Entity::delete_many()
            .filter(reconciliation_finding::Column::ImportId.eq(import.id))
            .exec(w.db())
            .await?;
        Ok(Self { w, batch: Vec::with_capacity(BATCH), count: 0 })
    }

    async fn push(&mut self, finding: reconciliation_finding::ActiveModel) -> Result<()> {
        self.batch.push(finding);
        self.count += 1;
        if self.batch.len() == BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            reconciliation_finding::Entity::insert_many(batch).exec(self.w.db()).await?;
        }
        Ok(())
    }

    async fn finish(
        mut self,
        actor: &Actor,
        import: reconciliation_import::Model,
        tolerances: Tolerances,
    ) -> Result<reconciliation_import::Model> {
        self.flush().await?;
        let Self { mut w, count, .. } = self;
        let mut model: reconciliation_import::ActiveModel = import.into();
        model.amount_tolerance = Set(DbDecimal(tolerances.amount));
        model.quantity_tolerance = Set(DbDecimal(tolerances.quantity));
        model.matched_at = Set(Some(w.now()));
        model.status = Set("MATCHED".to_owned());
        let import = model.update(w.db()).await?;
        let details = serde_json::json!({
            "findings": count,
            "amountTolerance": tolerances.amount.to_string(),
            "quantityTolerance": tolerances.quantity.to_string(),
        });
        let detail = serde_json::json!({"importId": import.id, "vendorId": import.vendor_id, "findings": count});
        w.emit(super::resolution::reconciliation_event("MATCHED", w.now(), detail)).await?;
        w.commit(Audit::action(actor, "matchStatement", "reconciliation_import", import.id, details)).await?;
        Ok(import)
    }
}
