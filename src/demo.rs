//! The demo data set: a realistic small marketplace, loaded through the domain's own write
//! operations (so it is validated and audited like any other data).
//!
//! Three vendors (Microsoft, Adobe, Acronis) with 38 products and 228 offers over every
//! term and billing frequency, priced in USD and EUR; two tiers; three resellers; 24
//! customers; and one user per role, all with the password [`DEMO_PASSWORD`]:
//! `operator@switchyard.demo`, `vendor@microsoft.demo`, `reseller@northwind.demo`,
//! `customer@alpine.demo`.

use entity::enums::{BillingFrequency, ConnectorKind, Role, Term};
use entity::vendor;
use rust_decimal::Decimal;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::domain::catalog::{self, NewOffer, NewPricePoint, NewProduct, NewVendor};
use crate::domain::customers::{self, NewCustomer, NewRetailPrice, VendorAccount};
use crate::domain::ids::{OfferId, ProductId, TierId, VendorId};
use crate::domain::resellers::{self, NewReseller};
use crate::domain::{Actor, Domain, Result, users};

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "switchyard-demo";

/// Every (term, billing frequency) an offer is sold with, and its price factor against the
/// monthly list price: prices are per unit per billing period (a month, a year, or the term).
const PLANS: [(Term, BillingFrequency, i64, u32); 6] = [
    // (term, frequency, factor numerator, factor scale): P1M carries a 20 % premium.
    (Term::P1m, BillingFrequency::Monthly, 12, 1),
    (Term::P1y, BillingFrequency::Monthly, 1, 0),
    (Term::P1y, BillingFrequency::Annual, 12, 0),
    (Term::P1y, BillingFrequency::Upfront, 12, 0),
    (Term::P3y, BillingFrequency::Annual, 12, 0),
    (Term::P3y, BillingFrequency::Upfront, 36, 0),
];

struct DemoVendor {
    code: &'static str,
    name: &'static str,
    sku_prefix: &'static str,
    unit: &'static str,
    /// (product name, monthly list price in USD cents, usage meter)
    products: &'static [(&'static str, i64, Option<&'static str>)],
}

const VENDORS: [DemoVendor; 3] = [
    DemoVendor {
        code: "microsoft",
        name: "Microsoft",
        sku_prefix: "MS",
        unit: "license",
        products: &[
            ("Microsoft 365 Business Basic", 600, None),
            ("Microsoft 365 Business Standard", 1250, None),
            ("Microsoft 365 Business Premium", 2200, None),
            ("Microsoft 365 E3", 3600, None),
            ("Microsoft 365 E5", 5700, None),
            ("Office 365 E1", 1000, None),
            ("Office 365 E3", 2300, None),
            ("Exchange Online (Plan 1)", 400, None),
            ("Exchange Online (Plan 2)", 800, None),
            ("Microsoft Teams Essentials", 400, None),
            ("Power BI Pro", 1400, None),
            ("Visio Plan 2", 1500, None),
            ("Project Plan 3", 3000, None),
            ("Microsoft Defender for Endpoint P2", 520, None),
            ("Microsoft Entra ID P1", 600, None),
            ("Microsoft Intune Plan 1", 800, None),
            ("Microsoft 365 Copilot", 3000, None),
            ("Azure plan", 0, Some("azure-consumption")),
        ],
    },
    DemoVendor {
        code: "adobe",
        name: "Adobe",
        sku_prefix: "ADB",
        unit: "seat",
        products: &[
            ("Acrobat Pro for teams", 2399, None),
            ("Acrobat Standard for teams", 1499, None),
            ("Creative Cloud All Apps for teams", 8999, None),
            ("Photoshop for teams", 3799, None),
            ("Illustrator for teams", 3799, None),
            ("InDesign for teams", 3799, None),
            ("Premiere Pro for teams", 3799, None),
            ("After Effects for teams", 3799, None),
            ("Lightroom for teams", 1499, None),
            ("Adobe Express for teams", 999, None),
            ("Substance 3D Collection for teams", 5999, None),
            ("Adobe Stock for teams", 2999, Some("stock-assets")),
        ],
    },
    DemoVendor {
        code: "acronis",
        name: "Acronis",
        sku_prefix: "ACR",
        unit: "workload",
        products: &[
            ("Cyber Protect Standard - Workstation", 425, None),
            ("Cyber Protect Advanced - Workstation", 690, None),
            ("Cyber Protect Standard - Server", 2900, None),
            ("Cyber Protect Advanced - Server", 4200, None),
            ("Cyber Protect Standard - Virtual Machine", 1100, None),
            ("Cyber Protect Cloud Storage", 5, Some("storage-gb")),
            ("Cyber Files Cloud", 310, None),
            ("Cyber Protect Home Office", 550, None),
        ],
    },
];

