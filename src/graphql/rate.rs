//! Charging a request's operations to its caller's rate-limit bucket (`crate::rate_limit`):
//! the HTTP layer admits a request for one token and puts a [`RateCharge`] in its data; each
//! operation, once validated, costs its complexity (the first one less the admission's
//! token), and one the bucket cannot pay is refused RATE_LIMITED with `retryAfter` — before
//! it runs. The charge keeps the bucket's last standing for the response's headers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextValidation};
use async_graphql::{Request, ServerError, ServerResult, ValidationResult};

use super::errors::request_error;
use crate::rate_limit::{Limiter, Standing, Subject, cost_of};

/// Whose bucket pays for a request's operations, and what it had left.
pub struct RateCharge {
    limiter: Arc<Limiter>,
    subject: Subject,
    /// The admission's token, owed back to the first operation's cost.
    credit: AtomicBool,
    last: Mutex<Standing>,
    refused: AtomicBool,
}

impl RateCharge {
    /// A request admitted for one token from `subject`'s bucket, leaving `standing`.
    pub fn new(limiter: Arc<Limiter>, subject: Subject, standing: Standing) -> Arc<Self> {
        Arc::new(Self {
            limiter,
            subject,
            credit: AtomicBool::new(true),
            last: Mutex::new(standing),
            refused: AtomicBool::new(false),
        })
    }

    /// What the bucket had left after the request's last charge.
    pub fn standing(&self) -> Option<Standing> {
        self.last.lock().ok().map(|s| s.clone())
    }

    /// Whether an operation of the request was refused for want of tokens.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }

    /// Charges an operation of `complexity`: Err(retry after, seconds) when refused.
    fn charge(&self, complexity: usize) -> Result<(), u64> {
        let credit = u32::from(self.credit.swap(false, Ordering::SeqCst));
        let cost = cost_of(complexity).saturating_sub(credit);
        if cost == 0 {
            return Ok(());
        }
        let Some(standing) = self.limiter.take(&self.subject, cost) else { return Ok(()) };
        let retry_after = standing.retry_after;
        if let Ok(mut last) = self.last.lock() {
            *last = standing;
        }
        match retry_after {
            Some(seconds) => {
                self.refused.store(true, Ordering::SeqCst);
                Err(seconds)
            }
            None => Ok(()),
        }
    }
}

/// Charges each validated operation to the request's [`RateCharge`], if it has one.
pub struct RateCharges;

impl ExtensionFactory for RateCharges {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Charging::default())
    }
}

#[derive(Default)]
struct Charging {
    charge: OnceLock<Arc<RateCharge>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Charging {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(charge) = request
            .data
            .get(&std::any::TypeId::of::<Arc<RateCharge>>())
            .and_then(|d| d.downcast_ref::<Arc<RateCharge>>())
        {
            let _ = self.charge.set(Arc::clone(charge));
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(charge) = self.charge.get()
            && let Err(seconds) = charge.charge(result.complexity)
        {
            let cost = cost_of(result.complexity);
            let mut error = request_error(
                format!("rate limit: this operation costs {cost} tokens; try again in {seconds} s"),
                "RATE_LIMITED",
            );
            error.extensions.get_or_insert_with(Default::default).set("retryAfter", seconds);
            return Err(vec![error]);
        }
        Ok(result)
    }
}
