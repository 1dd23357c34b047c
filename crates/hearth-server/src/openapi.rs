//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(title = "Hearth API", description = "Self-hosted AI workspace. Authenticate with `Authorization: Bearer <access token or API key>`."),
    paths(
        handlers::system::health, handlers::system::ready, handlers::system::metrics,
        handlers::auth::status, handlers::auth::register, handlers::auth::login, handlers::auth::refresh, handlers::auth::logout,
        handlers::me::get, handlers::me::change_password,
        handlers::api_keys::list, handlers::api_keys::create, handlers::api_keys::get, handlers::api_keys::delete,
        handlers::admin::list_users, handlers::admin::create_user, handlers::admin::update_user, handlers::admin::reset_password,
        handlers::admin::create_invite,
        handlers::providers::create, handlers::providers::list, handlers::providers::get, handlers::providers::update,
        handlers::providers::delete, handlers::providers::sync, handlers::providers::list_models,
        handlers::providers::update_model, handlers::providers::user_models,
        handlers::conversations::create, handlers::conversations::list, handlers::conversations::get,
        handlers::conversations::update, handlers::conversations::delete, handlers::conversations::export,
        handlers::conversations::send, handlers::conversations::regenerate, handlers::conversations::events,
        handlers::conversations::stop, handlers::conversations::approve, handlers::conversations::export_to_knowledge,
        handlers::admin::traces, handlers::admin::usage,
        handlers::knowledge::create, handlers::knowledge::list, handlers::knowledge::get,
        handlers::knowledge::update, handlers::knowledge::delete, handlers::knowledge::upload,
        handlers::knowledge::documents, handlers::knowledge::document, handlers::knowledge::delete_document,
        handlers::knowledge::retry, handlers::knowledge::search,
        handlers::memories::list, handlers::memories::create, handlers::memories::update, handlers::memories::delete,
    ),
    components(schemas(hearth_core::api::ErrorBody, hearth_core::chat::api::RunEvent)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
