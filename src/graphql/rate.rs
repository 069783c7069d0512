//! Charging a request's operations to its caller's rate-limit bucket (`crate::rate_limit`):
//! the HTTP layer admits a request for one token and puts a [`RateCharge`] in its data; each
//! operation costs a token as it is prepared (the first one's is the admission's: a batch of
//! invalid operations is not free) and, once validated, the rest of its complexity's cost.
//! One the bucket cannot pay is refused RATE_LIMITED with `retryAfter` — before it runs; one
//! dearer than the whole bucket BAD_USER_INPUT (no wait helps). The charge keeps the bucket's
//! last standing for the response's headers, and how many operations it refused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    refused: AtomicUsize,
}

/// Why an operation was not let run.
enum Refusal {
    /// Not enough tokens now: this many seconds until there are.
    Wait(u64),
    /// More tokens than the bucket holds.
    Never { cost: u32, capacity: u32 },
}

impl RateCharge {
    /// A request admitted for one token from `subject`'s bucket, leaving `standing`.
    pub fn new(limiter: Arc<Limiter>, subject: Subject, standing: Standing) -> Arc<Self> {
        Arc::new(Self {
            limiter,
            subject,
            credit: AtomicBool::new(true),
            last: Mutex::new(standing),
            refused: AtomicUsize::new(0),
        })
    }

    /// What the bucket had left after the request's last charge.
    pub fn standing(&self) -> Option<Standing> {
        self.last.lock().ok().map(|s| s.clone())
    }

    /// How many of the request's operations were refused for want of tokens.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Charges an operation its first token (the admission's, for the first one).
    fn enter(&self) -> Result<(), Refusal> {
        if self.credit.swap(false, Ordering::SeqCst) { Ok(()) } else { self.take(1, 1) }
    }

    /// Charges a validated operation of `complexity` the rest of its cost.
    fn validated(&self, complexity: usize) -> Result<(), Refusal> {
        let cost = cost_of(complexity);
        self.take(cost.saturating_sub(1), cost)
    }

    /// Takes `tokens` for an operation costing `cost` in all.
    fn take(&self, tokens: u32, cost: u32) -> Result<(), Refusal> {
        let capacity = self.last.lock().map_or(u32::MAX, |last| last.policy.tokens);
        if cost > capacity {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Refusal::Never { cost, capacity });
        }
        if tokens == 0 {
            return Ok(());
        }
        let Some(standing) = self.limiter.take(&self.subject, tokens) else { return Ok(()) };
        let retry_after = standing.retry_after;
        if let Ok(mut last) = self.last.lock() {
            *last = standing;
        }
        match retry_after {
            Some(seconds) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                Err(Refusal::Wait(seconds))
            }
            None => Ok(()),
        }
    }
}

impl Refusal {
    fn error(self) -> ServerError {
        match self {
            Self::Wait(seconds) => {
                let mut error = request_error(format!("rate limit: try again in {seconds} s"), "RATE_LIMITED");
                error.extensions.get_or_insert_with(Default::default).set("retryAfter", seconds);
                error
            }
            Self::Never { cost, capacity } => request_error(
                format!(
                    "this operation costs {cost} tokens, more than the limit allows ({capacity}); ask for less at once"
                ),
                "BAD_USER_INPUT",
            ),
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
            charge.enter().map_err(Refusal::error)?;
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(charge) = self.charge.get() {
            charge.validated(result.complexity).map_err(|refused| vec![refused.error()])?;
        }
        Ok(result)
    }
}
