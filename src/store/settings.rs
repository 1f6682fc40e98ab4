//! Values that belong to the deployment as a whole (every replica reads the same one), made once
//! by whichever replica needs them first.

use super::sql::{query, Exec};
use super::StoreError;

/// The value of setting `name`; when there is none yet, `initial` is stored and returned. Two
/// replicas racing here both get the one that was stored first.
pub async fn get_or_init(
    ex: &mut impl Exec,
    name: &str,
    initial: &str,
) -> Result<String, StoreError> {
    ex.execute(
        query("insert into deployment_settings (name, value) values ($1, $2) on conflict (name) do nothing")
            .bind(name)
            .bind(initial),
    )
    .await?;
    let row = ex
        .fetch_optional(query("select value from deployment_settings where name = $1").bind(name))
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("deployment setting {name} vanished")))?;
    row.text("value")
}
