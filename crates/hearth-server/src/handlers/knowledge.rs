//! Knowledge bases, their documents (multipart uploads streamed to disk) and search.

use axum::extract::{FromRequest as _, Multipart, Path, State};
use axum::http::StatusCode;
use hearth_core::ids::{DocumentId, KnowledgeBaseId};
use hearth_core::knowledge::{
    CreateKnowledgeBase, DocumentView, KnowledgeBaseView, SearchRequest, SearchResults,
    UpdateKnowledgeBase, UploadResult,
};
use hearth_core::CoreError;

use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, Json};
use crate::state::AppState;

/// Largest `metadata` part of an upload.
const MAX_METADATA_PART: usize = 8 * 1024;

fn kb_id(raw: &str) -> Result<KnowledgeBaseId, ApiError> {
    path_id(raw, "knowledge base")
}

fn doc_id(raw: &str) -> Result<DocumentId, ApiError> {
    path_id(raw, "document")
}

/// Create a knowledge base.
#[utoipa::path(post, path = "/api/v1/knowledge-bases", tag = "knowledge", request_body = CreateKnowledgeBase,
    responses((status = 201, body = KnowledgeBaseView), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<CreateKnowledgeBase>,
) -> Result<(StatusCode, axum::Json<KnowledgeBaseView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.knowledge.create(&principal, req).await?),
    ))
}

/// The caller's knowledge bases.
#[utoipa::path(get, path = "/api/v1/knowledge-bases", tag = "knowledge",
    responses((status = 200, body = [KnowledgeBaseView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<KnowledgeBaseView>>, ApiError> {
    Ok(axum::Json(state.knowledge.list(&principal).await?))
}

/// One knowledge base.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{id}", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = KnowledgeBaseView), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<KnowledgeBaseView>, ApiError> {
    Ok(axum::Json(
        state.knowledge.get(&principal, kb_id(&id)?).await?,
    ))
}

/// Rename a knowledge base or change its description.
#[utoipa::path(patch, path = "/api/v1/knowledge-bases/{id}", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateKnowledgeBase,
    responses((status = 200, body = KnowledgeBaseView), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateKnowledgeBase>,
) -> Result<axum::Json<KnowledgeBaseView>, ApiError> {
    Ok(axum::Json(
        state.knowledge.update(&principal, kb_id(&id)?, req).await?,
    ))
}

/// Delete a knowledge base with its documents.
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{id}", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.knowledge.delete(&principal, kb_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upload documents: `multipart/form-data` with one or more file parts (any field name) and an
/// optional `metadata` part holding a JSON object. Each file is streamed to disk and refused
/// with 413 once it passes `knowledge.max_file_bytes`; nothing of a refused upload is kept.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{id}/documents", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    request_body(content_type = "multipart/form-data", description = "File parts (any field name), and an optional `metadata` part of JSON"),
    responses((status = 201, body = UploadResult), (status = 404), (status = 413), (status = 415), (status = 422), (status = 429)), security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, axum::Json<UploadResult>), ApiError> {
    let id = kb_id(&id)?;
    // Unknown or foreign knowledge bases are refused before the body is looked at.
    state.knowledge.get(&principal, id).await?;
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| {
        ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected a multipart/form-data body with file parts: {}",
                e.body_text()
            ),
            None,
        )
    })?;
    let max_files = state.knowledge.settings().max_files_per_upload;
    let mut files = Vec::new();
    let mut metadata = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() == Some("metadata") && field.file_name().is_none() {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                text.extend_from_slice(&chunk);
                if text.len() > MAX_METADATA_PART {
                    return Err(CoreError::TooLarge {
                        field: "metadata".into(),
                        message: format!("is longer than {MAX_METADATA_PART} bytes"),
                    }
                    .into());
                }
            }
            let value = serde_json::from_slice(&text)
                .map_err(|e| CoreError::invalid("metadata", format!("is not JSON: {e}")))?;
            metadata = Some(value);
            continue;
        }
        let Some(name) = field.file_name().map(str::to_owned) else {
            return Err(CoreError::invalid(
                field.name().unwrap_or("files"),
                "is not a file part (give it a filename), and only `metadata` may be a plain field",
            )
            .into());
        };
        if files.len() == max_files {
            return Err(CoreError::TooLarge {
                field: "files".into(),
                message: format!("holds more than {max_files} files"),
            }
            .into());
        }
        let mut stager = state.knowledge.stage(&name).await?;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if let Err(too_large) = stager.write(&chunk).await {
                drop(field);
                drain(&mut multipart).await;
                return Err(too_large.into());
            }
        }
        files.push(stager.finish().await?);
    }
    let result = state
        .knowledge
        .add_documents(&principal, id, files, metadata)
        .await?;
    if result.documents.is_empty() {
        let names: Vec<String> = result.rejected.iter().map(|r| r.message.clone()).collect();
        return Err(ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            names.join("; "),
            Some("files".into()),
        ));
    }
    Ok((StatusCode::CREATED, axum::Json(result)))
}

