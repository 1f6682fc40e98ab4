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
    let (router, mut doc) = OpenApiRouter::with_openapi(AdminDoc::openapi())
        .merge(ops::router())
        .nest("/admin/v1", admin::router())
        .split_for_parts();
    let admin_errors = [
        ("401", "No valid admin token"),
        ("403", "The token's role does not allow this"),
        ("405", "The route does not take this method"),
        ("408", "The request took longer than the server allows"),
        ("415", "The body is not JSON"),
        ("500", "A fault in Brevet; the detail is in its log"),
        (
            "503",
            "The store is busy or unreachable; retry (Retry-After)",
        ),
    ];
    add_error_responses(&mut doc, "/admin/", "AdminErrorBody", &admin_errors);
    close_tagged_unions(&mut doc, &["ReviewRequest", "Challenge"]);
    (router, doc)
}

/// utoipa does not carry `deny_unknown_fields` into the members of internally tagged enums; the
/// server refuses unknown fields there, so the document says so too.
fn close_tagged_unions(doc: &mut OpenApiDoc, names: &[&str]) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for name in names {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(*name) {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(object)) = item {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
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
    let wallet_errors = [
        ("403", "No accepted client certificate (forbidden), or another issuer's id (permissionDenied)"),
        ("405", "Wallet methods are called with POST"),
        ("408", "The request took longer than the server allows"),
        ("413", "The body is larger than http.body_limit_bytes"),
        ("415", "The body is not JSON"),
        ("500", "A fault in Brevet: ErrorResponse without a member"),
        ("503", "A passing condition (contention, store or key unavailable): retry after Retry-After; ErrorResponse without a member"),
    ];
    add_error_responses(&mut doc, "/v1/vdc/", "ErrorResponse", &wallet_errors);
    single_member_evidence(&mut doc);
    (router, doc)
}

/// Each `ProofingEvidence` item is an object with exactly one member, naming its kind.
fn single_member_evidence(doc: &mut OpenApiDoc) {
    use utoipa::openapi::schema::{ArrayItems, Schema};
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(request))) = components.schemas.get_mut("ProofUserRequest")
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Array(evidence))) = request.properties.get_mut("evidence") {
        if let ArrayItems::RefOrSchema(item) = &mut evidence.items {
            if let RefOr::T(Schema::Object(object)) = item.as_mut() {
                object.min_properties = Some(1);
                object.max_properties = Some(1);
            }
        }
    }
}

/// Documents, on every operation under `prefix`, the error answers every route of the surface can
/// give (authentication, transport limits, server faults), where the operation does not already.
fn add_error_responses(doc: &mut OpenApiDoc, prefix: &str, schema: &str, errors: &[(&str, &str)]) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with(prefix) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in errors {
                operation
                    .responses
                    .responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name(schema)))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
            }
        }
    }
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
