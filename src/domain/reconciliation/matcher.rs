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

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use entity::{DbDecimal, reconciliation_finding, reconciliation_import};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, Set};

use super::charged::{Line, add_line, charged_in_period, cycles_charged, our_groups};
use super::matching::{Category, Judgement, OurSide, Tolerances, judge_charged, judge_uncharged};
use super::sides::{
    OurGroup, OurKey, Ours, Resolver, VendorGroup, VendorGroups, by_ids, by_references, kind_name, kind_of, midnight,
    too_large,
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

/// Statement groups judged per chunk (a chunk's subscriptions and charges are read at once).
const CHUNK: usize = 2_000;

/// Matches import `import_id` with `tolerances` (the import's own when None), replacing its
/// findings. Refused (CONFLICT) when a finding of it was resolved.
pub async fn match_import(
    domain: &Domain,
    actor: &Actor,
    import_id: i64,
    tolerances: Option<Tolerances>,
) -> Result<reconciliation_import::Model> {
    Ok(match_with(domain, actor, import_id, tolerances, false).await?.0)
}

/// Matches import `import_id` unless it was matched (decided under its lock, so two
/// requests never both match it); the import, and whether it was matched here.
pub async fn match_unmatched(
    domain: &Domain,
    actor: &Actor,
    import_id: i64,
) -> Result<(reconciliation_import::Model, bool)> {
    match_with(domain, actor, import_id, None, true).await
}

async fn match_with(
    domain: &Domain,
    actor: &Actor,
    import_id: i64,
    tolerances: Option<Tolerances>,
    only_if_unmatched: bool,
) -> Result<(reconciliation_import::Model, bool)> {
    actor.require_operator()?;
    let import =
        reconciliation_import::Entity::find_by_id(import_id).one(&domain.db).await?.ok_or(Error::NotFound("import"))?;
    if only_if_unmatched && import.matched_at.is_some() {
        return Ok((import, false));
    }
    // Refused at once while its rows load (no lock is waited for); loaded by a request that
    // ended before publishing it: published now.
    let not_loaded = || Error::conflict("NOT_LOADED", "the statement's rows are not loaded: import the file again");
    if import.status == super::import::LOADING {
        return Err(not_loaded());
    }
    let (import, _) = super::import::publish_loaded(domain, actor, import).await.map_err(|error| match error {
        Error::Conflict { reason: "LOAD_IN_PROGRESS", .. } => not_loaded(),
        other => other,
    })?;
    let tolerances = check_tolerances(
        tolerances.unwrap_or(Tolerances { amount: import.amount_tolerance.0, quantity: import.quantity_tolerance.0 }),
    )?;
    let format = format_named(&import.format).ok_or_else(|| Error::internal(format!("format {}", import.format)))?;
    let around = Period::parse(&import.period)?;
    let next_run = Period::containing(domain.clock.now().date_naive()).max(around);
    let resolver = Resolver::load(domain, import.vendor_id).await?;
    // Judged and written a chunk at a time, in one transaction.
    let Some(mut out) = Findings::begin(domain, &import, only_if_unmatched).await? else {
        let import = reconciliation_import::Entity::find_by_id(import_id).one(&domain.db).await?;
        return Ok((import.ok_or(Error::NotFound("import"))?, false));
    };
    // Each (subscription, cycle, kind) is claimed once: by the vendor's id, else by tenant and
    // SKU (the first group in the statement's order).
    let mut claimed: HashSet<OurKey> = HashSet::new();
    let mut groups = VendorGroups::new(import.id);
    let mut took = Took::default();
    loop {
        let clock = std::time::Instant::now();
        let chunk = groups.next_chunk(domain, CHUNK).await?;
        took.rows += clock.elapsed();
        if chunk.is_empty() {
            break;
        }
        let clock = std::time::Instant::now();
        let matches = resolve(domain, &import, &resolver, &chunk, &mut claimed).await?;
        took.subscriptions += clock.elapsed();
        let clock = std::time::Instant::now();
        // The cycles this chunk's rows end (a three-year upfront cycle too); the subscriptions
        // bound what is read.
        let lo = chunk.iter().map(|g| g.last_day).min().unwrap_or(around.start);
        let hi = chunk.iter().map(|g| g.last_day).max().unwrap_or(around.start);
        let ids: Vec<i64> = matches.iter().flatten().map(|(s, _)| s.id).collect::<BTreeSet<_>>().into_iter().collect();
        let mut ours = our_groups(domain, &ids, &import.period, Some((lo, hi))).await?;
        took.charges += clock.elapsed();
        let clock = std::time::Instant::now();
        // Lag is not leakage: where the statement is above what we charged, what the next
        // run bills (planned, written nowhere yet) counts as billed.
        let short: BTreeSet<i64> = chunk
            .iter()
            .zip(&matches)
            .filter_map(|(group, found)| {
                let id = found.as_ref()?.0.id;
                let side = ours.get(&(id, group.last_day, group.usage)).map(|o| &o.side);
                let judgement = judge_charged(format, &group.side, Some(""), side, tolerances);
                (judgement.category != Category::Matched).then_some(id)
            })
            .collect();
        let currencies: HashMap<i64, &str> =
            matches.iter().flatten().map(|(s, _)| (s.id, s.currency.as_str())).collect();
        let short: Vec<i64> = short.into_iter().collect();
        // Usage is billed in arrears: a cycle's usage by the run of the month after it, so a
        // chunk with usage of the current month looks at that run (whose plan catches up
        // whatever earlier runs did not bill: the same lines for every other cycle).
        let run =
            chunk.iter().filter(|g| g.usage).map(|g| super::sides::usage_run(g.last_day)).fold(next_run, Period::max);
        for (id, lines) in crate::domain::billing::pending_charges(domain, &short, run).await? {
            let Some(currency) = currencies.get(&id) else { continue };
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
                let group = add_line(&mut ours, id, currency, line)?;
                group.side.pending = group.side.pending.checked_add(planned.amount.1).ok_or_else(too_large)?;
            }
        }
        took.lag += clock.elapsed();
        let clock = std::time::Instant::now();
        for (group, matched) in chunk.iter().zip(&matches) {
            let our = matched.as_ref().and_then(|(s, _)| ours.remove(&(s.id, group.last_day, group.usage)));
            let judgement = judge_charged(
                format,
                &group.side,
                matched.as_ref().map(|(_, how)| how.as_str()),
                our.as_ref().map(|o| &o.side),
                tolerances,
            );
            out.push(finding(&import, group, matched.as_ref().map(|(s, _)| s), our.as_ref(), judgement)).await?;
        }
        took.judged += clock.elapsed();
    }
    // Cycles a run of the period charged that no statement of the vendor charged: a light
    // pass over the period's charges finds the subscriptions with one unclaimed, and only
    // theirs are read whole.
    let clock = std::time::Instant::now();
    let mut after = 0;
    let mut done: HashSet<i64> = HashSet::new();
    loop {
        let (last, keys) = charged_in_period(domain, import.vendor_id, &import.period, after).await?;
        let Some(last) = last else { break };
        after = last;
        let ids: Vec<i64> = keys
            .iter()
            .filter(|key| !claimed.contains(key))
            .map(|key| key.0)
            .filter(|id| !done.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            continue;
        }
        done.extend(ids.iter().copied());
        let subscriptions = by_ids(domain, import.vendor_id, &ids).await?;
        let elsewhere = cycles_charged(domain, &import, &ids, true).await?;
        let mut uncharged: Vec<(OurKey, OurGroup)> = our_groups(domain, &ids, &import.period, None)
            .await?
            .into_iter()
            .filter(|(key, group)| group.in_period && !claimed.contains(key) && !elsewhere.contains(key))
            .collect();
        uncharged.sort_by_key(|(key, _)| *key);
        for ((subscription_id, last_day, usage), group) in uncharged {
            let Some(s) = subscriptions.get(&subscription_id) else { continue };
            let provisioned = s.vendor_reference.is_some();
            let Some(judgement) = judge_uncharged(format, kind_of(usage), &group.side, provisioned) else { continue };
            out.push(uncharged_finding(&import, s, (last_day, usage), &group, judgement)).await?;
        }
    }
    took.uncharged = clock.elapsed();
    tracing::info!(
        import = import.id,
        findings = out.count,
        rows_ms = took.rows.as_millis(),
        subscriptions_ms = took.subscriptions.as_millis(),
        charges_ms = took.charges.as_millis(),
        lag_ms = took.lag.as_millis(),
        judged_ms = (took.judged.saturating_sub(out.writing)).as_millis(),
        written_ms = out.writing.as_millis(),
        uncharged_ms = took.uncharged.as_millis(),
        "statement matched"
    );
    Ok((out.finish(actor, import, tolerances).await?, true))
}

