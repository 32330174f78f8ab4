//! A client of the Confluent Schema Registry REST API, as served by
//! Confluent Schema Registry, Karapace, Redpanda and Apicurio's `ccompat`
//! layer: a schema by its id, registering a schema under a subject, looking
//! up a schema's id, and a subject's compatibility level.
//!
//! Endpoints (Confluent's API reference, "Schema Registry API Reference"):
//! `GET /schemas/ids/{id}`, `POST /subjects/{subject}/versions`,
//! `POST /subjects/{subject}`, `PUT /config/{subject}`, `GET /config/{subject}`,
//! bodies in `application/vnd.schemaregistry.v1+json`. Subjects follow
//! TopicNameStrategy: a topic's values are the subject `<topic>-value`
//! ([`value_subject`]).
//!
//! Errors are classified for [`crate::retry`]: an unreachable registry, a
//! timeout or a 5xx is transient; anything the registry answered (404 not
//! found, 401/403 refused, 409/422 incompatible or invalid) is permanent.

use std::time::Duration;

use serde::Deserialize;

use crate::config::SchemaRegistrySettings;
use crate::retry::ErrorClass;
use crate::secret::Secret;

/// The content type of the registry's requests and answers.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The subject of `topic`'s record values under TopicNameStrategy, the
/// default of Confluent's serializers: `<topic>-value`.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// The subject compatibility distans asks for on its input subject: every
/// new version can read, and be read by, every earlier one (Confluent's
/// `FULL_TRANSITIVE`), so producers and distans upgrade in either order and
/// every record still in the topic stays readable.
pub const INPUT_COMPATIBILITY: &str = "FULL_TRANSITIVE";

/// Why a registry call failed. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered 404 (error code 40403 for a schema id, 40401
    /// for a subject, 40403 for a schema not under a subject).
    #[error("schema registry {url}: not found ({message})")]
    NotFound { url: String, message: String },
    /// 401 or 403: `schema_registry.user` / `password` are wrong or lack
    /// the permission.
    #[error("schema registry {url}: {status} ({message}); check schema_registry.user and schema_registry.password")]
    Unauthorised { url: String, status: u16, message: String },
    /// Another 4xx: the request was refused (e.g. 409 an incompatible
    /// schema, 422 an invalid one).
    #[error("schema registry {url}: {status} ({message})")]
    Refused { url: String, status: u16, message: String },
    /// The schema under the id is not Avro (`schemaType` PROTOBUF or JSON).
    #[error("schema registry {url}: schema {id} is a {schema_type} schema; distans reads Avro")]
    NotAvro { url: String, id: u32, schema_type: String },
    /// Not reached, timed out, a 5xx, or an answer that is not the API's.
    #[error("schema registry {url} unavailable: {message}")]
    Unavailable { url: String, message: String },
    /// The client could not be built (e.g. `schema_registry.ca_file`), or
    /// the registry's TLS certificate is not trusted.
    #[error("schema registry: {0}")]
    Setup(String),
}

