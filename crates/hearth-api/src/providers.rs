//! Model providers and their models: what admins configure and what users pick from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ModelId, ProviderId};

/// Longest provider, model or alias name.
pub const NAME_MAX: usize = 100;
/// Most aliases of one model.
pub const ALIASES_MAX: usize = 20;

/// The wire format of a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible API.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Hearth's built-in models.
    Local,
}

impl ProviderKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
        }
    }

    /// Parses the stored form; anything unknown is `openai`.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "anthropic" => ProviderKind::Anthropic,
            "local" => ProviderKind::Local,
            _ => ProviderKind::Openai,
        }
    }
}

/// `POST /api/v1/admin/providers`.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderRequest {
    #[schema(schema_with = creatable_kind)]
    pub kind: ProviderKind,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Required for `openai`; `anthropic` defaults to the public API.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*https?://[^/\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for CreateProviderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProviderRequest")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `PATCH /api/v1/admin/providers/{id}`; absent fields stay, `api_key: ""` removes the key.
#[derive(Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProviderRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*https?://[^/\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for UpdateProviderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateProviderRequest")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// A provider as an admin sees it (never the key itself).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub name: String,
    pub base_url: Option<String>,
    pub has_api_key: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A model's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub context_length: Option<i64>,
    /// Makes embeddings (OpenAI-compatible providers' `/embeddings`): knowledge bases and
    /// memories can use it; chat cannot.
    pub embeddings: bool,
    /// Length of its vectors, once learnt from a first call.
    pub embedding_dimensions: Option<i64>,
}

/// A model as an admin sees it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ModelId,
    #[schema(value_type = String, format = Uuid)]
    pub provider_id: ProviderId,
    /// What users pick and what `/v1` calls it.
    pub name: String,
    /// What the provider calls it.
    pub upstream_id: String,
    pub display_name: String,
    pub aliases: Vec<String>,
    pub capabilities: Capabilities,
    /// US dollars per million input tokens.
    pub input_price_per_mtok: Option<f64>,
    /// US dollars per million output tokens.
    pub output_price_per_mtok: Option<f64>,
    pub enabled: bool,
}

/// A model as a user sees it (`GET /api/v1/models`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserModel {
    pub name: String,
    pub display_name: String,
    pub aliases: Vec<String>,
    pub capabilities: Capabilities,
    pub provider: String,
}

/// `PATCH /api/v1/admin/models/{id}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModelRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = alias_list)]
    pub aliases: Option<Vec<String>>,
    #[serde(default)]
    pub supports_streaming: Option<bool>,
    #[serde(default)]
    pub supports_tools: Option<bool>,
    #[serde(default)]
    pub supports_vision: Option<bool>,
    #[serde(default)]
    pub supports_embeddings: Option<bool>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub context_length: Option<Option<i64>>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub input_price_per_mtok: Option<Option<f64>>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<f64>, minimum = 0)]
    pub output_price_per_mtok: Option<Option<f64>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The schema of `aliases`: single-line names, at most [`ALIASES_MAX`].
fn alias_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(NAME_MAX))
                .pattern(Some(crate::LINE_PATTERN)),
        )
        .max_items(Some(ALIASES_MAX))
        .build()
}

/// The kinds an admin can create (`local` is made at start from the models folder).
fn creatable_kind() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["openai", "anthropic"]))
        .build()
}

/// A field that is present (with a value or `null`) becomes `Some`; absent stays `None`.
fn present<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
