//! The HTTP/1 server under the router, with the connection limits that
//! `axum::serve` does not offer:
//!
//! - at most `server.max_connections` connections are served at once; at the
//!   cap the service stops accepting, and new connections wait in the
//!   listen backlog until one closes (so a flood of idle sockets cannot use
//!   up the process's file descriptors);
//! - a request's headers must arrive within `server.header_read_timeout_secs`,
//!   counted from the accept on a new connection and from the first byte of
//!   the next request on a kept-alive one;
//! - a kept-alive connection with no request for `server.idle_timeout_secs`
//!   is closed.
//!
//! Both timeouts ride on hyper's header-read timer: hyper arms it each time
//! it starts waiting for a request head (right after the previous answer),
//! and [`WaitTimer`] turns that wait into "idle" until bytes arrive.
//! Graceful shutdown as `axum::serve` does it: stop accepting, let in-flight
//! requests finish, close idle connections, return when all are closed.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerSettings;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn from_settings(s: &ServerSettings) -> Self {
        Self {
            header_read: Duration::from_secs(s.header_read_timeout_secs),
            idle: Duration::from_secs(s.idle_timeout_secs),
            max_connections: s.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires and every
/// connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e, &shutdown).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, shutdown).await;
            drop(slot);
        });
    }
    // Refuse new connections from now on, then wait for the open ones.
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Per-connection accept errors (the peer went away) are routine; others
/// (out of file descriptors) are logged and retried after a pause, as
/// `axum::serve` does.
async fn accept_failed(e: &io::Error, shutdown: &CancellationToken) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(CountingIo {
        inner: stream,
        bytes_read: bytes_read.clone(),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` would add: the peer,
        // which the failed-authentication limit counts by.
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let timer = WaitTimer {
        bytes_read,
        header_read: limits.header_read,
        idle: limits.idle,
        first_wait: AtomicBool::new(true),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(timer).header_read_timeout(limits.header_read);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and peers that hang up are the client's business.
        tracing::debug!(%peer, error = %e, "connection closed with an error");
    }
}

/// The socket, counting the bytes read so [`WaitTimer`] can tell an idle
/// connection from one sending a request.
struct CountingIo {
    inner: TcpStream,
    bytes_read: Arc<AtomicU64>,
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.bytes_read.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection. hyper (1.x, HTTP/1 server) uses its
/// timer only for the header-read timeout, armed whenever it starts waiting
/// for a request head; each wait becomes a [`RequestWait`].
struct WaitTimer {
    bytes_read: Arc<AtomicU64>,
    header_read: Duration,
    idle: Duration,
    first_wait: AtomicBool,
}

impl hyper::rt::Timer for WaitTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RequestWait::plain(duration))
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let first = self.first_wait.swap(false, Ordering::Relaxed);
        Box::pin(RequestWait {
            sleep: Box::pin(tokio::time::sleep(if first {
                self.header_read
            } else {
                self.idle
            })),
            watch: (!first).then(|| Watch {
                bytes_read: self.bytes_read.clone(),
                at_start: self.bytes_read.load(Ordering::Relaxed),
                header_read: self.header_read,
            }),
        })
    }
}

/// A wait for a request head: on a new connection, the header-read timeout
/// from the accept; on a kept-alive one, the idle timeout until the first
/// byte arrives, then the header-read timeout from that byte. hyper polls it
/// whenever bytes arrive, so the switch happens as they do.
struct RequestWait {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// While idle: how to notice the first byte.
    watch: Option<Watch>,
}

struct Watch {
    bytes_read: Arc<AtomicU64>,
    at_start: u64,
    header_read: Duration,
}

impl RequestWait {
    fn plain(duration: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(duration)),
            watch: None,
        }
    }
}

impl Future for RequestWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(w) = &self.watch
            && w.bytes_read.load(Ordering::Relaxed) != w.at_start
        {
            let deadline = tokio::time::Instant::now() + w.header_read;
            self.watch = None;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for RequestWait {}
