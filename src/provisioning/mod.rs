//! The provisioning engine's moving parts: vendor connectors and the workers that run
//! queued jobs through them. The queue itself (claim, complete, retry) is
//! `domain::provisioning`.

pub mod connectors;
pub mod worker;
