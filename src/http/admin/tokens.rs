//! `/admin/v1/tokens`: admin tokens (admin role only). The clear token is shown once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::request_id::RequestId;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Admin;
use crate::domain::admin_token::{Role, TokenSecret};
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::AdminJson;
use crate::http::AppState;
use crate::service::tokens::{self, TokenRevocation};
use crate::store::{AdminToken, NewAdminToken};

/// A token as the API shows it (never its value or hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    token_id: Uuid,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<AdminToken> for TokenView {
    fn from(token: AdminToken) -> Self {
        Self {
            token_id: token.admin_token_id,
            name: token.name,
            role: token.role,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// Response of `GET /admin/v1/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

/// `GET /admin/v1/tokens`: every token, oldest first (admin role).
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TokenList),
        (status = 401, description = "No valid admin token", body = AdminErrorBody),
        (status = 403, description = "The token is not an admin's", body = AdminErrorBody),
    )
)]
pub async fn list_tokens(
    _: Admin,
    State(state): State<AppState>,
) -> Result<AdminJson<TokenList>, AdminError> {
    let tokens = crate::store::tokens::list(&mut state.store().db()).await?;
    Ok(AdminJson(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Body of `POST /admin/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label unique among tokens: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    role: Role,
}

/// Response of `POST /admin/v1/tokens`: the only time the token's value is shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    view: TokenView,
    token: String,
}

/// Longest accepted token name.
const MAX_NAME_CHARS: usize = 100;

/// `POST /admin/v1/tokens`: create a token (admin role); its value is in this response only.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 400, description = "Malformed body or bad name", body = AdminErrorBody),
        (status = 401, description = "No valid admin token", body = AdminErrorBody),
        (status = 403, description = "The token is not an admin's", body = AdminErrorBody),
        (status = 409, description = "A token with this name exists", body = AdminErrorBody),
        (status = 413, description = "Body over the limit", body = AdminErrorBody),
    )
)]
pub async fn create_token(
    Admin(principal): Admin,
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    AdminJson(body): AdminJson<CreateToken>,
) -> Result<(StatusCode, AdminJson<CreatedToken>), AdminError> {
    let actor = principal.actor();
    let (created, secret) = issue(
        &state,
        &body.name,
        body.role,
        super::provenance(&actor, &request_id),
    )
    .await?;
    let view = TokenView::from(created);
    Ok((
        StatusCode::CREATED,
        AdminJson(CreatedToken {
            view,
            token: secret.expose().to_owned(),
        }),
    ))
}

/// Makes a token named `name` with `role`, audited; returns it and its secret (shown once).
pub(crate) async fn issue(
    state: &AppState,
    name: &str,
    role: Role,
    by: crate::store::Provenance<'_>,
) -> Result<(crate::store::AdminToken, TokenSecret), AdminError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AdminError::BadRequest(format!(
            "name must be 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    let secret = TokenSecret::generate();
    let new_token = NewAdminToken {
        name: name.to_owned(),
        role,
        token_hash: secret.hash(),
    };
    let created = tokens::create(state.store(), &new_token, by)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("a token named {name:?} already exists"))
            }
            other => other.into(),
        })?;
    tracing::info!(admin.token = %created.name, admin.role = %created.role, "admin token created");
    Ok((created, secret))
}

/// `DELETE /admin/v1/tokens/{token_id}`: revoke a token (admin role). The last admin token
/// cannot be revoked, so that Brevet always has an administrator.
#[utoipa::path(
    delete,
    path = "/tokens/{token_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("token_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked; it authenticates nobody from now on"),
        (status = 403, description = "The token is not an admin's", body = AdminErrorBody),
        (status = 404, description = "No unrevoked token with this id", body = AdminErrorBody),
        (status = 409, description = "It is the last admin token", body = AdminErrorBody),
    )
)]
pub async fn revoke_token(
    Admin(principal): Admin,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Result<StatusCode, AdminError> {
    let actor = principal.actor();
    withdraw(&state, &id, super::provenance(&actor, &request_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the token with id `raw`, audited; refuses the last admin token.
pub(crate) async fn withdraw(
    state: &AppState,
    raw: &str,
    by: crate::store::Provenance<'_>,
) -> Result<(), AdminError> {
    let not_found = || AdminError::NotFound("no unrevoked token with this id".into());
    let id = Uuid::parse_str(raw).map_err(|_| not_found())?;
    match tokens::revoke(state.store(), id, by).await? {
        TokenRevocation::Revoked => {
            tracing::info!(admin.token_id = %id, "admin token revoked");
            Ok(())
        }
        TokenRevocation::NotFound => Err(not_found()),
        TokenRevocation::LastAdmin => Err(AdminError::Conflict(
            "this is the last admin token; create another admin token before revoking it".into(),
        )),
    }
}