impl RegistryError {
    /// Transient: worth retrying with backoff; the rest is permanent.
    pub fn class(&self) -> ErrorClass {
        match self {
            RegistryError::Unavailable { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

/// A schema registry client: base URL, basic auth, trusted CAs, timeout.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    client: reqwest::Client,
    base: String,
    user: String,
    password: Secret,
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

#[derive(Deserialize)]
struct CompatibilityAnswer {
    #[serde(alias = "compatibility")]
    #[serde(rename = "compatibilityLevel")]
    level: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl SchemaRegistry {
    /// The client for `settings`; `None` when no registry is configured.
    /// An unreadable or invalid `ca_file` is an error naming it.
    pub fn new(settings: &SchemaRegistrySettings) -> Result<Option<SchemaRegistry>, RegistryError> {
        if !settings.is_configured() {
            return Ok(None);
        }
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_millis(settings.request_timeout_ms)).use_rustls_tls();
        if !settings.ca_file.is_empty() {
            let pem = std::fs::read(&settings.ca_file).map_err(|e| {
                RegistryError::Setup(format!("cannot read schema_registry.ca_file {}: {e}", settings.ca_file))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Setup(format!(
                    "schema_registry.ca_file {} holds no PEM certificate: {e}",
                    settings.ca_file
                ))
            })?;
            if certificates.is_empty() {
                return Err(RegistryError::Setup(format!(
                    "schema_registry.ca_file {} holds no PEM certificate",
                    settings.ca_file
                )));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|e| RegistryError::Setup(e.to_string()))?;
        Ok(Some(SchemaRegistry {
            client,
            base: settings.url.trim().trim_end_matches('/').to_string(),
            user: settings.user.clone(),
            password: settings.password.clone(),
        }))
    }

    /// The registry's base URL (no credentials: they are not allowed in it).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The text of the schema registered under `id` (`GET /schemas/ids/{id}`).
    /// Only Avro schemas are taken: another `schemaType` is `NotAvro`.
    pub async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let answer: SchemaAnswer = self.call(self.client.get(&url), &url).await?;
        match answer.schema_type.as_deref() {
            None | Some("AVRO") => Ok(answer.schema),
            Some(other) => Err(RegistryError::NotAvro { url, id, schema_type: other.to_string() }),
        }
    }

    /// Registers `schema` (Avro text) under `subject`, returning its id; a
    /// schema already registered there keeps its id
    /// (`POST /subjects/{subject}/versions`). A schema the subject's
    /// compatibility rule refuses is `Refused` (409).
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let body = serde_json::json!({ "schema": schema });
        let answer: IdAnswer = self.call(self.client.post(&url).body(body.to_string()), &url).await?;
        Ok(answer.id)
    }

    /// The id of `schema` under `subject` (`POST /subjects/{subject}`);
    /// `NotFound` when it is not registered there.
    pub async fn id_of(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{subject}", self.base);
        let body = serde_json::json!({ "schema": schema });
        let answer: IdAnswer = self.call(self.client.post(&url).body(body.to_string()), &url).await?;
        Ok(answer.id)
    }

    /// Sets `subject`'s compatibility level (`PUT /config/{subject}`).
    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let url = format!("{}/config/{subject}", self.base);
        let body = serde_json::json!({ "compatibility": level });
        let answer: CompatibilityAnswer = self.call(self.client.put(&url).body(body.to_string()), &url).await?;
        if answer.level != level {
            return Err(RegistryError::Refused {
                url,
                status: 200,
                message: format!("asked for {level}, the registry answered {}", answer.level),
            });
        }
        Ok(())
    }

    /// Sends one request with the API's content type and basic auth, and
    /// reads the JSON answer; errors classified as the module says.
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, RegistryError> {
        let mut request = request.header(reqwest::header::ACCEPT, CONTENT_TYPE);
        request = request.header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE);
        if !self.user.is_empty() {
            request = request.basic_auth(&self.user, Some(self.password.expose()));
        }
        let unavailable = |message: String| RegistryError::Unavailable { url: url.to_string(), message };
        // reqwest's errors name the URL, never the basic-auth header.
        let response = request.send().await.map_err(|e| {
            let chain = error_chain(&e);
            // rustls: "invalid peer certificate: UnknownIssuer", "…: NotValidForName", ….
            if chain.contains("invalid peer certificate") {
                RegistryError::Setup(format!(
                    "{url}: the registry's TLS certificate is not trusted ({chain}); check schema_registry.ca_file and the host name in schema_registry.url"
                ))
            } else {
                unavailable(chain)
            }
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unavailable(error_chain(&e)))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|e| unavailable(format!("an answer that is not the registry API's ({e}): {}", cut(&body))));
        }
        let message = match serde_json::from_str::<ErrorAnswer>(&body) {
            Ok(ErrorAnswer { error_code, message: Some(message) }) => match error_code {
                Some(code) => format!("{code} {message}"),
                None => message,
            },
            _ => cut(&body),
        };
        let (url, code) = (url.to_string(), status.as_u16());
        Err(match code {
            404 => RegistryError::NotFound { url, message },
            401 | 403 => RegistryError::Unauthorised { url, status: code, message },
            400..=499 => RegistryError::Refused { url, status: code, message },
            _ => RegistryError::Unavailable { url, message: format!("{code} {message}") },
        })
    }
}

