//! Driving the app in-process with `Router::oneshot`: real routing, middleware and handlers,
//! no socket.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use brevet::store::SharedStore;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The app under test and its store.
pub struct TestApp {
    /// The whole router, as `brevet serve` serves it.
    pub router: Router,
    /// The store behind it, to set up and inspect state.
    pub store: SharedStore,
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestApp {
    /// Sends a request and reads the whole response.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// `GET path`, with a bearer token when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        let mut builder = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(Body::empty()).expect("request"))
            .await
    }

    /// `POST path` with a JSON body (raw bytes, so tests can send broken JSON), bearer token optional.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Body>,
        token: Option<&str>,
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(body.into()).expect("request")).await
    }

    /// `POST path` with `body` as JSON.
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> TestResponse {
        self.post_raw(path, body.to_string(), token).await
    }

    /// `PATCH path` with a JSON body, a bearer token and an `If-Match` header when given.
    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
        if_match: Option<&str>,
    ) -> TestResponse {
        let mut request = Request::patch(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// DELETE with an optional admin token.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        let mut builder = Request::builder().method(Method::DELETE).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(Body::empty()).expect("request"))
            .await
    }

    /// Creates the bootstrap admin token and returns its value; on a store that has one already,
    /// a further admin token.
    pub async fn admin_token(&self) -> String {
        if let Some(token) = brevet::service::tokens::bootstrap(&self.store)
            .await
            .expect("bootstrap")
        {
            return token.expose().to_owned();
        }
        let secret = brevet::domain::admin_token::TokenSecret::generate();
        let token = brevet::store::NewAdminToken {
            name: format!("test-admin-{}", uuid::Uuid::new_v4()),
            role: brevet::domain::admin_token::Role::Admin,
            token_hash: secret.hash(),
        };
        brevet::service::tokens::create(&self.store, &token, brevet::store::Provenance::SYSTEM)
            .await
            .expect("a further admin token");
        secret.expose().to_owned()
    }
}