/// Loads the demo data set when the database has no vendors; whether it loaded anything.
pub async fn seed_if_empty(domain: &Domain) -> Result<bool> {
    if vendor::Entity::find().count(&domain.db).await? > 0 {
        return Ok(false);
    }
    seed(domain).await?;
    Ok(true)
}

async fn seed(domain: &Domain) -> Result<()> {
    let system = Actor::system();
    let mut vendor_ids = Vec::new();
    let mut first_offers = Vec::new();
    for demo in &VENDORS {
        let vendor = catalog::create_vendor(
            domain,
            &system,
            NewVendor {
                code: demo.code.into(),
                name: demo.name.into(),
                connector_kind: ConnectorKind::Sandbox,
                connector_settings: Some(json!({"latencyMs": 200, "failureRate": "0.02"})),
            },
        )
        .await?;
        vendor_ids.push(vendor.id);
        for (index, (name, cents, meter)) in demo.products.iter().enumerate() {
            let product = catalog::create_product(
                domain,
                &system,
                NewProduct {
                    vendor_id: VendorId::new(vendor.id),
                    name: (*name).into(),
                    description: Some(format!("{name} by {}", demo.name)),
                },
            )
            .await?;
            for (term, frequency, factor, scale) in PLANS {
                let sku =
                    format!("{}-{:03}-{}-{}", demo.sku_prefix, index + 1, term_code(term), frequency_code(frequency));
                let unit = if meter.is_some() { "subscription" } else { demo.unit };
                let offer = catalog::create_offer(
                    domain,
                    &system,
                    NewOffer {
                        product_id: ProductId::new(product.id),
                        sku,
                        name: format!("{name} ({}, billed {})", term_label(term), frequency_label(frequency)),
                        unit: unit.into(),
                        term,
                        billing_frequency: frequency,
                        min_quantity: 1,
                        max_quantity: if meter.is_some() { 1 } else { 10_000 },
                        usage_meter: meter.map(str::to_owned),
                    },
                )
                .await?;
                if first_offers.len() < 6 {
                    first_offers.push(offer.id);
                }
                let list_usd = Decimal::new(*cents, 2) * Decimal::new(factor, scale);
                for (currency, rate) in [("USD", Decimal::ONE), ("EUR", Decimal::new(92, 2))] {
                    let list_price = (list_usd * rate).round_dp(2);
                    let (usage_cost, usage_list) = match meter {
                        Some(_) => (Some(Decimal::new(85, 2) * rate), Some(Decimal::ONE * rate)),
                        None => (None, None),
                    };
                    catalog::add_price_point(
                        domain,
                        &system,
                        NewPricePoint {
                            offer_id: OfferId::new(offer.id),
                            currency: currency.into(),
                            cost: (list_price * Decimal::new(80, 2)).round_dp(4),
                            list_price,
                            usage_unit_cost: usage_cost,
                            usage_unit_list_price: usage_list,
                            effective_from: Some(demo_epoch()),
                        },
                    )
                    .await?;
                }
            }
        }
    }

    let gold = resellers::create_tier(domain, &system, "Gold", Decimal::new(10, 2)).await?;
    let silver = resellers::create_tier(domain, &system, "Silver", Decimal::new(15, 2)).await?;
    let resellers_spec = [
        ("Northwind IT", gold.id, "USD", "NWIT", "5120451"),
        ("Contoso Cloud Services", silver.id, "EUR", "CCS", "5233817"),
        ("Fabrikam Solutions", gold.id, "EUR", "FABR", "5309122"),
    ];
    let countries = [
        ("US", "0"),
        ("DE", "0.19"),
        ("FR", "0.20"),
        ("PL", "0.23"),
        ("NL", "0.21"),
        ("GB", "0.20"),
        ("AT", "0.20"),
        ("IE", "0.23"),
    ];
    let customer_names = [
        "Alpine Outfitters",
        "Blue Yonder Airlines",
        "Coho Winery",
        "Datum Corporation",
        "Fourth Coffee",
        "Graphic Design Institute",
        "Humongous Insurance",
        "Litware Inc.",
        "Lucerne Publishing",
        "Margie's Travel",
        "Northwind Traders",
        "Proseware Inc.",
        "Relecloud",
        "School of Fine Art",
        "Southridge Video",
        "Tailspin Toys",
        "Trey Research",
        "VanArsdel Ltd.",
        "Wide World Importers",
        "Wingtip Toys",
        "Woodgrove Bank",
        "Adventure Works Cycles",
        "Consolidated Messenger",
        "Contoso Pharmaceuticals",
    ];
    let mut first_customer = None;
    let mut first_reseller = None;
    for (r_index, (name, tier_id, currency, prefix, mpn)) in resellers_spec.into_iter().enumerate() {
        let reseller = resellers::create_reseller(
            domain,
            &system,
            NewReseller {
                name: name.into(),
                tier_id: TierId::new(tier_id),
                currency: currency.into(),
                external_partner_id: Some(mpn.into()),
                invoice_prefix: prefix.into(),
            },
        )
        .await?;
        first_reseller.get_or_insert(reseller.id);
        let as_reseller = Actor::from_role(None, Role::Reseller, Some(reseller.id))?;
        if r_index == 1 {
            customers::set_retail_markup(domain, &as_reseller, Some(Decimal::new(20, 2))).await?;
        }
        if r_index == 0 {
            for offer_id in &first_offers {
                customers::set_retail_price(
                    domain,
                    &as_reseller,
                    NewRetailPrice {
                        offer_id: OfferId::new(*offer_id),
                        currency: "USD".into(),
                        price: Decimal::new(999, 2),
                        effective_from: Some(demo_epoch()),
                    },
                )
                .await?;
            }
        }
        for c_index in 0..8 {
            let number = r_index * 8 + c_index;
            let (country, tax) = countries[(number + r_index) % countries.len()];
            let customer = customers::create_customer(
                domain,
                &as_reseller,
                NewCustomer {
                    reseller_id: None,
                    name: customer_names[number % customer_names.len()].into(),
                    country: country.into(),
                    currency: currency.into(),
                    tax_rate: tax.parse().unwrap_or_default(),
                    vendor_accounts: vendor_ids
                        .iter()
                        .map(|vendor_id| VendorAccount {
                            vendor_id: VendorId::new(*vendor_id),
                            external_id: demo_tenant_id(*vendor_id, number),
                        })
                        .collect(),
                },
            )
            .await?;
            first_customer.get_or_insert(customer.id);
        }
    }

    let users_spec = [
        ("operator@switchyard.demo", "Olivia Operator", Role::Operator, None),
        ("vendor@microsoft.demo", "Victor Vendor", Role::Vendor, vendor_ids.first().copied()),
        ("reseller@northwind.demo", "Rita Reseller", Role::Reseller, first_reseller),
        ("customer@alpine.demo", "Carl Customer", Role::Customer, first_customer),
    ];
    let hash = users::hash_password(DEMO_PASSWORD)?;
    for (email, display_name, role, organization_id) in users_spec {
        let user = users::NewUser { email, display_name, password_hash: hash.clone(), role, organization_id };
        users::create_user(domain, &system, user).await?;
    }
    Ok(())
}

/// When the demo prices take effect: the start of 2026.
fn demo_epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// A stable, tenant-id-shaped external id.
fn demo_tenant_id(vendor_id: i64, number: usize) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        0x5a1e_0000 + number,
        vendor_id,
        number,
        vendor_id,
        0x00c0_ffee_0000_u64 + number as u64
    )
}

fn term_code(term: Term) -> &'static str {
    match term {
        Term::P1m => "P1M",
        Term::P1y => "P1Y",
        Term::P3y => "P3Y",
    }
}

fn term_label(term: Term) -> &'static str {
    match term {
        Term::P1m => "1 month",
        Term::P1y => "1 year",
        Term::P3y => "3 years",
    }
}

fn frequency_code(frequency: BillingFrequency) -> &'static str {
    match frequency {
        BillingFrequency::Monthly => "M",
        BillingFrequency::Annual => "A",
        BillingFrequency::Upfront => "U",
    }
}

fn frequency_label(frequency: BillingFrequency) -> &'static str {
    match frequency {
        BillingFrequency::Monthly => "monthly",
        BillingFrequency::Annual => "annually",
        BillingFrequency::Upfront => "upfront",
    }
}