/// Where matching spent its time (logged: what to look at when an import is slow).
#[derive(Default)]
struct Took {
    rows: std::time::Duration,
    subscriptions: std::time::Duration,
    charges: std::time::Duration,
    lag: std::time::Duration,
    judged: std::time::Duration,
    uncharged: std::time::Duration,
}

/// The subscription each group of a chunk is of (with how it was matched), claiming each
/// (subscription, cycle, kind) once.
async fn resolve(
    domain: &Domain,
    import: &reconciliation_import::Model,
    resolver: &Resolver,
    chunk: &[VendorGroup],
    claimed: &mut HashSet<OurKey>,
) -> Result<Vec<Option<(Ours, String)>>> {
    let references: Vec<&str> =
        chunk.iter().map(|g| g.reference.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let by_reference = by_references(domain, import.vendor_id, &references).await?;
    let unresolved: Vec<(usize, &VendorGroup)> =
        chunk.iter().enumerate().filter(|(_, g)| !by_reference.contains_key(&g.reference)).collect();
    let mut fallback = if unresolved.is_empty() {
        HashMap::new()
    } else {
        resolver.by_tenant_and_sku(domain, import, &unresolved).await?
    };
    let mut matches = Vec::with_capacity(chunk.len());
    for (index, group) in chunk.iter().enumerate() {
        let found = match by_reference.get(&group.reference) {
            Some(s) => Some((s.clone(), "matched by the vendor's subscription id".to_owned())),
            None => fallback.remove(&index),
        };
        matches.push(found.filter(|(s, _)| claimed.insert((s.id, group.last_day, group.usage))));
    }
    Ok(matches)
}

fn finding(
    import: &reconciliation_import::Model,
    group: &VendorGroup,
    subscription: Option<&Ours>,
    ours: Option<&OurGroup>,
    judgement: Judgement,
) -> reconciliation_finding::ActiveModel {
    let side = &group.side;
    let group_key = format!("v:{}|{}|{}", group.reference, group.last_day, kind_name(group.usage));
    let mut model = new_finding(
        import,
        group_key,
        judgement,
        subscription,
        (side.first_day, group.last_day),
        group.usage,
        ours.map(|o| &o.side),
    );
    model.subscription_reference = Set(group.reference.clone());
    model.customer_external_id = Set(group.tenant.clone());
    model.sku = Set(group.sku.clone());
    model.vendor_rows = Set(i32::try_from(side.rows).unwrap_or(i32::MAX));
    model.currency = Set(side.currency.clone());
    model.pricing_currency = Set(side.pricing_currency.clone());
    model.exchange_rate = Set(DbDecimal(side.rate()));
    model.vendor_amount = Set(DbDecimal(side.amount));
    model.vendor_quantity = Set(Some(DbDecimal(side.quantity)));
    model
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
    /// Time spent writing (logged).
    writing: std::time::Duration,
}

impl<'d> Findings<'d> {
    /// Refused (CONFLICT) when a finding of the import was resolved. None, with
    /// `only_if_unmatched`, when it was matched (meanwhile).
    async fn begin(
        domain: &'d Domain,
        import: &reconciliation_import::Model,
        only_if_unmatched: bool,
    ) -> Result<Option<Self>> {
        let w = Write::begin(domain).await?;
        let locked = super::resolution::lock_import(&w, import.id).await?;
        if only_if_unmatched && locked.is_some_and(|i| i.matched_at.is_some()) {
            w.rollback().await;
            return Ok(None);
        }
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
        Ok(Some(Self { w, batch: Vec::with_capacity(BATCH), count: 0, writing: std::time::Duration::ZERO }))
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
            let clock = std::time::Instant::now();
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            reconciliation_finding::Entity::insert_many(batch).exec(self.w.db()).await?;
            self.writing += clock.elapsed();
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
