//! Bearer-token authentication of admin requests.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::admin_token::{Role, TokenHash};
use crate::error::{AdminError, AdminErrorBody};
use crate::http::json::AdminJson;
use crate::http::AppState;
use crate::store::Actor;

/// The holder of a valid admin token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// The token's id.
    pub token_id: Uuid,
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

impl Principal {
    /// Fails with 403 unless this principal's role includes `required`.
    pub fn require(&self, required: Role) -> Result<(), AdminError> {
        if self.role.allows(required) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "this action needs the {} role",
                required.as_str()
            )))
        }
    }

    /// This principal as the actor of an audited change.
    pub fn actor(&self) -> Actor {
        Actor::Token {
            admin_token_id: self.token_id,
            name: self.name.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(AdminError::Unauthorized(
                "missing Authorization: Bearer <admin token> header",
            ))?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AdminError::Unauthorized(
                "Authorization header must be `Bearer <admin token>`",
            ))?;
        let token = crate::service::tokens::authenticate(state.store(), &TokenHash::of(presented))
            .await?
            .ok_or(AdminError::Unauthorized("unknown or revoked admin token"))?;
        tracing::debug!(admin.token = %token.name, "admin request authenticated");
        Ok(Principal {
            token_id: token.admin_token_id,
            name: token.name,
            role: token.role,
        })
    }
}

/// A principal whose role includes the viewer role, checked before the body is read (a request
/// of the wrong role is 403 whatever its body).
pub struct Viewer(pub Principal);
/// A principal whose role includes the operator role.
pub struct Operator(pub Principal);
/// A principal with the admin role.
pub struct Admin(pub Principal);

macro_rules! role_extractor {
    ($($name:ident => $role:expr),*) => {$(
        impl FromRequestParts<AppState> for $name {
            type Rejection = AdminError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, AdminError> {
                let principal = Principal::from_request_parts(parts, state).await?;
                principal.require($role)?;
                Ok(Self(principal))
            }
        }
    )*};
}
role_extractor!(Viewer => Role::Viewer, Operator => Role::Operator, Admin => Role::Admin);

/// `GET /admin/v1/whoami`: the token's own identity and role.
#[utoipa::path(
    get,
    path = "/whoami",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Principal),
        (status = 401, description = "No valid admin token", body = AdminErrorBody),
    )
)]
pub async fn get_whoami(principal: Principal) -> AdminJson<Principal> {
    AdminJson(principal)
}