/// An error and its causes on one line (reqwest's own `Display` omits the
/// cause: "error sending request" without "connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// At most 200 characters of an answer, for an error message.
fn cut(body: &str) -> String {
    let mut text: String = body.chars().take(200).collect();
    if text.len() < body.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;

    use super::*;

    /// What the fake registry saw: the Authorization headers.
    type Seen = Arc<Mutex<Vec<String>>>;

    async fn schema(State(seen): State<Seen>, headers: HeaderMap, Path(id): Path<u32>) -> (StatusCode, String) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        seen.lock().expect("lock").push(auth.clone());
        // "distans:s3cret" in base64.
        if auth != "Basic ZGlzdGFuczpzM2NyZXQ=" {
            return (StatusCode::UNAUTHORIZED, r#"{"error_code":401,"message":"Unauthorized"}"#.into());
        }
        match id {
            57 => (StatusCode::OK, r#"{"schema":"\"string\""}"#.into()),
            58 => (StatusCode::OK, r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#.into()),
            59 => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
            _ => (StatusCode::NOT_FOUND, r#"{"error_code":40403,"message":"Schema not found"}"#.into()),
        }
    }

    async fn register(Path(subject): Path<String>, body: String) -> (StatusCode, String) {
        let schema: serde_json::Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(schema["schema"], "\"string\"");
        if subject == "full-value" {
            return (StatusCode::CONFLICT, r#"{"error_code":409,"message":"incompatible"}"#.into());
        }
        (StatusCode::OK, r#"{"id":101}"#.into())
    }

    async fn start(seen: Seen) -> String {
        let app = Router::new()
            .route("/schemas/ids/{id}", get(schema))
            .route("/subjects/{subject}/versions", post(register))
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/")
    }

    fn settings(url: &str, password: &str) -> SchemaRegistrySettings {
        SchemaRegistrySettings {
            url: url.to_string(),
            user: "distans".into(),
            password: Secret::new(password),
            ca_file: String::new(),
            cache_capacity: 10,
            request_timeout_ms: 2000,
        }
    }

    #[tokio::test]
    async fn answers_are_classified_and_the_password_never_shows() {
        let seen = Seen::default();
        let url = start(seen.clone()).await;
        let registry = SchemaRegistry::new(&settings(&url, "s3cret")).expect("builds").expect("configured");
        assert_eq!(registry.schema_by_id(57).await.expect("found"), "\"string\"");
        assert_eq!(registry.register("input-value", "\"string\"").await.expect("registers"), 101);
        let cases = [
            (registry.schema_by_id(404).await, "not found", ErrorClass::Permanent),
            (registry.schema_by_id(58).await, "PROTOBUF", ErrorClass::Permanent),
            (registry.schema_by_id(59).await, "unavailable: 500", ErrorClass::Transient),
            (registry.register("full-value", "\"string\"").await.map(|_| String::new()), "409", ErrorClass::Permanent),
        ];
        for (result, says, class) in cases {
            let error = result.expect_err("an error");
            assert!(error.to_string().contains(says), "{error}");
            assert_eq!(error.class(), class, "{error}");
        }
        let wrong = SchemaRegistry::new(&settings(&url, "wrong")).expect("builds").expect("configured");
        let error = wrong.schema_by_id(57).await.expect_err("refused");
        assert!(matches!(error, RegistryError::Unauthorised { status: 401, .. }), "{error}");
        assert!(error.to_string().contains("schema_registry.password"), "{error}");
        assert!(!format!("{error} {error:?} {wrong:?}").contains("wrong"), "the password never shows");
        assert_eq!(seen.lock().expect("lock").len(), 5, "each schema call sent once");
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_transient_and_a_bad_ca_file_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        drop(listener);
        let registry = SchemaRegistry::new(&settings(&url, "s3cret")).expect("builds").expect("configured");
        let error = registry.schema_by_id(57).await.expect_err("unreachable");
        assert_eq!(error.class(), ErrorClass::Transient, "{error}");

        let mut no_pem = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut no_pem, b"not a certificate").expect("write");
        for ca_file in [no_pem.path().display().to_string(), "/nonexistent/ca.pem".to_string()] {
            let settings = SchemaRegistrySettings { ca_file: ca_file.clone(), ..settings("https://registry", "") };
            let error = SchemaRegistry::new(&settings).expect_err("bad CA file");
            assert!(error.to_string().contains(&ca_file), "{error}");
        }
        assert!(SchemaRegistry::new(&settings("", "")).expect("builds").is_none(), "no url: no registry");
    }
}
