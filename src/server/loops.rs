//! Client event loops: `io-threads` threads, each driving a single-threaded tokio runtime
//! with its own poller. An accepted connection is handed to the loop serving the fewest
//! clients and stays there, so its socket, buffers and task never move between cores, and no
//! worker has to steal work from, or wake, another: on a busy machine with few cores, the
//! work-stealing runtime spent more time on that than on the commands. With one loop (the
//! default, as Redis's `io-threads 1`) commands from different connections run in the order
//! they arrive, as in Redis; with more, connections on different loops run in parallel and
//! that order holds only per loop. The server's own tasks (accepting, cron, the cluster bus,
//! replication links) keep running on the multi-thread runtime, and so does a connection that
//! must block its thread for long (see `connection::needs_pool`): it moves there before
//! running that command, where a blocked worker hands its other tasks away and the clients of
//! its loop go on being served.

use super::state::ServerState;
use crate::log_at;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
}

struct ClientLoop {
    inbox: tokio::sync::mpsc::UnboundedSender<Accepted>,
    /// Connections this loop serves now.
    clients: Arc<AtomicUsize>,
}

pub struct ClientLoops {
    loops: Vec<ClientLoop>,
}

impl ClientLoops {
    /// Starts `count` loops; fewer if threads or runtimes cannot be had (none at all leaves
    /// every connection on the multi-thread runtime).
    pub fn start(state: &Arc<ServerState>, count: usize) -> ClientLoops {
        let mut loops = Vec::with_capacity(count);
        for i in 0..count {
            match start_loop(state.clone(), i) {
                Ok(l) => loops.push(l),
                Err(e) => {
                    log_at!(Warning, "Failed creating client event loop {}: {}", i, e);
                    break;
                }
            }
        }
        ClientLoops { loops }
    }

    /// Serves an accepted connection: on the least busy loop, or on this runtime when there
    /// is no loop or the socket cannot be moved.
    pub fn serve(&self, state: &Arc<ServerState>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let Some(target) = self.loops.iter().min_by_key(|l| l.clients.load(Relaxed)) else {
            return serve_here(state, stream, peer);
        };
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                log_at!(Warning, "Accepting client connection: {}", e);
                return;
            }
        };
        target.clients.fetch_add(1, Relaxed);
        if let Err(back) = target.inbox.send(Accepted { stream, peer }) {
            // The loop is gone (its thread ended): this runtime serves the client instead.
            target.clients.fetch_sub(1, Relaxed);
            let Accepted { stream, peer } = back.0;
            match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => serve_here(state, s, peer),
                Err(e) => log_at!(Warning, "Accepting client connection: {}", e),
            }
        }
    }
}

fn serve_here(state: &Arc<ServerState>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let local = stream.local_addr().unwrap_or(peer);
    tokio::spawn(super::connection::serve(state.clone(), stream, peer, local));
}

fn start_loop(state: Arc<ServerState>, index: usize) -> std::io::Result<ClientLoop> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (inbox, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
    let clients = Arc::new(AtomicUsize::new(0));
    let count = clients.clone();
    std::thread::Builder::new()
        .name(format!("client-loop-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                while let Some(Accepted { stream, peer }) = arrivals.recv().await {
                    let stream = match tokio::net::TcpStream::from_std(stream) {
                        Ok(s) => s,
                        Err(e) => {
                            count.fetch_sub(1, Relaxed);
                            log_at!(Warning, "Accepting client connection: {}", e);
                            continue;
                        }
                    };
                    let local = stream.local_addr().unwrap_or(peer);
                    let (state, count) = (state.clone(), count.clone());
                    tokio::spawn(async move {
                        super::connection::serve(state, stream, peer, local).await;
                        // Ended, or moved to the multi-thread runtime.
                        count.fetch_sub(1, Relaxed);
                    });
                }
            })
        })?;
    Ok(ClientLoop { inbox, clients })
}
