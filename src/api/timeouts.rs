//! Request-level time limits, answered with our error envelope (the
//! connection-level ones, header read and idle, are in `crate::serve`):
//!
//! - the body must arrive in full within `server.body_read_timeout_secs`
//!   after the headers, else 408 `request_timeout` (and hyper closes the
//!   connection, since the body was not read to its end);
//! - a handler must answer within `server.request_timeout_secs`, else 503
//!   `timeout`. Work the handler handed to a task (a sweep, an export) goes
//!   on; the answer's body, once it streams, is not limited.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use super::error::ApiError;
use crate::config::ServerSettings;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    body: Duration,
    request: Duration,
}

impl Timeouts {
    pub fn from_settings(s: &ServerSettings) -> Self {
        Self {
            body: Duration::from_secs(s.body_read_timeout_secs),
            request: Duration::from_secs(s.request_timeout_secs),
        }
    }
}

/// The error a body read meets at its deadline; `ApiJson` turns it into 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_read_timeout_secs")]
pub struct BodyTimedOut;

/// Middleware: both limits, for every route.
pub async fn limit(State(t): State<Timeouts>, req: Request, next: Next) -> Response {
    let req = req.map(|body| {
        // A request without a body needs no timer.
        if http_body::Body::is_end_stream(&body) {
            body
        } else {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(t.body)),
            })
        }
    });
    match tokio::time::timeout(t.request, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut(format!(
            "no answer within {} s (server.request_timeout_secs)",
            t.request.as_secs()
        ))
        .into_response(),
    }
}

/// A body that fails with [`BodyTimedOut`] once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Data already there wins over the deadline.
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
