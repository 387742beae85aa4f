//! Audit bundles on the node's side: building one from the store ([`bundle::build`]).
//! Checking one offline (decode, verify, report, chart) is the deterministic crate's
//! (`tracechain_ledger::audit`), re-exported here under its old paths. docs/AUDIT.md.

pub mod bundle;

pub use tracechain_ledger::audit::{
    AuditError, BUNDLE_VERSION, MAX_BUNDLE_BYTES, MAX_BUNDLE_TXS, decode, report, svg, verify,
};

#[cfg(test)]
mod tests;
