//! The OpenAPI documents of the two API surfaces, built from the same routers that serve them
//! (utoipa-axum registers a route and its description together, so neither can exist without the
//! other). `openapi/admin.json` and `openapi/wallet.json` are these documents, checked in; a test
//! fails when they drift from the code.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::{admin, ops, wallet, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Brevet admin API",
        description = "REST API for issuer staff, and the operations endpoints. Admin calls carry \
                       `Authorization: Bearer <admin token>`.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    tags((name = "admin", description = "Issuer staff"), (name = "ops", description = "Health and metrics"))
)]
struct AdminDoc;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Brevet issuer-hosted Wallet API",
        description = "The issuer-hosted methods of Google Wallet's Digital Credentials Provisioning \
                       API as Brevet serves them. Errors answer with ErrorResponse.",
        version = "0.1"
    ),
    tags((name = "wallet", description = "Called by Google's servers"))
)]
struct WalletDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The admin and operations routes, and their document.
pub fn admin_surface() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(AdminDoc::openapi())
        .merge(ops::router())
        .nest("/admin/v1", admin::router())
        .split_for_parts()
}

/// The admin routes alone (for a listener of the admin surface).
pub fn admin_routes() -> Router<AppState> {
    OpenApiRouter::new()
        .nest("/admin/v1", admin::router())
        .split_for_parts()
        .0
}

/// The operations routes alone (for a listener of the ops surface).
pub fn ops_routes() -> Router<AppState> {
    ops::router().split_for_parts().0
}

/// The Wallet routes, and their document.
pub fn wallet_surface() -> (Router<AppState>, OpenApiDoc) {
    let (router, mut doc) = OpenApiRouter::with_openapi(WalletDoc::openapi())
        .nest("/v1/vdc", wallet::router())
        .split_for_parts();
    mark_unconfirmed(&mut doc);
    (router, doc)
}

/// Marks the schemas whose fields are our assumption (`x-brevet-unconfirmed`, spec §11).
fn mark_unconfirmed(doc: &mut OpenApiDoc) {
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for name in crate::protocol::wallet::UNCONFIRMED_SCHEMAS {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.extensions = Some(
                ExtensionsBuilder::new()
                    .add("x-brevet-unconfirmed", true)
                    .build(),
            );
        }
    }
}

/// A document as checked in: pretty JSON with a final newline.
pub fn render(doc: &OpenApiDoc) -> String {
    let mut json = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
