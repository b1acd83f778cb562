//! Rules about tasks shared by the backends.

use crate::{Result, StoreError};
use aviso_core::ops::Task;

/// A task created again with an idempotency key the owner already used:
/// the earlier task if it is the same operation, `Conflict` otherwise.
pub(crate) fn repeat(earlier: Task, asked: &Task) -> Result<(Task, bool)> {
    if earlier.endpoint == asked.endpoint && earlier.spec == asked.spec {
        Ok((earlier, false))
    } else {
        Err(StoreError::Conflict(format!(
            "this Idempotency-Key was already used for another operation (task {})",
            earlier.id
        )))
    }
}
