//! The connection limit: a TCP listener for `axum::serve` that holds at
//! most `max_connections` connections open. Each admitted connection
//! carries a semaphore permit that is given back when the connection is
//! dropped. One over the limit is answered at once with a raw
//! `503 too_many_connections` (no request is parsed) and closed, so the
//! client learns why instead of hanging in the kernel's backlog. Refusals
//! are themselves bounded: at most [`MAX_REFUSING`] are being answered at
//! once; past that a connection is simply closed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hermod_http::ServerStats;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most refused connections being answered at once.
pub const MAX_REFUSING: usize = 64;
/// Longest time spent answering one refused connection.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes of a refused connection's request read (and dropped) so that
/// closing it does not reset the connection before the 503 is read.
const REFUSAL_DRAIN_BYTES: usize = 64 << 10;

/// A listener that admits at most `max_connections` connections at once.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    stats: Arc<ServerStats>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max_connections: usize, stats: Arc<ServerStats>) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            stats,
        }
    }

    /// Answers an over-the-limit connection in the background.
    fn refuse(&self, stream: TcpStream) {
        self.stats.connections_refused.fetch_add(1, Relaxed);
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return; // Too many refusals under way: dropping closes it.
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer_503(stream)).await;
            drop(permit);
        });
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => return (self.admit(stream, permit), addr),
                Err(_) => self.refuse(stream),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl LimitedListener {
    fn admit(&self, stream: TcpStream, permit: OwnedSemaphorePermit) -> LimitedStream {
        // Small request/response exchanges should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        self.stats.connections_accepted.fetch_add(1, Relaxed);
        self.stats.connections_open.fetch_add(1, Relaxed);
        LimitedStream {
            stream,
            _permit: permit,
            stats: self.stats.clone(),
        }
    }
}

/// An admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    stats: Arc<ServerStats>,
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The raw answer to a connection over the limit.
pub fn refusal_response() -> String {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server holds its maximum number of connections (max_connections); retry later"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Writes the 503, closes the write side, then reads (a bounded amount of)
/// whatever the client sent, so the close is a clean FIN rather than a
/// reset that could discard the answer before the client reads it.
async fn answer_503(mut stream: TcpStream) -> io::Result<()> {
    stream.write_all(refusal_response().as_bytes()).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        match stream.read(&mut sink).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use axum::serve::Listener;

    use super::*;

    /// Accepts connections forever, keeping each admitted one open until
    /// the test ends (as a server would while serving it).
    async fn hold_connections(mut listener: LimitedListener) {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await;
            held.push(stream);
        }
    }

    fn read_all(mut stream: std::net::TcpStream) -> String {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn second_connection_gets_503_and_the_first_frees_its_place() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let stats = Arc::new(ServerStats::default());
        let server = tokio::spawn(hold_connections(LimitedListener::new(
            tcp,
            1,
            stats.clone(),
        )));
        let stats_now = stats.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let first = std::net::TcpStream::connect(addr).unwrap();
            wait_until(|| stats_now.connections_open.load(Relaxed) == 1);
            let mut second = std::net::TcpStream::connect(addr).unwrap();
            second
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let refused = read_all(second);
            drop(first);
            refused
        })
        .await
        .unwrap();
        assert!(
            answers.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answers}"
        );
        assert!(answers.contains("connection: close\r\n"), "{answers}");
        let body = answers.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
        assert_eq!(stats.connections_refused.load(Relaxed), 1);
        assert_eq!(stats.connections_accepted.load(Relaxed), 1);
        server.abort();
        let _ = server.await;
        assert_eq!(
            stats.connections_open.load(Relaxed),
            0,
            "dropping frees the place"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_connection_gives_its_place_back() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let stats = Arc::new(ServerStats::default());
        let mut listener = LimitedListener::new(tcp, 1, stats.clone());
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await;
        drop(first);
        assert_eq!(stats.connections_open.load(Relaxed), 0);
        let _client2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_second, _) = listener.accept().await;
        assert_eq!(stats.connections_accepted.load(Relaxed), 2);
        assert_eq!(stats.connections_refused.load(Relaxed), 0);
    }

    /// Polls a condition for at most ten seconds.
    fn wait_until(condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met in time"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