/// Reads and discards the rest of a refused upload (for a while), so the client, which is
/// still sending, gets to read the 413 instead of a reset connection.
async fn drain(multipart: &mut Multipart) {
    let rest = async {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    };
    let _ = tokio::time::timeout(DRAIN_FOR, rest).await;
}

/// How long a refused upload is read on before the connection is dropped.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

fn malformed(err: axum::extract::multipart::MultipartError) -> ApiError {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::request(
            status,
            "payload_too_large",
            "request body is too large",
            None,
        );
    }
    ApiError::request(
        StatusCode::BAD_REQUEST,
        "malformed_multipart",
        format!("the multipart body could not be read: {}", err.body_text()),
        None,
    )
}

/// A knowledge base's documents with their ingest status.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{id}/documents", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = [DocumentView]), (status = 404)), security(("bearer" = [])))]
pub async fn documents(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<DocumentView>>, ApiError> {
    Ok(axum::Json(
        state.knowledge.documents(&principal, kb_id(&id)?).await?,
    ))
}

/// One document.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{id}/documents/{doc}", tag = "knowledge",
    params(("id" = uuid::Uuid, Path), ("doc" = uuid::Uuid, Path)),
    responses((status = 200, body = DocumentView), (status = 404)), security(("bearer" = [])))]
pub async fn document(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, doc)): Path<(String, String)>,
) -> Result<axum::Json<DocumentView>, ApiError> {
    Ok(axum::Json(
        state
            .knowledge
            .document(&principal, kb_id(&id)?, doc_id(&doc)?)
            .await?,
    ))
}

/// Delete a document everywhere (chunks, text and vector indexes, original).
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{id}/documents/{doc}", tag = "knowledge",
    params(("id" = uuid::Uuid, Path), ("doc" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_document(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, doc)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .knowledge
        .delete_document(&principal, kb_id(&id)?, doc_id(&doc)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ingest a failed (or indexed) document again.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{id}/documents/{doc}/retry", tag = "knowledge",
    params(("id" = uuid::Uuid, Path), ("doc" = uuid::Uuid, Path)),
    responses((status = 200, body = DocumentView), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, doc)): Path<(String, String)>,
) -> Result<axum::Json<DocumentView>, ApiError> {
    Ok(axum::Json(
        state
            .knowledge
            .retry_document(&principal, kb_id(&id)?, doc_id(&doc)?)
            .await?,
    ))
}

/// Search a knowledge base: `hybrid` (default), `bm25` or `vector`.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{id}/search", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    request_body = SearchRequest,
    responses((status = 200, body = SearchResults), (status = 404), (status = 422)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<SearchRequest>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    Ok(axum::Json(
        state.knowledge.search(&principal, kb_id(&id)?, req).await?,
    ))
}
